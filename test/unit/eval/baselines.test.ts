import assert from 'node:assert/strict';
import { test } from 'node:test';
import { avgDistance, jaccard, kthDistance, mspUncertainty, ncUncertainty, predictiveEntropy, randomScores, rowNorms, softmax, voteMarginUncertainty } from '../../../src/eval/index.js';
import { labelVote } from '../../../src/scoring/index.js';
import { seededRandom } from '../../../src/util/random.js';

test('AvgDist and the k-th distance read the ascending neighbour distances', () => {
  const d = [0.1, 0.2, 0.3, 0.6];
  assert.equal(avgDistance(d, 1), 0.1);
  assert.ok(Math.abs(avgDistance(d, 4) - 0.3) < 1e-12);
  assert.equal(kthDistance(d, 3), 0.3);
  assert.throws(() => avgDistance(d, 5), RangeError);
  assert.throws(() => kthDistance(d, 5), RangeError);
});

test('vote margin: 1 - (top - second) share, with the worker vote weights', () => {
  const rnd = seededRandom(2);
  for (let t = 0; t < 200; t++) {
    const k = 1 + Math.floor(rnd() * 20);
    const labels = Array.from({ length: k }, () => Math.floor(rnd() * 5) - (rnd() < 0.1 ? 6 : 0)).map((l) => (l < 0 ? -1 : l));
    const dist = Array.from({ length: k }, () => rnd()).sort((a, b) => a - b);
    const w = new Array<number>(4).fill(0);
    labels.forEach((l, i) => {
      if (l >= 0) w[l] = (w[l] as number) + 1 / ((dist[i] as number) + 1e-3);
    });
    const total = w.reduce((a, b) => a + b, 0);
    const sorted = [...w].sort((a, b) => b - a);
    const expected = total === 0 ? 1 : 1 - ((sorted[0] as number) - (sorted[1] as number)) / total;
    const got = voteMarginUncertainty(labels.map((l) => Math.min(l, 3)), dist, 4);
    if (labels.every((l) => l <= 3)) assert.ok(Math.abs(got - expected) < 1e-12, `case ${t}`);
    // Its top share agrees with the worker's label agreement.
    if (total > 0 && labels.every((l) => l <= 3)) {
      const vote = labelVote(labels, dist, 4);
      assert.ok(Math.abs(vote.share - (sorted[0] as number) / total) < 1e-12);
    }
  }
  assert.equal(voteMarginUncertainty([2, 2, 2], [0.1, 0.2, 0.3], 3), 0, 'unanimous');
  assert.equal(voteMarginUncertainty([-1, -1], [0.1, 0.2], 3), 1, 'no labels');
});

test('NC: mean pairwise Jaccard of the kNN id sets across encoders, as an uncertainty', () => {
  assert.equal(jaccard(['a', 'b'], ['b', 'c']), 1 / 3);
  assert.equal(jaccard([], []), 1);
  assert.equal(ncUncertainty([['a', 'b'], ['a', 'b'], ['b', 'a']]), 0);
  assert.equal(ncUncertainty([['a'], ['b']]), 1);
  // Pairs: (1,2) 1/3, (1,3) 1, (2,3) 1/3 -> mean 5/9.
  const u = ncUncertainty([['a', 'b'], ['b', 'c'], ['a', 'b']]);
  assert.ok(Math.abs(u - (1 - 5 / 9)) < 1e-12);
  assert.throws(() => ncUncertainty([['a']]), RangeError);
});

test('row norms and the seeded random baseline', () => {
  assert.deepEqual(Array.from(rowNorms(Float32Array.from([3, 4, 0, 0]), 2, 2)), [5, 0]);
  assert.deepEqual(Array.from(randomScores(5, 1)), Array.from(randomScores(5, 1)));
  assert.notDeepEqual(Array.from(randomScores(5, 1)), Array.from(randomScores(5, 2)));
});

test('msp and entropy of probability rows match a brute-force computation, with 0 log 0 = 0', () => {
  const rnd = seededRandom(8);
  for (let t = 0; t < 100; t++) {
    const n = 1 + Math.floor(rnd() * 20);
    const c = 2 + Math.floor(rnd() * 8);
    // Random logits, some rows sharpened until a probability underflows to exactly 0.
    const rowsOf: number[][] = Array.from({ length: n }, () => [...softmax(Array.from({ length: c }, () => (rnd() - 0.5) * (rnd() < 0.2 ? 2000 : 6)))]);
    const flat = rowsOf.flat();
    const msp = mspUncertainty(flat, n, c);
    const h = predictiveEntropy(flat, n, c);
    rowsOf.forEach((row, i) => {
      const top = [...row].sort((a, b) => b - a)[0] as number;
      assert.ok(Math.abs((msp[i] as number) - (1 - top)) < 1e-15, `case ${t} row ${i}`);
      const terms = row.filter((p) => p !== 0).map((p) => -p * Math.log(p));
      assert.ok(Math.abs((h[i] as number) - terms.reduce((a, b) => a + b, 0)) < 1e-12, `case ${t} row ${i}`);
    });
  }
  // Fixed values: uniform over 4 labels, and one-hot.
  assert.deepEqual([...mspUncertainty([0.25, 0.25, 0.25, 0.25, 0, 1, 0, 0], 2, 4)], [0.75, 0]);
  const hu = predictiveEntropy([0.25, 0.25, 0.25, 0.25, 0, 1, 0, 0], 2, 4);
  assert.ok(Math.abs((hu[0] as number) - Math.log(4)) < 1e-15);
  assert.equal(hu[1], 0);
  assert.throws(() => mspUncertainty([0.5, 0.5, 1], 2, 2), RangeError);
  assert.throws(() => predictiveEntropy([0.5, 0.5, 1], 1, 2), RangeError);
});
