import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../../src/cli/sample-mix.js';
import { labelVote, VOTE_DISTANCE_EPSILON } from '../../../src/scoring/index.js';

function bruteVote(labels: number[], distances: number[], numLabels: number) {
  const w = new Array<number>(numLabels).fill(0);
  labels.forEach((l, i) => {
    if (l >= 0) w[l] = (w[l] as number) + 1 / ((distances[i] as number) + VOTE_DISTANCE_EPSILON);
  });
  const total = w.reduce((a, b) => a + b, 0);
  const top = w.indexOf(Math.max(...w));
  const entropy = -w.filter((x) => x > 0).reduce((a, x) => a + (x / total) * Math.log(x / total), 0) / Math.log(numLabels);
  const second = Math.max(0, ...w.filter((_, c) => c !== top));
  return { top, share: (w[top] as number) / total, entropy, margin: ((w[top] as number) - second) / total };
}

test('labelVote matches a brute-force weighted vote on random neighbourhoods', () => {
  const rnd = seededRandom(11);
  for (let t = 0; t < 500; t++) {
    const k = 1 + Math.floor(rnd() * 30);
    const numLabels = 2 + Math.floor(rnd() * 9);
    const distances = Array.from({ length: k }, () => rnd() * 2).sort((a, b) => a - b);
    const labels = Array.from({ length: k }, () => Math.floor(rnd() * numLabels));
    const got = labelVote(labels, distances, numLabels);
    const want = bruteVote(labels, distances, numLabels);
    assert.equal(got.topLabel, want.top);
    assert.ok(Math.abs(got.share - want.share) < 1e-9);
    assert.ok(Math.abs(got.entropy - want.entropy) < 1e-9);
    assert.ok(Math.abs(got.margin - want.margin) < 1e-9);
  }
});

test('unanimous neighbours agree fully; an even split is maximally uncertain', () => {
  const all = labelVote([3, 3, 3], [0.1, 0.2, 0.3], 10);
  assert.equal(all.topLabel, 3);
  assert.equal(all.share, 1);
  assert.equal(all.entropy, 0);
  const split = labelVote([0, 1], [0.2, 0.2], 2);
  assert.equal(split.share, 0.5);
  assert.ok(Math.abs(split.entropy - 1) < 1e-12);
  assert.equal(split.topLabel, 0, 'ties go to the smaller label');
});

test('unknown labels do not vote; nothing known means no agreement', () => {
  assert.equal(labelVote([-1, 2], [0.1, 0.5], 3).share, 1);
  assert.deepEqual(labelVote([-1, -1], [0.1, 0.2], 3), { topLabel: -1, share: 0, entropy: 1, margin: 0 });
  assert.throws(() => labelVote([5], [0.1], 3), RangeError);
});
