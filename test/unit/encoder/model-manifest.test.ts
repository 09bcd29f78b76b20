import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { manifestJsonSchema } from '../../../scripts/gen-manifest-schema.js';
import { manifestMismatches, parseModelManifest, readModelManifest, type ModelSpec } from '../../../src/encoder/index.js';

const dir = mkdtempSync(join(tmpdir(), 'qualm-manifest-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, doc: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, JSON.stringify(doc));
  return p;
}

const text = {
  name: 'all-MiniLM-L6-v2',
  version: '1',
  input_kind: 'text',
  tokenizer: 'tokenizer.json',
  max_tokens: 256,
  pooling: 'mean',
  input_names: { input_ids: 'input_ids', attention_mask: 'attention_mask', token_type_ids: 'token_type_ids' },
  output_name: 'last_hidden_state',
  dim: 384,
};

test('the committed features manifests read as before, as format 2', async () => {
  for (const file of ['models/fmnist-simclr.json', 'models/fmnist-simclr-seed2.json', 'models/fmnist-simclr-seed3.json']) {
    const m = await readModelManifest(file);
    assert.equal(m.input_kind, 'features');
    if (m.input_kind === 'features') {
      assert.deepEqual([m.input.name, m.input.shape, m.input.dtype, m.output.name, m.output.pooling, m.output.normalized, m.dim], ['pixels', [-1, 784], 'float32', 'embedding', 'none', true, 128]);
      assert.deepEqual(m.preprocess, { scale: 1, mean: 0, std: 1 });
    }
    assert.equal(m.metric, 'cosine');
    assert.equal(m.format_version, 2);
  }
  // Extra keys (preprocess, seed, ...) are allowed and dropped.
  assert.equal((JSON.parse(readFileSync('models/fmnist-simclr.json', 'utf8')) as Record<string, unknown>).preprocess, 'pixels/255');
});

test('a text manifest reads with its tokenizer, max_tokens, pooling and input names', async () => {
  const m = await readModelManifest(write('text.json', text));
  assert.equal(m.input_kind, 'text');
  if (m.input_kind === 'text') {
    assert.deepEqual([m.tokenizer, m.max_tokens, m.output.pooling, m.output.name, m.dim, m.prefix, m.metric], ['tokenizer.json', 256, 'mean', 'last_hidden_state', 384, '', 'cosine']);
    assert.equal(m.input_names.token_type_ids, 'token_type_ids');
  }
  const m2 = await readModelManifest(write('text2.json', { ...text, input_names: { input_ids: 'input_ids', attention_mask: 'attention_mask' } }));
  assert.ok(m2.input_kind === 'text' && m2.input_names.token_type_ids === undefined);
});

test('bad manifests are refused with the field named', async () => {
  const refused = async (doc: unknown, field: RegExp): Promise<void> => {
    await assert.rejects(readModelManifest(write('bad.json', doc)), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'QUALM_MODEL_INVALID');
      assert.match(err.message, field);
      return true;
    });
  };
  await refused({ ...text, pooling: 'cls' }, /pooling/);
  await refused({ ...text, max_tokens: 0 }, /max_tokens/);
  await refused({ ...text, tokenizer: undefined }, /tokenizer/);
  await refused({ ...text, input_names: { input_ids: 'input_ids' } }, /input_names\.attention_mask/);
  await refused({ ...text, input_kind: 'image_b64' }, /input_kind/);
  // Without a kind, the common fields are named too.
  await refused({ name: 'x' }, /is invalid: version: .*; input_kind: /);
  // A features manifest keeps its own required fields.
  await refused({ name: 'x', version: '1', input_kind: 'features', input_name: 'pixels', output_name: 'e', dim: 8, normalized: true }, /input_dim/);
});

