// The real ONNX encoder on its inference thread.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { SLICE_FASHION_MNIST_DIR, loadFashionMnist } from '../../src/datasets/index.js';
import { OnnxEncoder } from '../../src/encoder/index.js';
import { packageRoot } from '../../src/util/package-root.js';
import { writeTinyModel } from '../helpers/tiny-onnx.js';

const MODEL = loadConfig(process.env).modelPath;
const tmp = mkdtempSync(join(tmpdir(), 'qualm-enc-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('embeds a batch into unit-norm rows of the manifest dimension, deterministically', async () => {
  const enc = await OnnxEncoder.open(MODEL);
  try {
    const set = loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]);
    const a = await enc.embed(set.pixels.subarray(0, 5 * 784), 5);
    const b = await enc.embedAll(set.pixels.subarray(0, 5 * 784), 5, 2);
    assert.equal(a.length, 5 * enc.dim);
    assert.ok(enc.dim >= 64 && enc.dim <= 128);
    for (let r = 0; r < 5; r++) {
      const row = a.subarray(r * enc.dim, (r + 1) * enc.dim);
      assert.ok(Math.abs(Math.hypot(...row) - 1) < 1e-5);
    }
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs((a[i] as number) - (b[i] as number)) < 1e-5, 'batching does not change the embedding');
    assert.match(enc.sha256, /^[0-9a-f]{64}$/);
  } finally {
    await enc.close();
  }
});

test('inference leaves the event loop free (heartbeats keep running)', async () => {
  const enc = await OnnxEncoder.open(MODEL);
  try {
    const set = loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]);
    const n = 2000;
    let ticks = 0;
    let longestGap = 0;
    let last = Date.now();
    const timer = setInterval(() => {
      const now = Date.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      ticks++;
    }, 5);
    const t0 = Date.now();
    await enc.embed(set.pixels.subarray(0, n * 784), n);
    const ms = Date.now() - t0;
    clearInterval(timer);
    console.log(`embedded ${n} rows in ${ms} ms; timer fired ${ticks} times, longest gap ${longestGap} ms`);
    // A run on the main thread would let no timer fire at all until it ends.
    assert.ok(ticks >= Math.floor(ms / 50), `timer fired ${ticks} times during ${ms} ms`);
    assert.ok(longestGap < Math.max(250, ms / 2), `longest event-loop gap ${longestGap} ms of ${ms} ms`);
  } finally {
    await enc.close();
  }
});

test('a missing or inconsistent model is refused with QUALM_MODEL_INVALID', async () => {
  await assert.rejects(OnnxEncoder.open(join(tmp, 'nope.onnx')), (e: Error & { code?: string }) => e.code === 'QUALM_MODEL_INVALID');
  const bad = join(tmp, 'bad.onnx');
  copyFileSync(MODEL, bad);
  writeFileSync(join(tmp, 'bad.json'), JSON.stringify({ name: 'x', version: '1', input_kind: 'features', input_name: 'wrong', input_dim: 784, output_name: 'embedding', dim: 128, normalized: true }));
  await assert.rejects(OnnxEncoder.open(bad), /does not match its manifest .*input\.name: the model has no input "wrong" \(its inputs: pixels\)/);
  writeFileSync(join(tmp, 'bad.json'), JSON.stringify({ name: 'x' }));
  await assert.rejects(OnnxEncoder.open(bad), /model manifest .* is invalid: version/);
  writeFileSync(join(tmp, 'junk.onnx'), 'not a model');
  copyFileSync(MODEL.replace(/\.onnx$/, '.json'), join(tmp, 'junk.json'));
  await assert.rejects(OnnxEncoder.open(join(tmp, 'junk.onnx')), /cannot load model/);
});

// ---- Format 2 manifests on the real models: a copy of the .onnx in a temp dir, the manifest written beside it.

let copies = 0;
/** A copy of `model` (a symlink for a large one) in its own temp dir, with `manifest` beside it (and the tokenizer for text). */
function withManifest(model: string, manifest: Record<string, unknown>, opts: { link?: boolean; tokenizer?: string } = {}): string {
  const dir = join(tmp, `m${copies++}`);
  mkdirSync(dir);
  const path = join(dir, 'model.onnx');
  if (opts.link === true) symlinkSync(model, path);
  else copyFileSync(model, path);
  if (opts.tokenizer !== undefined) symlinkSync(opts.tokenizer, join(dir, 'tokenizer.json'));
  writeFileSync(join(dir, 'model.json'), JSON.stringify(manifest));
  return path;
}

