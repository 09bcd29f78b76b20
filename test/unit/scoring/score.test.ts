import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../../src/cli/sample-mix.js';
import { empiricalQuantiles, type Neighbors, type ReferenceStats } from '../../../src/index/index.js';
import { combineUncertainty, densityScore, labelVote, percentileRank, reverseNeighborConsistency, scoreNeighbors } from '../../../src/scoring/index.js';

function unit(rnd: () => number, dim: number): number[] {
  const v = Array.from({ length: dim }, () => rnd() * 2 - 1);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}
const cosDist = (a: number[], b: number[]): number => 1 - a.reduce((s, x, i) => s + x * (b[i] as number), 0);
const avg = (a: readonly number[]): number => a.reduce((s, x) => s + x, 0) / a.length;

/** Brute-force k nearest of q among refs (excluding `skip`), nearest first. */
function bruteKnn(refs: number[][], q: number[], k: number, skip = -1): { rows: number[]; d: number[] } {
  const all = refs.map((r, i) => [i, cosDist(r, q)] as const).filter(([i]) => i !== skip);
  all.sort((a, b) => a[1] - b[1]);
  const top = all.slice(0, k);
  return { rows: top.map(([i]) => i), d: top.map(([, d]) => d) };
}

/** A flat statistics object for hand-made cases: the same quantiles everywhere. */
const flatStats = (q: number[], k: number): ReferenceStats => ({
  k,
  looMeanKnnQuantiles: q,
  looKthKnnQuantiles: q,
  looRelativeDensityQuantiles: [0.5, 1, 1.5],
  looScoreQuantiles: null,
});

test('scoreNeighbors against a brute-force kNN over random labelled references', () => {
  const rnd = seededRandom(21);
  const dim = 8;
  const k = 10;
  const refs = Array.from({ length: 400 }, () => unit(rnd, dim));
  const labels = refs.map((r) => ((r[0] as number) > 0 ? 1 : 0) + ((r[1] as number) > 0 ? 2 : 0));
  const looKnn = refs.map((r, i) => bruteKnn(refs, r, k, i));
  const looMean = looKnn.map((x) => avg(x.d));
  const looRel = looKnn.map((x, i) => (looMean[i] as number) / avg(x.rows.map((r) => looMean[r] as number)));
  const qMean = empiricalQuantiles(looMean, 1001);
  const qRel = empiricalQuantiles(looRel, 1001);
  const stats: ReferenceStats = { k, looMeanKnnQuantiles: qMean, looKthKnnQuantiles: qMean, looRelativeDensityQuantiles: qRel, looScoreQuantiles: null };
  for (let t = 0; t < 50; t++) {
    const z = unit(rnd, dim);
    const { rows, d } = bruteKnn(refs, z, k);
    const nb: Neighbors = { ids: rows.map(String), labels: rows.map((r) => labels[r] as number), distances: d, radii: rows.map((r) => looMean[r] as number), kthRadii: null };
    const s = scoreNeighbors(nb, stats, { densityWeight: 0.7, numLabels: 4 });
    const mean = avg(d);
    const rel = mean / avg(nb.radii);
    const tol = 1e-3 + 2 / refs.length;
    assert.ok(Math.abs(s.signals.densityPercentile - looMean.filter((x) => x < mean).length / refs.length) < tol);
    assert.ok(Math.abs(s.signals.relativeDensity - rel) < 1e-12);
    assert.ok(Math.abs(s.signals.relativeDensityPercentile - looRel.filter((x) => x < rel).length / refs.length) < tol);
    assert.ok(Math.abs(s.signals.meanKnnDistance - mean) < 1e-12);
    assert.equal(s.signals.kthKnnDistance, d[k - 1]);
    const vote = labelVote(nb.labels ?? [], d, 4);
    assert.equal(s.suggestedLabel, vote.topLabel);
    assert.equal(s.predictedAccuracy, vote.share);
    const want = 0.7 * ((percentileRank(mean, qMean) + percentileRank(rel, qRel)) / 2) + 0.3 * (1 - vote.share);
    assert.ok(Math.abs(s.rawScore - want) < 1e-12);
    assert.equal(s.uncertainty, s.rawScore, 'without calibration the uncertainty is the raw score');
    assert.ok(s.uncertainty >= 0 && s.uncertainty <= 1);
  }
});

test('a point far from every reference scores 1 on both density percentiles', () => {
  const q = empiricalQuantiles([0.1, 0.12, 0.15, 0.2], 11);
  const nb: Neighbors = { ids: ['a', 'b'], labels: [0, 0], distances: [0.8, 0.9], radii: [0.1, 0.12], kthRadii: null };
  const s = scoreNeighbors(nb, flatStats(q, 2), { densityWeight: 0.5, numLabels: 2 });
  assert.equal(s.signals.densityPercentile, 1);
  assert.equal(s.signals.relativeDensityPercentile, 1);
  assert.equal(s.uncertainty, 0.5);
});