test('the MiniLM manifest in the cache reads unchanged, when it is there', async (t) => {
  const file = '.cache/minilm/model.json';
  if (!existsSync(file)) {
    // The cache is fetched by scripts/fetch-minilm.sh; the committed manifests above cover format 1 regardless.
    t.diagnostic('no .cache/minilm/model.json');
    return;
  }
  const m = await readModelManifest(file);
  assert.ok(m.input_kind === 'text' && m.output.pooling === 'mean' && m.dim === 384 && m.input_names.token_type_ids === 'token_type_ids');
});

const featuresV2 = {
  format_version: 2,
  name: 'demo',
  version: '2',
  input_kind: 'features',
  input: { name: 'pixels', dtype: 'float32', shape: [-1, 784] },
  preprocess: { scale: 1 / 255 },
  output: { name: 'embedding', normalized: true },
  dim: 128,
};
const imageV2 = {
  format_version: 2,
  name: 'vit',
  version: '1',
  input_kind: 'image',
  input: { name: 'pixel_values', shape: [-1, 3, 224, 224], layout: 'NCHW' },
  preprocess: { color: 'rgb', resize: { shortest_edge: 256 }, center_crop: true, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  output: { name: 'last_hidden_state', pooling: 'cls' },
  dim: 768,
  metric: 'ip',
};
const textV2 = {
  format_version: 2,
  name: 'e5-small',
  version: '2',
  input_kind: 'text',
  tokenizer: 'tokenizer.json',
  max_tokens: 512,
  input_names: { input_ids: 'input_ids', attention_mask: 'attention_mask' },
  prefix: 'query: ',
  output: { name: 'last_hidden_state', pooling: 'mean' },
  dim: 384,
};

test('format 2 manifests of every kind read with their defaults filled in', () => {
  const f = parseModelManifest(featuresV2, 'f.json');
  assert.ok(f.input_kind === 'features');
  assert.deepEqual(f.preprocess, { scale: 1 / 255, mean: 0, std: 1 });
  assert.deepEqual([f.output.pooling, f.output.normalized, f.metric], ['none', true, 'cosine']);
  const i = parseModelManifest(imageV2, 'i.json');
  assert.ok(i.input_kind === 'image');
  assert.deepEqual([i.input.dtype, i.input.layout, i.preprocess.scale, i.preprocess.max_pixels, i.output.pooling, i.metric], ['float32', 'NCHW', 1 / 255, 40_000_000, 'cls', 'ip']);
  const t = parseModelManifest(textV2, 't.json');
  assert.ok(t.input_kind === 'text' && t.prefix === 'query: ' && t.output.normalized === false);
  // A fixed batch size and uint8 input, per-feature mean/std.
  const u = parseModelManifest({ ...featuresV2, input: { name: 'x', dtype: 'uint8', shape: [8, 3] }, preprocess: { mean: [1, 2, 3], std: [1, 1, 2] } }, 'u.json');
  assert.ok(u.input_kind === 'features' && u.input.shape[0] === 8 && u.input.dtype === 'uint8');
});

test('every bad format 2 field is named with what was expected', () => {
  const refused = (doc: unknown, ...fields: RegExp[]): void => {
    assert.throws(
      () => parseModelManifest(doc, 'm.json'),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'QUALM_MODEL_INVALID');
        assert.match(err.message, /model manifest m\.json is invalid/);
        for (const f of fields) assert.match(err.message, f);
        return true;
      },
    );
  };
  const withInput = (doc: typeof featuresV2 | typeof imageV2, input: Record<string, unknown>): unknown => ({ ...doc, input: { ...doc.input, ...input } });
  refused({ ...featuresV2, format_version: 3 }, /format_version: 3 is not a format this qualm reads: 2, or no format_version for format 1/);
  refused({ ...featuresV2, format_version: '2' }, /format_version: "2" is not a format/);
  refused({ ...featuresV2, input_kind: 'audio', name: '' }, /input_kind: expected one of features, image, text, got "audio"/, /name: /);
  refused(withInput(featuresV2, { shape: [0, 784] }), /input\.shape: the first dimension is the batch: -1 \(any\) or a positive size/);
  refused(withInput(featuresV2, { shape: [-1, 0] }), /input\.shape: dimensions after the batch must be positive integers/);
  refused(withInput(featuresV2, { shape: [-1] }), /input\.shape: /);
  refused(withInput(featuresV2, { dtype: 'float16' }), /input\.dtype: .*float32.*uint8/);
  refused(withInput(featuresV2, { name: '' }), /input\.name: /);
  refused(withInput(featuresV2, { nme: 'x' }), /input: .*nme/);
  refused({ ...featuresV2, preprocess: { scale: 'x' } }, /preprocess\.scale: /);
  refused({ ...featuresV2, preprocess: { mean: [1, 2] } }, /preprocess\.mean: expected one number or 784 \(one per feature\), got 2/);
  refused({ ...featuresV2, preprocess: { std: 0 } }, /preprocess\.std: expected non-zero values/);
  refused({ ...featuresV2, output: { name: 'embedding', pooling: 'max' } }, /output\.pooling: .*none.*mean.*cls/);
  refused({ ...featuresV2, output: {} }, /output\.name: /);
  refused({ ...featuresV2, metric: 'euclidean' }, /metric: .*cosine.*l2.*ip/);
  refused({ ...featuresV2, dim: -3 }, /dim: /);
  refused({ ...featuresV2, version: undefined }, /version: /);
  refused(withInput(imageV2, { shape: [-1, 1, 224, 224] }), /input\.shape: rgb images have 3 channel\(s\), the NCHW shape has 1/);
  refused(withInput(imageV2, { shape: [-1, 224, 224] }), /input\.shape: an NCHW image input has 4 dimensions/);
  refused(withInput(imageV2, { layout: 'CHW' }), /input\.layout: /);
  refused(withInput(imageV2, { layout: 'flat', shape: [-1, 784] }), /preprocess\.size: the flat layout needs the image size/);
  refused({ ...imageV2, preprocess: { ...imageV2.preprocess, mean: [0.5, 0.5] } }, /preprocess\.mean: expected one number or 3 \(one per channel\), got 2/);
  refused({ ...imageV2, preprocess: { ...imageV2.preprocess, color: 'cmyk' } }, /preprocess\.color: /);
  refused({ ...imageV2, preprocess: undefined }, /preprocess: /);
  refused({ ...textV2, max_tokens: 1 }, /max_tokens: /);
  refused({ ...textV2, input_names: { input_ids: 'input_ids' } }, /input_names\.attention_mask: /);
  refused({ ...textV2, tokenizer: undefined, prefix: 3 }, /tokenizer: /, /prefix: /);
  refused([], /\(top level\): expected a JSON object/);
});

