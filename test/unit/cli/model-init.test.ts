// What `qualm model init` infers from a model's declared inputs and outputs (pure: no model is read).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dummyRows, starterManifest, valueRangeFlag } from '../../../src/cli/commands/model.js';
import { parseModelManifest } from '../../../src/encoder/index.js';

const f32 = (name: string, ...shape: (number | string)[]) => ({ name, type: 'float32', shape });
const i64 = (name: string) => ({ name, type: 'int64', shape: ['batch', 'seq'] });

test('a 4-d float input is an image: NCHW or NHWC from where the channels sit, colour from their count', () => {
  const nchw = starterManifest('vit', [f32('pixel_values', 'batch', 3, 224, 224)], [f32('last_hidden_state', 'batch', 197, 768)], null);
  assert.equal(nchw.manifest.input_kind, 'image');
  assert.deepEqual(nchw.manifest.input, { name: 'pixel_values', dtype: 'float32', shape: [-1, 3, 224, 224], layout: 'NCHW' });
  assert.deepEqual(nchw.manifest.output, { name: 'last_hidden_state', pooling: 'mean', normalized: false });
  assert.equal(nchw.manifest.dim, 768);
  assert.ok(nchw.fillIn.some((f) => f.startsWith('preprocess.mean and preprocess.std')));
  // The starter manifest is valid as written, so that `model check` can run it.
  assert.equal(parseModelManifest(nchw.manifest, 'vit.json').input_kind, 'image');

  const nhwc = starterManifest('mobilenet', [f32('input', 1, 96, 96, 1)], [f32('features', 1, 256)], null);
  assert.deepEqual(nhwc.manifest.input, { name: 'input', dtype: 'float32', shape: [1, 96, 96, 1], layout: 'NHWC' });
  assert.equal((nhwc.manifest.preprocess as { color: string }).color, 'grayscale');
  assert.equal((nhwc.manifest.output as { pooling: string }).pooling, 'none');
  const spec = parseModelManifest(nhwc.manifest, 'm.json');
  assert.ok(spec.input_kind === 'image' && spec.input.shape[0] === 1, 'a fixed batch of 1 is kept');
});

test('a 2-d input is features; open dimensions become placeholders the check names', () => {
  const f = starterManifest('demo', [f32('pixels', 'N', 784)], [f32('embedding', 'N', 128)], null);
  assert.deepEqual(f.manifest.input, { name: 'pixels', dtype: 'float32', shape: [-1, 784] });
  assert.equal(parseModelManifest(f.manifest, 'f.json').dim, 128);
  const open = starterManifest('open', [f32('x', 'N', 'D')], [f32('y', 'N', 'E'), f32('z', 'N', 4)], null);
  assert.deepEqual((open.manifest.input as { shape: unknown[] }).shape, [-1, 'FILL_IN']);
  assert.equal(open.manifest.dim, 'FILL_IN');
  assert.ok(open.fillIn.some((x) => x.startsWith('input.shape')));
  assert.ok(open.fillIn.some((x) => x.startsWith('dim ')));
  assert.ok(open.fillIn.some((x) => x.startsWith('output.name ("y" chosen of "y", "z"')));
  assert.throws(() => parseModelManifest(open.manifest, 'open.json'), /dim: Invalid input: expected number, received string; input\.shape\.1: /);
});

test('int64 input_ids and attention_mask make a text model, with the tokenizer found beside it', () => {
  const t = starterManifest('minilm', [i64('input_ids'), i64('attention_mask'), i64('token_type_ids')], [f32('last_hidden_state', 'batch', 'seq', 384)], { file: 'tokenizer.json', maxLength: 128 });
  assert.equal(t.manifest.input_kind, 'text');
  assert.deepEqual(t.manifest.input_names, { input_ids: 'input_ids', attention_mask: 'attention_mask', token_type_ids: 'token_type_ids' });
  assert.equal(t.manifest.max_tokens, 128);
  assert.equal(parseModelManifest(t.manifest, 't.json').input_kind, 'text');
  const pooled = starterManifest('e5', [i64('input_ids'), i64('attention_mask')], [f32('sentence_embedding', 'batch', 384)], null);
  assert.equal((pooled.manifest.output as { pooling: string }).pooling, 'none');
  assert.equal(pooled.manifest.max_tokens, 512);
  assert.ok(pooled.fillIn.some((x) => x.startsWith('tokenizer (no tokenizer.json')));
  assert.equal((pooled.manifest.input_names as Record<string, string>).token_type_ids, undefined);
});

