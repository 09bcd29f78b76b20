// `qualm model init` and `qualm model check` driven as a user would, on temp copies of the real
// demo encoder and of all-MiniLM-L6-v2 (model.onnx and tokenizer.json, linked into a temp dir).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { packageRoot } from '../../src/util/package-root.js';
import { writeTinyModel } from '../helpers/tiny-onnx.js';

const root = packageRoot();
const dir = mkdtempSync(join(tmpdir(), 'qualm-model-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const qualm = (...args: string[]) => spawnSync(process.execPath, [join(root, 'bin/qualm.js'), 'model', ...args], { encoding: 'utf8', cwd: dir });

interface CheckReport {
  dim: number;
  metric: string;
  batch: number;
  input_kind: string;
  norm: { mean: number; min: number; max: number };
  normalized: { manifest: boolean; measured: boolean; matches: boolean };
  finite: boolean;
  ms_per_batch: number;
}

test('model init and check on the demo features encoder', () => {
  mkdirSync(join(dir, 'demo'));
  const model = join(dir, 'demo', 'enc.onnx');
  copyFileSync(join(root, 'models/fmnist-simclr.onnx'), model);
  const manifest = join(dir, 'demo', 'enc.json');

  const init = qualm('init', model);
  assert.equal(init.status, 0, init.stderr);
  assert.match(init.stdout, /inputs:\n {2}pixels {2}float32 {2}\[N\?, 784\]\noutputs:\n {2}embedding {2}float32 {2}\[N\?, 128\]/);
  assert.match(init.stdout, /wrote .*enc\.json \(features model\)/);
  assert.match(init.stderr, /^fill in: output\.normalized/m);
  assert.match(init.stderr, /^fill in: preprocess /m);
  const doc = JSON.parse(readFileSync(manifest, 'utf8')) as Record<string, unknown>;
  assert.deepEqual(doc.input, { name: 'pixels', dtype: 'float32', shape: [-1, 784] });
  assert.deepEqual([doc.format_version, doc.input_kind, doc.dim, doc.metric], [2, 'features', 128, 'cosine']);

  // It refuses to overwrite without --force (a usage error), and --out writes elsewhere.
  const again = qualm('init', model);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /enc\.json exists; pass --force to overwrite it/);
  assert.equal(qualm('init', model, '--force').status, 0);
  const other = join(dir, 'demo', 'other.json');
  assert.equal(qualm('init', model, '--out', other).status, 0);
  assert.ok(existsSync(other));

  const check = qualm('check', model, '--batch', '5');
  assert.equal(check.status, 0, check.stderr);
  const r = JSON.parse(check.stdout) as CheckReport;
  assert.deepEqual([r.dim, r.metric, r.batch, r.input_kind, r.finite], [128, 'cosine', 5, 'features', true]);
  // The demo encoder already returns unit rows; the starter manifest says normalized: false.
  assert.ok(Math.abs(r.norm.mean - 1) < 1e-3 && Math.abs(r.norm.min - 1) < 1e-3);
  assert.deepEqual(r.normalized, { manifest: false, measured: true, matches: false });
  assert.match(check.stderr, /output\.normalized is false in the manifest, but the rows are unit length/);
  assert.ok(r.ms_per_batch > 0);
  writeFileSync(manifest, JSON.stringify({ ...doc, output: { name: 'embedding', normalized: true } }));
  assert.deepEqual((JSON.parse(qualm('check', model).stdout) as CheckReport).normalized, { manifest: true, measured: true, matches: true });
});

test('model init --value-range writes input.value_range and model check prints it (null without one); a bad range exits 2', () => {
  mkdirSync(join(dir, 'ranged'));
  const model = join(dir, 'ranged', 'enc.onnx');
  copyFileSync(join(root, 'models/fmnist-simclr.onnx'), model);
  const init = qualm('init', model, '--value-range', '0,1');
  assert.equal(init.status, 0, init.stderr);
  assert.doesNotMatch(init.stderr, /fill in: input\.value_range/);
  const doc = JSON.parse(readFileSync(join(dir, 'ranged', 'enc.json'), 'utf8')) as { input: unknown };
  assert.deepEqual(doc.input, { name: 'pixels', dtype: 'float32', shape: [-1, 784], value_range: [0, 1] });
  const check = qualm('check', model);
  assert.equal(check.status, 0, check.stderr);
  assert.deepEqual((JSON.parse(check.stdout) as { value_range: unknown }).value_range, [0, 1]);
  const bad = qualm('init', model, '--force', '--value-range', '1,0');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--value-range takes LO,HI: two finite numbers, LO below HI/);
  assert.match(qualm('check', model, '--value-range', '0,1').stderr, /--kind, --value-range, --out and --force are options of init/);
  // The committed demo manifest declares [0, 1] (format 1, top level); a copy without one prints null.
  const demo = qualm('check', join(root, 'models/fmnist-simclr.onnx'));
  assert.equal(demo.status, 0, demo.stderr);
  assert.deepEqual((JSON.parse(demo.stdout) as { value_range: unknown }).value_range, [0, 1]);
  assert.equal(qualm('init', model, '--force').status, 0);
  assert.equal((JSON.parse(qualm('check', model).stdout) as { value_range: unknown }).value_range, null);
});