test('a format 1 manifest with a format_version key of 1 is refused: format 1 has none', () => {
  assert.throws(() => parseModelManifest({ ...text, format_version: 1 }, 'm.json'), /format_version: 1 is not a format this qualm reads/);
});

test('manifestMismatches names the fields that disagree with the model', () => {
  const spec = parseModelManifest(featuresV2, 'f.json');
  const inputs = [{ name: 'pixels', type: 'float32', shape: ['N', 784] }];
  const outputs = [{ name: 'embedding', type: 'float32', shape: ['N', 128] }];
  assert.deepEqual(manifestMismatches(spec, inputs, outputs), []);
  // Names only (an onnxruntime that does not describe its values): only the names are checked.
  assert.deepEqual(manifestMismatches(spec, [{ name: 'pixels', type: null, shape: [] }], [{ name: 'embedding', type: null, shape: [] }]), []);
  const reshaped = parseModelManifest({ ...featuresV2, input: { name: 'pixels', shape: [-1, 1, 28, 28] } }, 'f.json');
  assert.match(manifestMismatches(reshaped, inputs, outputs).join('\n'), /^input\.shape: the model's input "pixels" has shape \["N", 784\] \(2-d\), the manifest says \[-1, 1, 28, 28\]/);
  const wide = parseModelManifest({ ...featuresV2, input: { name: 'pixels', shape: [-1, 785] }, dim: 64 }, 'f.json');
  const problems = manifestMismatches(wide, inputs, outputs);
  assert.equal(problems.length, 2);
  assert.match(problems[0] as string, /^input\.shape: .*\["N", 784\], the manifest says \[-1, 785\]/);
  assert.match(problems[1] as string, /^dim: the model's output "embedding" has 128 values per row/);
  const u8 = parseModelManifest({ ...featuresV2, input: { name: 'pixels', dtype: 'uint8', shape: [-1, 784] } }, 'f.json');
  assert.match(manifestMismatches(u8, inputs, outputs).join(), /input\.name: the model's input "pixels" is float32, the manifest expects uint8/);
  // A model with a fixed batch wants the manifest to say so; a manifest's fixed batch on a symbolic one is fine.
  assert.match(manifestMismatches(spec, [{ name: 'pixels', type: 'float32', shape: [16, 784] }], outputs).join(), /input\.shape: .*\[16, 784\], the manifest says \[-1, 784\]/);
  const fixed = parseModelManifest({ ...featuresV2, input: { name: 'pixels', shape: [16, 784] } }, 'f.json');
  assert.deepEqual(manifestMismatches(fixed, inputs, outputs), []);
  const pooled: ModelSpec = { ...spec, output: { name: 'embedding', pooling: 'mean', normalized: false } };
  assert.match(manifestMismatches(pooled, inputs, outputs).join(), /output\.pooling: .*pooling mean expects \[batch, tokens, dim\]/);
  assert.match(manifestMismatches(spec, [{ name: 'x', type: 'float32', shape: [] }], [{ name: 'y', type: 'float32', shape: [] }]).join('\n'), /input\.name: the model has no input "pixels" \(its inputs: x\)\noutput\.name: the model has no output "embedding" \(its outputs: y\)/);
  const t = parseModelManifest(textV2, 't.json');
  const ids = { name: 'input_ids', type: 'int64', shape: ['b', 's'] };
  assert.deepEqual(manifestMismatches(t, [ids, { ...ids, name: 'attention_mask' }], [{ name: 'last_hidden_state', type: 'float32', shape: ['b', 's', 384] }]), []);
  assert.match(manifestMismatches(t, [ids, { ...ids, name: 'attention_mask', type: 'int32' }], [{ name: 'last_hidden_state', type: 'float32', shape: ['b', 384] }]).join('\n'), /input_names\.attention_mask: .* is int32, the manifest expects int64\noutput\.pooling: /);
});

// ---- The JSON Schema (docs/model-manifest.schema.json) and docs/models.md.

/** Every property name the schema declares, at any depth. */
function schemaProperties(node: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(node)) for (const n of node) schemaProperties(n, out);
  else if (typeof node === 'object' && node !== null) {
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      if (key === 'properties' && typeof value === 'object' && value !== null) for (const p of Object.keys(value)) out.add(p);
      schemaProperties(value, out);
    }
  }
  return out;
}

/** The manifests among the ```json blocks of docs/models.md (those with a format_version). */
function docExamples(): unknown[] {
  const doc = readFileSync('docs/models.md', 'utf8');
  return [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1] as string) as unknown).filter((d) => typeof d === 'object' && d !== null && 'format_version' in d);
}

