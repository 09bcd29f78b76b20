import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../../src/cli/sample-mix.js';
import { empiricalQuantiles, type Neighbors } from '../../../src/index/index.js';
import { combineUncertainty, labelVote, percentileRank, scoreNeighbors } from '../../../src/scoring/index.js';

function unit(rnd: () => number, dim: number): number[] {
  const v = Array.from({ length: dim }, () => rnd() * 2 - 1);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}
const cosDist = (a: number[], b: number[]): number => 1 - a.reduce((s, x, i) => s + x * (b[i] as number), 0);

/** Brute-force k nearest of q among refs (excluding `skip`), nearest first. */
function bruteKnn(refs: number[][], q: number[], k: number, skip = -1): { rows: number[]; d: number[] } {
  const all = refs.map((r, i) => [i, cosDist(r, q)] as const).filter(([i]) => i !== skip);
  all.sort((a, b) => a[1] - b[1]);
  const top = all.slice(0, k);
  return { rows: top.map(([i]) => i), d: top.map(([, d]) => d) };
}

test('scoreNeighbors against a brute-force kNN over random labelled references', () => {
  const rnd = seededRandom(21);
  const dim = 8;
  const k = 10;
  const refs = Array.from({ length: 400 }, () => unit(rnd, dim));
  const labels = refs.map((r) => ((r[0] as number) > 0 ? 1 : 0) + ((r[1] as number) > 0 ? 2 : 0));
  const loo = refs.map((r, i) => bruteKnn(refs, r, k, i).d.reduce((a, b) => a + b, 0) / k);
  const q = empiricalQuantiles(loo, 1001);
  const stats = { k, looMeanKnnQuantiles: q, looKthKnnQuantiles: q, looScoreQuantiles: null };
  for (let t = 0; t < 50; t++) {
    const z = unit(rnd, dim);
    const { rows, d } = bruteKnn(refs, z, k);
    const nb: Neighbors = { ids: rows.map(String), labels: rows.map((r) => labels[r] as number), distances: d };
    const s = scoreNeighbors(nb, stats, { densityWeight: 0.5, numLabels: 4 });
    const mean = d.reduce((a, b) => a + b, 0) / k;
    const bruteDensity = loo.filter((x) => x < mean).length / loo.length;
    assert.ok(Math.abs(s.signals.densityPercentile - bruteDensity) < 1e-3 + 2 / loo.length);
    assert.ok(Math.abs(s.signals.meanKnnDistance - mean) < 1e-12);
    assert.equal(s.signals.kthKnnDistance, d[k - 1]);
    const vote = labelVote(nb.labels ?? [], d, 4);
    assert.equal(s.suggestedLabel, vote.topLabel);
    assert.equal(s.predictedAccuracy, vote.share);
    const want = 0.5 * percentileRank(mean, q) + 0.5 * (1 - vote.share);
    assert.ok(Math.abs(s.uncertainty - want) < 1e-12);
    assert.ok(s.uncertainty >= 0 && s.uncertainty <= 1);
  }
});

test('a point far from every reference scores near 1 on density', () => {
  const q = empiricalQuantiles([0.1, 0.12, 0.15, 0.2], 11);
  const nb: Neighbors = { ids: ['a', 'b'], labels: [0, 0], distances: [0.8, 0.9] };
  const s = scoreNeighbors(nb, { k: 2, looMeanKnnQuantiles: q, looKthKnnQuantiles: q, looScoreQuantiles: null }, { densityWeight: 0.5, numLabels: 2 });
  assert.equal(s.signals.densityPercentile, 1);
  assert.equal(s.uncertainty, 0.5);
});

test('without labels the uncertainty is the density percentile alone', () => {
  assert.equal(combineUncertainty(0.7, null, 0.3), 0.7);
  assert.equal(combineUncertainty(0.7, 0.5, 0), 0.5);
  assert.equal(combineUncertainty(0.7, 0.5, 1), 0.7);
  const q = [0.1, 0.2, 0.3];
  const s = scoreNeighbors({ ids: ['a'], labels: null, distances: [0.2] }, { k: 1, looMeanKnnQuantiles: q, looKthKnnQuantiles: q, looScoreQuantiles: null }, { densityWeight: 0.5, numLabels: 0 });
  assert.equal(s.uncertainty, 0.5);
  assert.equal(s.signals.labelAgreement, null);
  assert.equal(s.predictedAccuracy, null);
  assert.equal(s.suggestedLabel, -1);
});
