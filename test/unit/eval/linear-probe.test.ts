import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../../src/cli/sample-mix.js';
import { accuracy, trainLinearProbe } from '../../../src/eval/index.js';

/** Gaussian blobs: class j centred on a random point, unit noise. */
function blobs(n: number, dim: number, classes: number, spread: number, seed: number) {
  const rnd = seededRandom(seed);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  const centres = Array.from({ length: classes }, () => Array.from({ length: dim }, () => gauss() * spread));
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    y[i] = c;
    for (let d = 0; d < dim; d++) x[i * dim + d] = (centres[c]?.[d] ?? 0) + gauss();
  }
  return { x, y };
}

test('the probe separates well-separated classes almost perfectly', () => {
  const all = blobs(3000, 16, 4, 3, 1);
  // Train on the first 2000 rows, test on the 1000 held out.
  const probe = trainLinearProbe(all.x.subarray(0, 2000 * 16), all.y.subarray(0, 2000), 2000, 16, 4, { epochs: 10, batchSize: 128, learningRate: 0.05, weightDecay: 1e-4, seed: 1 });
  const xt = all.x.subarray(2000 * 16);
  assert.ok(accuracy(probe.predict(xt, 1000), all.y.subarray(2000)) > 0.97);
  const p = probe.predictProba(xt.subarray(0, 16), 1);
  assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-9, 'probabilities sum to 1');
});

test('on pure noise it is near chance, and it is deterministic for a seed', () => {
  const rnd = seededRandom(9);
  const n = 2000;
  const x = Float32Array.from({ length: n * 8 }, () => rnd());
  const y = Int32Array.from({ length: n }, () => Math.floor(rnd() * 5));
  const a = trainLinearProbe(x, y, n, 8, 5, { epochs: 5, batchSize: 100, learningRate: 0.01, weightDecay: 0, seed: 3 });
  const b = trainLinearProbe(x, y, n, 8, 5, { epochs: 5, batchSize: 100, learningRate: 0.01, weightDecay: 0, seed: 3 });
  const xt = Float32Array.from({ length: 1000 * 8 }, () => rnd());
  const yt = Int32Array.from({ length: 1000 }, () => Math.floor(rnd() * 5));
  assert.ok(accuracy(a.predict(xt, 1000), yt) < 0.3);
  assert.deepEqual(a.predictProba(xt.subarray(0, 80), 10), b.predictProba(xt.subarray(0, 80), 10));
});

test('accuracy', () => {
  assert.equal(accuracy([1, 2, 3, 4], [1, 2, 0, 4]), 0.75);
  assert.throws(() => accuracy([], []), RangeError);
});
