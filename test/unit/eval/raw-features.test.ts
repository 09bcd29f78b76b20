import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { loadFashionMnist } from '../../../src/datasets/index.js';
import { preNormalisationEmbeddings, preNormalisationTensor, withExtraOutput } from '../../../src/eval/index.js';
import { packageRoot } from '../../../src/util/package-root.js';

const MODEL = join(packageRoot(), 'models', 'fmnist-simclr.onnx');

test('the pre-normalisation tensor of the demo model, L2-normalised, is the model output', async () => {
  const set = loadFashionMnist('t10k');
  const n = 16;
  const x = set.pixels.slice(0, n * 784);
  const raw = await preNormalisationEmbeddings(MODEL, 'pixels', 'embedding', x, n, 784, 5);
  assert.equal(raw.dim, 128);
  const session = await ort.InferenceSession.create(MODEL);
  const out = (await session.run({ pixels: new ort.Tensor('float32', x, [n, 784]) })).embedding?.data as Float32Array;
  await session.release();
  for (let i = 0; i < n; i++) {
    const row = raw.data.subarray(i * 128, (i + 1) * 128);
    const norm = Math.hypot(...row);
    assert.ok(norm > 1.5, `row ${i} has a real norm (${norm}), not 1`);
    for (let d = 0; d < 128; d++) assert.ok(Math.abs((row[d] as number) / norm - (out[i * 128 + d] as number)) < 1e-5);
  }
});

test('an output not produced by a Div is refused; the patched model still parses', () => {
  const model = new Uint8Array(readFileSync(MODEL));
  const tensor = preNormalisationTensor(model, 'embedding');
  assert.throws(() => preNormalisationTensor(model, tensor), /not produced by a Div/);
  assert.throws(() => preNormalisationTensor(model, 'no-such-output'), /no node produces/);
  const patched = withExtraOutput(model, tensor);
  assert.equal(patched.length > model.length, true);
  assert.equal(preNormalisationTensor(patched, 'embedding'), tensor);
});