const demoV2 = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  format_version: 2,
  name: 'fmnist-simclr',
  version: '2',
  input_kind: 'features',
  input: { name: 'pixels', shape: [-1, 784] },
  output: { name: 'embedding', normalized: true },
  dim: 128,
  ...over,
});

const maxDiff = (a: Float32Array, b: Float32Array): number => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
};

test('a format 2 manifest that reshapes the demo input to [-1, 1, 28, 28] is refused: the model fixes [N, 784]', async () => {
  const path = withManifest(MODEL, demoV2({ input: { name: 'pixels', shape: [-1, 1, 28, 28] } }));
  await assert.rejects(OnnxEncoder.open(path), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'QUALM_MODEL_INVALID');
    assert.match(e.message, /input\.shape: the model's input "pixels" has shape \["N", 784\] \(2-d\), the manifest says \[-1, 1, 28, 28\]/);
    return true;
  });
  // A dtype, an output dimension and a pooling the model cannot have are refused too, each by its field.
  await assert.rejects(OnnxEncoder.open(withManifest(MODEL, demoV2({ input: { name: 'pixels', dtype: 'uint8', shape: [-1, 784] } }))), /input\.name: the model's input "pixels" is float32, the manifest expects uint8/);
  await assert.rejects(OnnxEncoder.open(withManifest(MODEL, demoV2({ dim: 64 }))), /dim: the model's output "embedding" has 128 values per row/);
  await assert.rejects(OnnxEncoder.open(withManifest(MODEL, demoV2({ output: { name: 'embedding', pooling: 'cls' } }))), /output\.pooling: .*pooling cls expects \[batch, tokens, dim\]/);
});

test('features preprocess scale 1/255 on 0..255 values embeds as the format 1 manifest on 0..1 values', async () => {
  const set = loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]);
  const n = 37;
  const unit = set.pixels.subarray(0, n * 784);
  const bytes = Float32Array.from(unit, (v) => Math.round(v * 255));
  const v1 = await OnnxEncoder.open(MODEL);
  const v2 = await OnnxEncoder.open(withManifest(MODEL, demoV2({ preprocess: { scale: 1 / 255 } })));
  try {
    assert.equal(v2.manifest.format_version, 2);
    assert.equal(v1.manifest.input_kind === 'features' && v1.manifest.input.shape[1], 784, 'format 1 reads as format 2');
    const a = await v1.embed(unit, n);
    const b = await v2.embedAll(bytes, n, 10);
    assert.ok(maxDiff(a, b) < 1e-5, `max difference ${maxDiff(a, b)}`);
    // The caller's buffer is not touched by the preprocessing on the thread.
    assert.equal(bytes[Math.floor(bytes.length / 2)], Math.round((unit[Math.floor(bytes.length / 2)] as number) * 255));
    // Per-feature mean/std: ((x / 255) - 0.5) / 0.5 is not the same input, and gives other rows.
    const v3 = await OnnxEncoder.open(withManifest(MODEL, demoV2({ preprocess: { scale: 1 / 255, mean: new Array(784).fill(0.5), std: [0.5] } })));
    try {
      assert.ok(maxDiff(a, await v3.embed(bytes, n)) > 1e-2);
      assert.ok(maxDiff(await v3.embed(bytes, n), await v1.embed(Float32Array.from(unit, (v) => (v - 0.5) / 0.5), n)) < 1e-5);
    } finally {
      await v3.close();
    }
  } finally {
    await v1.close();
    await v2.close();
  }
});

test('a fixed batch size runs exactly that many rows, padding the last run and dropping the padding', async () => {
  const set = loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]);
  const n = 10;
  const rows = set.pixels.subarray(0, n * 784);
  const free = await OnnxEncoder.open(MODEL);
  const fixed = await OnnxEncoder.open(withManifest(MODEL, demoV2({ input: { name: 'pixels', shape: [4, 784] } })));
  try {
    assert.equal(fixed.inputDim, 784);
    const a = await free.embed(rows, n);
    const b = await fixed.embed(rows, n);
    assert.equal(b.length, n * 128);
    assert.ok(maxDiff(a, b) < 1e-5);
    assert.ok(maxDiff(a.subarray(0, 3 * 128), await fixed.embed(rows.subarray(0, 3 * 784), 3)) < 1e-5);
  } finally {
    await free.close();
    await fixed.close();
  }
});

