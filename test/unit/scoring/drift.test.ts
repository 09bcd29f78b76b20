import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ReferenceStats } from '../../../src/index/index.js';
import { DriftWindow, SortedWindow, percentileRank, referenceDrift } from '../../../src/scoring/index.js';
import { seededRandom } from '../../../src/util/random.js';

/** Brute force: the last `capacity` values, sorted. */
function tail(values: readonly number[], capacity: number): number[] {
  return values.slice(Math.max(0, values.length - capacity)).sort((a, b) => a - b);
}

test('sorted window matches a brute-force tail on random and tied data', () => {
  const rnd = seededRandom(11);
  for (const capacity of [1, 7, 100]) {
    const w = new SortedWindow(capacity);
    const seen: number[] = [];
    for (let i = 0; i < 600; i++) {
      // Every third value is drawn from a handful, so ties and evictions of duplicates occur.
      const v = i % 3 === 0 ? Math.floor(rnd() * 4) / 4 : rnd();
      w.push(v);
      seen.push(v);
      const ref = tail(seen, capacity);
      assert.equal(w.size, ref.length);
      for (const p of [0, 0.1, 0.5, 0.9, 0.99, 1]) {
        assert.equal(w.quantile(p), ref[Math.min(ref.length - 1, Math.floor(p * ref.length))], `capacity ${capacity} p ${p} step ${i}`);
      }
      for (const cut of [0, 0.25, 0.5, 0.99, 1.5]) {
        assert.equal(w.shareAtLeast(cut), ref.filter((x) => x >= cut).length / ref.length);
      }
    }
  }
});

test('an empty window has no quantile and a zero share; bad input is refused', () => {
  const w = new SortedWindow(3);
  assert.equal(w.quantile(0.5), undefined);
  assert.equal(w.shareAtLeast(0), 0);
  assert.throws(() => w.push(Number.NaN), RangeError);
  assert.throws(() => new SortedWindow(0), RangeError);
  assert.throws(() => new SortedWindow(2.5), RangeError);
});

test('drift window reports the out-of-distribution share and uncertainty quantiles of the last samples only', () => {
  const d = new DriftWindow(100, 0.99);
  // 300 in-distribution samples, then 100 of which 40 lie beyond the references.
  for (let i = 0; i < 300; i++) d.observe(0.5, 0.2);
  let s = d.summary();
  assert.equal(s.samples, 100);
  assert.equal(s.oodRatio, 0);
  assert.equal(s.uncertainty[0.5], 0.2);
  for (let i = 0; i < 100; i++) d.observe(i < 40 ? 1 : 0.5, i < 40 ? 0.995 : 0.3);
  s = d.summary();
  assert.equal(s.oodRatio, 0.4);
  assert.equal(s.uncertainty[0.5], 0.3);
  assert.equal(s.uncertainty[0.99], 0.995);
  assert.equal(new DriftWindow(10, 0.99).summary().uncertainty[0.9], undefined);
});

/** Evenly spaced quantiles of `values` at i / (n - 1), as the bundle stores them. */
function storedQuantiles(values: readonly number[], n: number): number[] {
  const sorted = [...values].sort((a, b) => a - b);
  return Array.from({ length: n }, (_, i) => sorted[Math.round((i / (n - 1)) * (sorted.length - 1))] as number);
}

test('reference drift agrees with pushing the references themselves through a drift window', () => {
  const rnd = seededRandom(12);
  const loo = Array.from({ length: 5000 }, () => 0.1 + rnd() ** 2);
  const raw = Array.from({ length: 5000 }, () => rnd() * rnd());
  const stats: ReferenceStats = {
    k: 10,
    looMeanKnnQuantiles: storedQuantiles(loo, 1001),
    looKthKnnQuantiles: storedQuantiles(loo, 1001),
    looRelativeDensityQuantiles: storedQuantiles(loo, 1001),
    looScoreQuantiles: storedQuantiles(raw, 1001),
  };
  const ref = referenceDrift(stats, 0.99);
  // Brute force over the references themselves: each one's percentile and uncertainty.
  const window = new DriftWindow(loo.length, 0.99);
  loo.forEach((v, i) => window.observe(percentileRank(v, stats.looMeanKnnQuantiles), percentileRank(raw[i] as number, stats.looScoreQuantiles as number[])));
  const brute = window.summary();
  assert.ok(Math.abs(ref.oodRatio - brute.oodRatio) < 0.003, `${ref.oodRatio} vs ${brute.oodRatio}`);
  assert.ok(Math.abs(ref.oodRatio - 0.01) < 0.002, `about 1% of references lie beyond their own 99th percentile: ${ref.oodRatio}`);
  for (const p of [0.5, 0.9, 0.99] as const) {
    assert.ok(Math.abs((ref.uncertainty[p] as number) - (brute.uncertainty[p] as number)) < 0.005, `q${p}: ${ref.uncertainty[p]} vs ${brute.uncertainty[p]}`);
  }
  // An uncalibrated bundle has no reference uncertainty to compare with.
  assert.equal(referenceDrift({ ...stats, looScoreQuantiles: null }, 0.99).uncertainty[0.5], undefined);
});
