import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReservoirSampler, reservoirSample, stratifiedSample, subsampleRows } from '../../../src/index/index.js';
import { seededRandom } from '../../../src/util/random.js';

test('reservoir: the requested size of distinct rows in range, ascending, the same for the same seed', () => {
  const a = reservoirSample(10_000, 500, 7);
  assert.equal(a.length, 500);
  assert.equal(new Set(a).size, 500);
  assert.ok(a.every((r, i) => r >= 0 && r < 10_000 && (i === 0 || r > (a[i - 1] as number))));
  assert.deepEqual(reservoirSample(10_000, 500, 7), a);
  assert.notDeepEqual(reservoirSample(10_000, 500, 8), a);
  assert.deepEqual(Array.from(reservoirSample(30, 100, 1)), Array.from({ length: 30 }, (_, i) => i), 'size >= n keeps everything');
});

test('reservoir: every row is equally likely to be kept', () => {
  const n = 50;
  const counts = new Array<number>(n).fill(0);
  const trials = 4000;
  for (let t = 0; t < trials; t++) for (const r of reservoirSample(n, 10, t)) counts[r] = (counts[r] as number) + 1;
  const expected = (trials * 10) / n;
  for (const c of counts) assert.ok(Math.abs(c - expected) < expected * 0.15, `kept ${c} times, expected about ${expected}`);
});

test('reservoir sampler over a stream: slots fill first, then replacements keep the size', () => {
  const s = new ReservoirSampler(3, 1);
  assert.deepEqual([s.offer(), s.offer(), s.offer()], [0, 1, 2]);
  for (let i = 0; i < 100; i++) assert.ok(s.offer() < 3);
  assert.equal(s.offered, 103);
});

test('stratified: size, per-label proportions, a minimum for rare labels, determinism', () => {
  const rnd = seededRandom(3);
  // 90% label 0, 9% label 1, 1% label 2 (100 rows), and a few unlabelled.
  const labels: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const u = rnd();
    labels.push(u < 0.9 ? 0 : u < 0.99 ? 1 : 2);
  }
  for (let i = 0; i < 20; i++) labels.push(-1);
  const count = (rows: Int32Array, l: number): number => Array.from(rows).filter((r) => labels[r] === l).length;
  const total = (l: number): number => labels.filter((x) => x === l).length;

  const s = stratifiedSample(labels, 1000, 5, 50);
  assert.equal(s.length, 1000);
  assert.equal(new Set(s).size, 1000);
  assert.deepEqual(stratifiedSample(labels, 1000, 5, 50), s);
  assert.ok(count(s, 2) >= 50, 'the rare label keeps its minimum');
  assert.equal(count(s, -1), 20, 'a stratum smaller than the minimum is kept whole');
  // The large labels share the rest in proportion to what they have beyond the minimum.
  const rest = 1000 - 50 - 50 - 20 - 50;
  const spare = total(0) - 50 + (total(1) - 50) + (total(2) - 50);
  for (const l of [0, 1]) {
    const want = 50 + (rest * (total(l) - 50)) / spare;
    assert.ok(Math.abs(count(s, l) - want) <= 1, `label ${l}: ${count(s, l)} vs ${want}`);
  }

  // Without a minimum the shares are the labels' own proportions.
  const p = stratifiedSample(labels, 2000, 9, 0);
  for (const l of [0, 1, 2]) assert.ok(Math.abs(count(p, l) - (2000 * total(l)) / labels.length) <= 1);

  assert.throws(() => stratifiedSample(labels, 100, 1, 50), /cannot keep 50 of each of 4 labels/);
  assert.throws(() => subsampleRows({ method: 'stratified', size: 10, seed: 1 }, 5, null), /needs labels/);
  assert.deepEqual(subsampleRows({ method: 'reservoir', size: 500, seed: 7 }, 10_000, null), reservoirSample(10_000, 500, 7));
});