test('the committed JSON Schema is the one generated from the zod schema', () => {
  assert.equal(readFileSync('docs/model-manifest.schema.json', 'utf8'), manifestJsonSchema(), 'stale: run node --import tsx scripts/gen-manifest-schema.ts');
});

test('the committed manifests and the examples of docs/models.md validate against the JSON Schema, and read', async () => {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  const validate = ajv.compile(JSON.parse(readFileSync('docs/model-manifest.schema.json', 'utf8')) as object);
  const files = ['models/fmnist-simclr.json', 'models/fmnist-simclr-seed2.json', 'models/fmnist-simclr-seed3.json', ...(existsSync('.cache/minilm/model.json') ? ['.cache/minilm/model.json'] : [])];
  for (const f of files) {
    assert.ok(validate(JSON.parse(readFileSync(f, 'utf8'))), `${f}: ${ajv.errorsText(validate.errors)}`);
    await readModelManifest(f);
  }
  const examples = docExamples();
  assert.equal(examples.length, 3, 'three example manifests: features, text, image');
  assert.deepEqual(
    examples.map((e) => (e as { input_kind: string }).input_kind),
    ['features', 'text', 'image'],
  );
  for (const [i, e] of examples.entries()) {
    assert.ok(validate(e), `example ${i}: ${ajv.errorsText(validate.errors)}`);
    parseModelManifest(e, `docs/models.md example ${i}`);
  }
  // The schema refuses what the reader refuses, field by field (it can fail).
  assert.equal(validate({ ...featuresV2, metric: 'euclid' }), false);
  assert.equal(validate({ ...featuresV2, output: { name: 'e', pooling: 'max' } }), false);
  assert.equal(validate({ ...featuresV2, format_version: 3 }), false);
  assert.equal(validate({ ...text, format_version: 1 }), false);
  assert.equal(validate({ ...featuresV2, input: { ...featuresV2.input, typo: 1 } }), false);
  assert.equal(validate(imageV2), true);
  assert.equal(validate(textV2), true);
});