test('combination and the label-free fallback', () => {
  assert.equal(densityScore(0.2, 0.6), 0.4);
  assert.equal(combineUncertainty(0.7, null, 0.3), 0.7);
  assert.equal(combineUncertainty(0.7, 0.5, 0), 0.5);
  assert.equal(combineUncertainty(0.7, 0.5, 1), 0.7);
  const s = scoreNeighbors({ ids: ['a'], labels: null, distances: [0.2], radii: [0.2], kthRadii: null }, flatStats([0.1, 0.2, 0.3], 1), { densityWeight: 0.5, numLabels: 0 });
  assert.equal(s.signals.relativeDensity, 1);
  assert.equal(s.uncertainty, 0.5);
  assert.equal(s.signals.labelAgreement, null);
  assert.equal(s.predictedAccuracy, null);
  assert.equal(s.suggestedLabel, -1);
});

test('calibrated: the uncertainty is the raw score\'s rank among the references\' own', () => {
  const q = [0.1, 0.2, 0.3];
  const stats: ReferenceStats = { ...flatStats(q, 1), looScoreQuantiles: [0, 0.25, 0.5, 0.75, 1] };
  const s = scoreNeighbors({ ids: ['a'], labels: null, distances: [0.2], radii: [0.2], kthRadii: null }, stats, { densityWeight: 1, numLabels: 0 });
  assert.equal(s.rawScore, 0.5);
  assert.equal(s.uncertainty, percentileRank(0.5, [0, 0.25, 0.5, 0.75, 1]));
});

test('k-th percentile and reverse-neighbour consistency match brute force', () => {
  const rnd = seededRandom(21);
  const dim = 6;
  const k = 8;
  const refs = Array.from({ length: 300 }, () => unit(rnd, dim));
  const looKnn = refs.map((r, i) => bruteKnn(refs, r, k, i));
  const looMean = looKnn.map((x) => avg(x.d));
  const looKth = looKnn.map((x) => x.d[k - 1] as number);
  const stats: ReferenceStats = {
    k,
    looMeanKnnQuantiles: empiricalQuantiles(looMean, 1001),
    looKthKnnQuantiles: empiricalQuantiles(looKth, 1001),
    looRelativeDensityQuantiles: empiricalQuantiles(looMean, 1001),
    looScoreQuantiles: null,
  };
  for (let t = 0; t < 40; t++) {
    const z = unit(rnd, dim);
    const { rows, d } = bruteKnn(refs, z, k);
    const nb: Neighbors = { ids: rows.map(String), labels: null, distances: d, radii: rows.map((r) => looMean[r] as number), kthRadii: rows.map((r) => looKth[r] as number) };
    const s = scoreNeighbors(nb, stats, { densityWeight: 1, numLabels: 0 });
    const kth = d[k - 1] as number;
    assert.ok(Math.abs(s.signals.kthKnnPercentile - looKth.filter((x) => x < kth).length / refs.length) < 1e-3 + 2 / refs.length);
    // z is inside neighbour j's k-NN radius when it is no farther from j than j's own k-th other reference.
    const inside = rows.filter((r, j) => (d[j] as number) <= (looKth[r] as number)).length;
    assert.equal(s.signals.reverseNeighborConsistency, inside / k);
    assert.equal(s.signals.labelMargin, null);
  }
  assert.equal(reverseNeighborConsistency([], []), 1);
  assert.throws(() => reverseNeighborConsistency([0.1], []), RangeError);
  const old = scoreNeighbors({ ids: ['a'], labels: null, distances: [0.2], radii: [0.2], kthRadii: null }, stats, { densityWeight: 1, numLabels: 0 });
  assert.equal(old.signals.reverseNeighborConsistency, null, 'a bundle without k-NN radii has no reverse-neighbour signal');
});

test('with a fitted combination: the raw score is its error probability and the predicted accuracy its isotonic map', () => {
  const q = [0.1, 0.2, 0.3];
  const stats: ReferenceStats = { ...flatStats(q, 2), looScoreQuantiles: [0, 0.2, 0.4, 0.6, 0.8, 1] };
  const combination = {
    kind: 'logistic' as const,
    features: ['label_disagreement', 'density_percentile'],
    mean: [0.1, 0.5],
    scale: [0.2, 0.3],
    weights: [2, 0.5],
    bias: -1,
    isotonic: { x: [0, 0.5, 1], y: [0.9, 0.6, 0.2] },
    fit: {},
  };
  const nb: Neighbors = { ids: ['a', 'b'], labels: [0, 1], distances: [0.2, 0.2], radii: [0.2, 0.2], kthRadii: [0.3, 0.1] };
  const s = scoreNeighbors(nb, stats, { densityWeight: 0.9, numLabels: 2, combination });
  const t = -1 + 2 * ((1 - s.signals.labelAgreement! - 0.1) / 0.2) + 0.5 * ((s.signals.densityPercentile - 0.5) / 0.3);
  const p = 1 / (1 + Math.exp(-t));
  assert.ok(Math.abs(s.rawScore - p) < 1e-12);
  assert.equal(s.uncertainty, percentileRank(p, stats.looScoreQuantiles!));
  const want = p <= 0.5 ? 0.9 + (p / 0.5) * (0.6 - 0.9) : 0.6 + ((p - 0.5) / 0.5) * (0.2 - 0.6);
  assert.ok(Math.abs((s.predictedAccuracy as number) - want) < 1e-12);
  assert.equal(s.signals.reverseNeighborConsistency, 0.5);
});