test('model check on an image manifest (flat layout) of the demo encoder runs random pixels through its preprocessing', () => {
  mkdirSync(join(dir, 'image'));
  const model = join(dir, 'image', 'enc.onnx');
  copyFileSync(join(root, 'models/fmnist-simclr.onnx'), model);
  writeFileSync(
    join(dir, 'image', 'enc.json'),
    JSON.stringify({
      format_version: 2,
      name: 'fmnist-simclr-png',
      version: '1',
      input_kind: 'image',
      input: { name: 'pixels', shape: [-1, 784], layout: 'flat' },
      preprocess: { color: 'grayscale', size: { width: 28, height: 28 } },
      output: { name: 'embedding', normalized: true },
      dim: 128,
    }),
  );
  const check = qualm('check', model, '--batch', '3');
  assert.equal(check.status, 0, check.stderr);
  const r = JSON.parse(check.stdout) as CheckReport;
  assert.deepEqual([r.input_kind, r.dim, r.batch, r.normalized.matches], ['image', 128, 3, true]);
});

test('model check refuses a bad manifest naming the field, and a missing model, with exit 1; usage errors exit 2', () => {
  mkdirSync(join(dir, 'bad'));
  const model = join(dir, 'bad', 'enc.onnx');
  copyFileSync(join(root, 'models/fmnist-simclr.onnx'), model);
  const manifest = join(dir, 'bad', 'enc.json');
  const base = { format_version: 2, name: 'x', version: '1', input_kind: 'features', input: { name: 'pixels', shape: [-1, 784] }, output: { name: 'embedding' }, dim: 128 };
  const refused = (doc: unknown, message: RegExp): void => {
    writeFileSync(manifest, JSON.stringify(doc));
    const res = qualm('check', model);
    assert.equal(res.status, 1, res.stderr);
    assert.match(res.stderr, /^qualm model: \[QUALM_MODEL_INVALID\] /);
    assert.match(res.stderr, message);
  };
  refused({ ...base, metric: 'euclid' }, /is invalid: metric: .*"cosine"\|"l2"\|"ip"/);
  refused({ ...base, input: { name: 'pixels', shape: [-1, 1, 28, 28] } }, /does not match its manifest .*input\.shape: the model's input "pixels" has shape \["N", 784\] \(2-d\), the manifest says \[-1, 1, 28, 28\]/);
  refused({ ...base, format_version: 7 }, /format_version: 7 is not a format this qualm reads/);

  const missing = qualm('check', join(dir, 'nope.onnx'));
  assert.equal(missing.status, 1);
  const junk = join(dir, 'bad', 'junk.onnx');
  writeFileSync(junk, 'not a model');
  const bad = qualm('init', junk);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /\[QUALM_MODEL_INVALID\] cannot load model/);

  for (const args of [[], ['frob', model], ['init'], ['check', '--batch', '2'], ['init', model, '--batch', '2'], ['check', model, '--force'], ['check', model, '--batch', '0'], ['init', model, '--nope']]) {
    const res = qualm(...args);
    assert.equal(res.status, 2, `qualm model ${args.join(' ')}: ${res.stderr}`);
    assert.match(res.stderr, /Usage: qualm model init MODEL\.onnx/);
  }
  const help = qualm('--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /qualm model check MODEL\.onnx \[--batch B\]/);
});

test('model init and check on all-MiniLM-L6-v2 with its tokenizer beside it', () => {
  const minilm = join(root, '.cache', 'minilm');
  mkdirSync(join(dir, 'text'));
  const model = join(dir, 'text', 'minilm.onnx');
  symlinkSync(join(minilm, 'model.onnx'), model);
  // Without a tokenizer.json beside the model, init says so.
  const bare = qualm('init', model, '--out', join(dir, 'text', 'bare.json'));
  assert.equal(bare.status, 0, bare.stderr);
  assert.match(bare.stderr, /^fill in: tokenizer \(no tokenizer\.json beside the model/m);
  symlinkSync(join(minilm, 'tokenizer.json'), join(dir, 'text', 'tokenizer.json'));

  const init = qualm('init', model);
  assert.equal(init.status, 0, init.stderr);
  assert.match(init.stdout, /input_ids {2}int64 {2}\[batch_size\?, sequence_length\?\]/);
  assert.match(init.stdout, /last_hidden_state {2}float32 {2}\[batch_size\?, sequence_length\?, 384\]/);
  assert.match(init.stderr, /^fill in: max_tokens \(written 128, the tokenizer's truncation length/m);
  assert.doesNotMatch(init.stderr, /fill in: tokenizer /);
  const doc = JSON.parse(readFileSync(join(dir, 'text', 'minilm.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual([doc.input_kind, doc.tokenizer, doc.max_tokens, doc.dim, doc.prefix], ['text', 'tokenizer.json', 128, 384, '']);
  assert.deepEqual(doc.output, { name: 'last_hidden_state', pooling: 'mean', normalized: false });
  assert.deepEqual(doc.input_names, { input_ids: 'input_ids', attention_mask: 'attention_mask', token_type_ids: 'token_type_ids' });

  const check = qualm('check', model, '--batch', '2');
  assert.equal(check.status, 0, check.stderr);
  const r = JSON.parse(check.stdout) as CheckReport;
  assert.deepEqual([r.input_kind, r.dim, r.batch, r.metric, r.finite], ['text', 384, 2, 'cosine', true]);
  // Mean-pooled MiniLM rows are not unit length, as the manifest says.
  assert.ok(r.norm.min > 1.5, `norm ${JSON.stringify(r.norm)}`);
  assert.deepEqual(r.normalized, { manifest: false, measured: false, matches: true });
});

test('model init guesses NCHW and NHWC image inputs from where the channels sit, and check runs them', () => {
  mkdirSync(join(dir, 'img'));
  const nchw = writeTinyModel(
    join(dir, 'img', 'nchw.onnx'),
    [{ op: 'ReduceMean', inputs: ['pixel_values'], outputs: ['emb'], attributes: { axes: [2, 3], keepdims: 0 } }],
    [{ name: 'pixel_values', type: 'float32', shape: ['batch', 3, 8, 8] }],
    [{ name: 'emb', type: 'float32', shape: ['batch', 3] }],
  );
  const init = qualm('init', nchw);
  assert.equal(init.status, 0, init.stderr);
  assert.match(init.stdout, /pixel_values {2}float32 {2}\[batch\?, 3, 8, 8\]/);
  assert.match(init.stderr, /^fill in: preprocess\.mean and preprocess\.std/m);
  const doc = JSON.parse(readFileSync(join(dir, 'img', 'nchw.json'), 'utf8')) as { input_kind: string; input: unknown; preprocess: { color: string }; dim: number };
  assert.deepEqual([doc.input_kind, doc.preprocess.color, doc.dim], ['image', 'rgb', 3]);
  assert.deepEqual(doc.input, { name: 'pixel_values', dtype: 'float32', shape: [-1, 3, 8, 8], layout: 'NCHW' });
  const check = qualm('check', nchw, '--batch', '4');
  assert.equal(check.status, 0, check.stderr);
  const r = JSON.parse(check.stdout) as CheckReport;
  assert.deepEqual([r.input_kind, r.dim, r.batch, r.finite], ['image', 3, 4, true]);
  // The mean of random pixels / 255 per channel: about 0.5, so the rows have norm about sqrt(3) / 2.
  assert.ok(Math.abs(r.norm.mean - Math.sqrt(3) / 2) < 0.1, JSON.stringify(r.norm));

  const nhwc = writeTinyModel(
    join(dir, 'img', 'nhwc.onnx'),
    [{ op: 'ReduceMean', inputs: ['image'], outputs: ['emb'], attributes: { axes: [1, 2], keepdims: 0 } }],
    [{ name: 'image', type: 'float32', shape: [1, 8, 8, 1] }],
    [{ name: 'emb', type: 'float32', shape: [1, 1] }],
  );
  assert.equal(qualm('init', nhwc).status, 0);
  const doc2 = JSON.parse(readFileSync(join(dir, 'img', 'nhwc.json'), 'utf8')) as { input: unknown; preprocess: { color: string } };
  assert.deepEqual(doc2.input, { name: 'image', dtype: 'float32', shape: [1, 8, 8, 1], layout: 'NHWC' });
  assert.equal(doc2.preprocess.color, 'grayscale');
  // A fixed batch of 1 wins over --batch.
  const check2 = qualm('check', nhwc, '--batch', '4');
  assert.equal(check2.status, 0, check2.stderr);
  assert.equal((JSON.parse(check2.stdout) as CheckReport).batch, 1);
});