test('an image model with the flat layout takes preprocessed rows through embed, like the features model', async () => {
  const set = loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]);
  const image = await OnnxEncoder.open(
    withManifest(MODEL, demoV2({ input_kind: 'image', input: { name: 'pixels', shape: [-1, 784], layout: 'flat' }, preprocess: { color: 'grayscale', size: { width: 28, height: 28 } } })),
  );
  const features = await OnnxEncoder.open(MODEL);
  try {
    assert.equal(image.inputKind, 'image');
    assert.equal(image.inputDim, 784);
    assert.equal(image.imageSpec?.preprocess.color, 'grayscale');
    assert.equal(features.imageSpec, undefined);
    const rows = set.pixels.subarray(0, 6 * 784);
    assert.ok(maxDiff(await image.embedAll(rows, 6, 4), await features.embed(rows, 6)) < 1e-5);
    await assert.rejects(image.embedTexts(['a']), /takes image, not text/);
  } finally {
    await image.close();
    await features.close();
  }
});

const MINILM = join(packageRoot(), '.cache', 'minilm');
const minilmV2 = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  format_version: 2,
  name: 'all-MiniLM-L6-v2',
  version: '2',
  input_kind: 'text',
  tokenizer: 'tokenizer.json',
  max_tokens: 256,
  input_names: { input_ids: 'input_ids', attention_mask: 'attention_mask', token_type_ids: 'token_type_ids' },
  output: { name: 'last_hidden_state', pooling: 'mean' },
  dim: 384,
  ...over,
});

test('text models: cls pooling, a prefix, and the l2 metric returning rows as pooled', async () => {
  const texts = ['a quiet film about the sea', 'terrible acting, I left early', 'query: a quiet film about the sea'];
  const open = (over: Record<string, unknown>): Promise<OnnxEncoder> =>
    OnnxEncoder.open(withManifest(join(MINILM, 'model.onnx'), minilmV2(over), { link: true, tokenizer: join(MINILM, 'tokenizer.json') }));
  const v1 = await OnnxEncoder.open(join(MINILM, 'model.onnx'));
  const mean = await open({});
  const cls = await open({ output: { name: 'last_hidden_state', pooling: 'cls' } });
  const prefixed = await open({ prefix: 'query: ' });
  const l2 = await open({ metric: 'l2' });
  try {
    const base = await v1.embedTexts(texts);
    assert.ok(maxDiff(base, await mean.embedTexts(texts)) < 1e-6, 'format 2 mean pooling = format 1');
    const c = await cls.embedTexts(texts);
    assert.ok(maxDiff(base, c) > 1e-2, 'cls differs from the mean');
    for (let r = 0; r < texts.length; r++) assert.ok(Math.abs(Math.hypot(...c.subarray(r * 384, (r + 1) * 384)) - 1) < 1e-5);
    // The prefix goes before each text: "x" with prefix "query: " is "query: x" without.
    const p = await prefixed.embedTexts(texts.slice(0, 1));
    assert.ok(maxDiff(p, base.subarray(2 * 384, 3 * 384)) < 1e-5);
    // l2: the mean-pooled rows as they are (not unit length), the same as normalize: false.
    assert.equal(l2.metric, 'l2');
    const raw = await l2.embedTexts(texts);
    assert.ok(maxDiff(raw, await v1.embedTexts(texts, { normalize: false })) < 1e-6);
    assert.ok(Math.abs(Math.hypot(...raw.subarray(0, 384)) - 1) > 0.05);
  } finally {
    for (const e of [v1, mean, cls, prefixed, l2]) await e.close();
  }
});

// ---- Tiny hand-written ONNX models (test/helpers/tiny-onnx.ts) for inputs and outputs the committed models lack.

const tinyDir = (): string => {
  const d = join(tmp, `tiny${copies++}`);
  mkdirSync(d);
  return d;
};
const tinyManifest = (over: Record<string, unknown>): Record<string, unknown> => ({ format_version: 2, name: 'tiny', version: '1', input_kind: 'features', metric: 'l2', ...over });