test('dummy image rows follow the manifest: per-channel mean/std in the layout the tensor has', () => {
  const spec = parseModelManifest(
    { format_version: 2, name: 'x', version: '1', input_kind: 'image', input: { name: 'p', shape: [-1, 2, 2, 3], layout: 'NHWC' }, preprocess: { color: 'rgb', mean: [0, 0, 10], std: [1, 1, 0.5] }, output: { name: 'o' }, dim: 4 },
    'x.json',
  );
  const rows = dummyRows(spec, 5, 12);
  for (let i = 0; i < rows.length; i++) {
    const v = rows[i] as number;
    if (i % 3 === 2) assert.ok(v <= -18 && v >= -20, `blue ${v}`); // (0..1 - 10) / 0.5
    else assert.ok(v >= 0 && v <= 1, `red/green ${v}`);
  }
});

test('--kind image reads a 2-d input as flattened images, guessing colour and size from its width', () => {
  const gray = starterManifest('enc', [f32('pixels', 'batch', 784)], [f32('embedding', 'batch', 128)], null, 'image');
  assert.equal(gray.manifest.input_kind, 'image');
  assert.deepEqual(gray.manifest.input, { name: 'pixels', dtype: 'float32', shape: [-1, 784], layout: 'flat' });
  assert.deepEqual((gray.manifest.preprocess as Record<string, unknown>).size, { width: 28, height: 28 });
  assert.equal((gray.manifest.preprocess as Record<string, unknown>).color, 'grayscale');
  assert.ok(gray.fillIn.some((f) => /guessed grayscale 28x28 from 784/.test(f)));
  const rgb = starterManifest('enc', [f32('pixels', 'batch', 3 * 32 * 32)], [f32('embedding', 'batch', 64)], null, 'image');
  assert.equal((rgb.manifest.preprocess as Record<string, unknown>).color, 'rgb');
  assert.deepEqual((rgb.manifest.preprocess as Record<string, unknown>).size, { width: 32, height: 32 });
  const odd = starterManifest('enc', [f32('pixels', 'batch', 1000)], [f32('embedding', 'batch', 64)], null, 'image');
  assert.ok(odd.fillIn.some((f) => /is not W\*W or 3\*W\*W values/.test(f)));
  // A 4-d input is an image whatever --kind says; a 3-d one cannot be read as images.
  assert.equal((starterManifest('enc', [f32('pixels', 'batch', 3, 8, 8)], [f32('embedding', 'batch', 64)], null, 'image').manifest.input as Record<string, unknown>).layout, 'NCHW');
  assert.throws(() => starterManifest('enc', [f32('pixels', 'batch', 8, 8)], [f32('embedding', 'batch', 64)], null, 'image'), /--kind image reads a 2-d input/);
});

test('--value-range writes a features model\'s input.value_range (else init lists it to fill in), is refused for images and texts, and check draws its dummy rows inside it', () => {
  const ranged = starterManifest('demo', [f32('pixels', 'N', 784)], [f32('embedding', 'N', 128)], null, undefined, [0, 1]);
  assert.deepEqual(ranged.manifest.input, { name: 'pixels', dtype: 'float32', shape: [-1, 784], value_range: [0, 1] });
  assert.ok(!ranged.fillIn.some((f) => f.startsWith('input.value_range')));
  const spec = parseModelManifest(ranged.manifest, 'demo.json');
  assert.ok(spec.input_kind === 'features' && spec.input.value_range?.join() === '0,1', 'the starter manifest reads with its range');
  const plain = starterManifest('demo', [f32('pixels', 'N', 784)], [f32('embedding', 'N', 128)], null);
  assert.ok(plain.fillIn.some((f) => f.startsWith('input.value_range (written none')));
  assert.throws(() => starterManifest('vit', [f32('pixel_values', 'batch', 3, 8, 8)], [f32('o', 'batch', 4)], null, undefined, [0, 1]), /--value-range is for features models; this model reads as an image model/);
  assert.throws(() => starterManifest('minilm', [i64('input_ids'), i64('attention_mask')], [f32('o', 'batch', 4)], null, undefined, [0, 1]), /reads as a text model/);
  assert.throws(() => starterManifest('enc', [f32('pixels', 'batch', 784)], [f32('o', 'batch', 4)], null, 'image', [0, 1]), /reads as an image model \(--kind image\)/);

  assert.deepEqual(valueRangeFlag('0,1'), [0, 1]);
  assert.deepEqual(valueRangeFlag('[-1, 1]'), [-1, 1]);
  assert.equal(valueRangeFlag(undefined), undefined);
  for (const bad of ['1,0', '0,0', '0', '0,1,2', 'a,1', ',1', '0,Infinity']) assert.throws(() => valueRangeFlag(bad), /--value-range takes LO,HI: two finite numbers, LO below HI/, bad);

  const wide = parseModelManifest({ ...ranged.manifest, input: { name: 'pixels', dtype: 'float32', shape: [-1, 784], value_range: [10, 12] } }, 'w.json');
  const rows = dummyRows(wide, 4, 784);
  assert.ok(rows.every((v) => v >= 10 && v <= 12), 'dummy features inside the declared range');
});
