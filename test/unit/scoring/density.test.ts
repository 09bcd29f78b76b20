import assert from 'node:assert/strict';
import { test } from 'node:test';
import { empiricalQuantiles } from '../../../src/index/index.js';
import { meanDistance, percentileRank } from '../../../src/scoring/index.js';
import { seededRandom } from '../../../src/cli/sample-mix.js';

test('meanDistance', () => {
  assert.equal(meanDistance([]), 0);
  assert.equal(meanDistance([0.5]), 0.5);
  assert.ok(Math.abs(meanDistance([0.1, 0.2, 0.6]) - 0.3) < 1e-12);
});

test('percentileRank matches the brute-force empirical CDF on random data', () => {
  const rnd = seededRandom(7);
  for (let trial = 0; trial < 20; trial++) {
    const n = 200 + Math.floor(rnd() * 3000);
    const values = Array.from({ length: n }, () => rnd() ** 2 * 1.5);
    const q = empiricalQuantiles(values, 1001);
    for (let j = 0; j < 50; j++) {
      const x = rnd() * 1.6 - 0.05;
      const brute = values.filter((v) => v < x).length / n;
      const got = percentileRank(x, q);
      // 1001 quantiles resolve the CDF to 1/1000; sampling between order statistics adds 1/n.
      assert.ok(Math.abs(got - brute) <= 1e-3 + 2 / n, `x=${x} got ${got} brute ${brute}`);
    }
  }
});

test('percentileRank edges: outside the range, ties, a single quantile', () => {
  const q = [0.1, 0.2, 0.2, 0.2, 0.5];
  assert.equal(percentileRank(0.05, q), 0);
  assert.equal(percentileRank(0.9, q), 1);
  assert.equal(percentileRank(0.1, q), 0);
  assert.equal(percentileRank(0.5, q), 1);
  assert.equal(percentileRank(0.2, q), 0.5); // the middle of indexes 1..3 of 4 steps
  assert.ok(Math.abs(percentileRank(0.35, q) - 0.875) < 1e-12);
  assert.equal(percentileRank(1, [1]), 0.5);
  assert.throws(() => percentileRank(1, []), RangeError);
});

test('percentileRank is monotone', () => {
  const rnd = seededRandom(3);
  const q = empiricalQuantiles(Array.from({ length: 500 }, () => rnd()), 101);
  let prev = -1;
  for (let x = -0.1; x <= 1.1; x += 0.001) {
    const p = percentileRank(x, q);
    assert.ok(p >= prev - 1e-12);
    assert.ok(p >= 0 && p <= 1);
    prev = p;
  }
});

test('empiricalQuantiles: endpoints, median, interpolation', () => {
  assert.deepEqual(empiricalQuantiles([3, 1, 2], 3), [1, 2, 3]);
  assert.deepEqual(empiricalQuantiles([0, 10], 5), [0, 2.5, 5, 7.5, 10]);
  assert.throws(() => empiricalQuantiles([], 3), RangeError);
});