test('a uint8 input gets the rows rounded and clamped to 0..255, after the features preprocessing', async () => {
  const d = tinyDir();
  const model = writeTinyModel(join(d, 'cast.onnx'), [{ op: 'Cast', inputs: ['x'], outputs: ['y'], attributes: { to: 1 } }], [{ name: 'x', type: 'uint8', shape: ['N', 4] }], [{ name: 'y', type: 'float32', shape: ['N', 4] }]);
  writeFileSync(join(d, 'cast.json'), JSON.stringify(tinyManifest({ input: { name: 'x', dtype: 'uint8', shape: [-1, 4] }, output: { name: 'y' }, dim: 4 })));
  const enc = await OnnxEncoder.open(model);
  try {
    assert.equal(enc.metric, 'l2');
    const got = await enc.embed(Float32Array.from([-3, 2.6, 300, 7, 1.49, 1.5, 254.5, 0]), 2);
    assert.deepEqual(Array.from(got), [0, 3, 255, 7, 1, 2, 255, 0]);
  } finally {
    await enc.close();
  }
  // The same model with scale 255: 0..1 values become bytes on the thread.
  writeFileSync(join(d, 'cast.json'), JSON.stringify(tinyManifest({ input: { name: 'x', dtype: 'uint8', shape: [-1, 4] }, preprocess: { scale: 255 }, output: { name: 'y' }, dim: 4 })));
  const scaled = await OnnxEncoder.open(model);
  try {
    assert.deepEqual(Array.from(await scaled.embed(Float32Array.from([0, 0.5, 1, 2]), 1)), [0, 128, 255, 255]);
  } finally {
    await scaled.close();
  }
  // A float32 manifest on the uint8 model is refused by its dtype.
  writeFileSync(join(d, 'cast.json'), JSON.stringify(tinyManifest({ input: { name: 'x', shape: [-1, 4] }, output: { name: 'y' }, dim: 4 })));
  await assert.rejects(OnnxEncoder.open(model), /input\.name: the model's input "x" is uint8, the manifest expects float32/);
});

test('mean and cls pool a token output [n, tokens, dim] of a features model; none refuses it', async () => {
  const d = tinyDir();
  const model = writeTinyModel(join(d, 'tokens.onnx'), [{ op: 'Identity', inputs: ['x'], outputs: ['h'] }], [{ name: 'x', type: 'float32', shape: ['N', 3, 2] }], [{ name: 'h', type: 'float32', shape: ['N', 3, 2] }]);
  const rows = Float32Array.from([1, 2, 3, 4, 5, 9, /* row 2 */ -1, 0, 0, 0, 4, 6]);
  const open = async (pooling: string): Promise<OnnxEncoder> => {
    writeFileSync(join(d, 'tokens.json'), JSON.stringify(tinyManifest({ input: { name: 'x', shape: [-1, 3, 2] }, output: { name: 'h', pooling }, dim: 2 })));
    return OnnxEncoder.open(model);
  };
  const mean = await open('mean');
  try {
    assert.equal(mean.inputDim, 6);
    assert.deepEqual(Array.from(await mean.embed(rows, 2)), [3, 5, 1, 2]);
  } finally {
    await mean.close();
  }
  const cls = await open('cls');
  try {
    assert.deepEqual(Array.from(await cls.embed(rows, 2)), [1, 2, -1, 0]);
  } finally {
    await cls.close();
  }
  await assert.rejects(open('none'), /output\.pooling: the model's output "h" has shape \["N", 3, 2\]; pooling none expects \[batch, dim\]/);
});

test('a model that fixes its batch size needs the manifest to say so, and then runs in padded runs of it', async () => {
  const d = tinyDir();
  const model = writeTinyModel(join(d, 'fixed.onnx'), [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }], [{ name: 'x', type: 'float32', shape: [2, 3] }], [{ name: 'y', type: 'float32', shape: [2, 3] }]);
  writeFileSync(join(d, 'fixed.json'), JSON.stringify(tinyManifest({ input: { name: 'x', shape: [-1, 3] }, output: { name: 'y' }, dim: 3 })));
  await assert.rejects(OnnxEncoder.open(model), /input\.shape: the model's input "x" has shape \[2, 3\], the manifest says \[-1, 3\]/);
  writeFileSync(join(d, 'fixed.json'), JSON.stringify(tinyManifest({ input: { name: 'x', shape: [2, 3] }, output: { name: 'y' }, dim: 3 })));
  const enc = await OnnxEncoder.open(model);
  try {
    const rows = Float32Array.from({ length: 15 }, (_, i) => i);
    assert.deepEqual(Array.from(await enc.embed(rows, 5)), Array.from(rows));
    assert.deepEqual(Array.from(await enc.embedAll(rows, 5, 3)), Array.from(rows));
  } finally {
    await enc.close();
  }
});
