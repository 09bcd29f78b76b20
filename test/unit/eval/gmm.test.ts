import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fitDiagonalGmm } from '../../../src/eval/index.js';
import { seededRandom } from '../../../src/util/random.js';

function gaussian(rnd: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

/** n points around `centres` (diagonal noise with per-cluster scale), cluster i % k. */
function clusters(centres: readonly number[][], scales: readonly number[], n: number, seed: number): Float32Array {
  const rnd = seededRandom(seed);
  const dim = (centres[0] as number[]).length;
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = i % centres.length;
    for (let d = 0; d < dim; d++) x[i * dim + d] = ((centres[c] as number[])[d] as number) + (scales[c] as number) * gaussian(rnd);
  }
  return x;
}

test('recovers well-separated clusters: means, variances and weights', () => {
  const centres = [
    [0, 0, 0],
    [10, 0, 5],
    [0, 10, -5],
  ];
  const scales = [1, 0.5, 2];
  const n = 3000;
  const x = clusters(centres, scales, n, 2);
  const g = fitDiagonalGmm(x, n, 3, { components: 3, maxIter: 200, tol: 1e-8, varianceFloor: 1e-6, kmeansIter: 10, seed: 1 });
  for (const [c, centre] of centres.entries()) {
    // The fitted component nearest to this centre.
    let best = 0;
    let bestD = Infinity;
    for (let k = 0; k < 3; k++) {
      const d = centre.reduce((s, v, j) => s + (v - (g.means[k * 3 + j] as number)) ** 2, 0);
      if (d < bestD) {
        bestD = d;
        best = k;
      }
    }
    assert.ok(Math.sqrt(bestD) < 0.3, `centre ${c} recovered within ${Math.sqrt(bestD)}`);
    for (let j = 0; j < 3; j++) {
      const v = g.variances[best * 3 + j] as number;
      assert.ok(Math.abs(v / (scales[c] as number) ** 2 - 1) < 0.15, `variance ${v} for scale ${scales[c]}`);
    }
    assert.ok(Math.abs((g.weights[best] as number) - 1 / 3) < 0.01);
  }
  // A point at a centre is far likelier than one between clusters.
  const ll = g.logLikelihood(Float32Array.from([10, 0, 5, 5, 5, 0]), 2);
  assert.ok((ll[0] as number) > (ll[1] as number) + 10);
});

test('the log-likelihood never decreases over EM iterations, and fitting is seeded', () => {
  const rnd = seededRandom(4);
  const dim = 8;
  const centres = Array.from({ length: 6 }, () => Array.from({ length: dim }, () => 3 * gaussian(rnd)));
  const n = 2000;
  const x = clusters(centres, [1, 1, 0.7, 1.5, 1, 0.3], n, 5);
  const opts = { components: 10, maxIter: 60, tol: 0, varianceFloor: 1e-6, kmeansIter: 2, seed: 3 };
  const g = fitDiagonalGmm(x, n, dim, opts);
  assert.ok(g.trace.length >= 2);
  for (let i = 1; i < g.trace.length; i++) assert.ok((g.trace[i] as number) >= (g.trace[i - 1] as number) - 1e-9, `iteration ${i}: ${g.trace[i]} < ${g.trace[i - 1]}`);
  const again = fitDiagonalGmm(x, n, dim, opts);
  assert.deepEqual(Array.from(again.means), Array.from(g.means));
  // The mean log-likelihood of the training rows equals the last trace value's successor's evaluation.
  const ll = g.logLikelihood(x, n);
  assert.ok(ll.every(Number.isFinite));
});

test('log-sum-exp keeps far-away points finite', () => {
  const x = clusters([[0, 0]], [1], 200, 1);
  const g = fitDiagonalGmm(x, 200, 2, { components: 2, maxIter: 20, tol: 1e-6, varianceFloor: 1e-6, kmeansIter: 5, seed: 1 });
  const ll = g.logLikelihood(Float32Array.from([1e4, -1e4]), 1);
  assert.ok(Number.isFinite(ll[0]) && (ll[0] as number) < -1e6);
});