test('docs/models.md names every field of the schema', () => {
  const doc = readFileSync('docs/models.md', 'utf8');
  const missing = [...schemaProperties(JSON.parse(readFileSync('docs/model-manifest.schema.json', 'utf8')))].filter((p) => !new RegExp('`([a-z_]+\\.)*' + p + '`').test(doc));
  assert.deepEqual(missing, []);
});

test('value_range: format 1 at the top level and format 2 under input both read as input.value_range; the committed demo manifests take [0, 1]', async () => {
  for (const file of ['models/fmnist-simclr.json', 'models/fmnist-simclr-seed2.json', 'models/fmnist-simclr-seed3.json']) {
    const m = await readModelManifest(file);
    assert.ok(m.input_kind === 'features');
    assert.deepEqual(m.input.value_range, [0, 1], file);
  }
  const v1 = { name: 'x', version: '1', input_kind: 'features', input_name: 'pixels', input_dim: 4, output_name: 'e', dim: 8, normalized: true };
  const one = parseModelManifest({ ...v1, value_range: [-1, 1] }, 'v1.json');
  assert.ok(one.input_kind === 'features' && one.input.value_range?.join() === '-1,1');
  const none = parseModelManifest(v1, 'v1.json');
  assert.ok(none.input_kind === 'features' && !('value_range' in none.input), 'absent stays absent');
  const two = parseModelManifest({ ...featuresV2, input: { ...featuresV2.input, value_range: [0, 255] } }, 'v2.json');
  assert.ok(two.input_kind === 'features' && two.input.value_range?.join() === '0,255');
  assert.ok(!('value_range' in (parseModelManifest(featuresV2, 'v2.json') as { input: object }).input));

  const refused = (doc: unknown, field: RegExp): void => {
    assert.throws(
      () => parseModelManifest(doc, 'm.json'),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'QUALM_MODEL_INVALID');
        assert.match(err.message, field);
        return true;
      },
    );
  };
  for (const bad of [[1, 0], [0.5, 0.5], [0], [0, 1, 2], ['0', 1], [0, Infinity], [NaN, 1], 'x']) {
    refused({ ...v1, value_range: bad }, /is invalid: value_range(\.\d)?: /);
    refused({ ...featuresV2, input: { ...featuresV2.input, value_range: bad } }, /is invalid: input\.value_range(\.\d)?: /);
  }
  refused({ ...v1, value_range: [1, 0] }, /value_range: expected \[low, high\] with low below high/);
  // Images are decoded by qualm and texts tokenized: there is no wire value for a range to bound.
  refused({ ...imageV2, input: { ...imageV2.input, value_range: [0, 1] } }, /input: .*value_range/);
});
