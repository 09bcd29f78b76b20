// The real ONNX encoder on its inference thread.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { SLICE_FASHION_MNIST_DIR, loadFashionMnist } from '../../src/datasets/index.js';
import { OnnxEncoder } from '../../src/encoder/index.js';

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
