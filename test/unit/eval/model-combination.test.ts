import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fitCombination } from '../../../src/eval/combination-fit.js';
import { fitModelCombination } from '../../../src/eval/model-combination.js';
import { empiricalQuantiles, STAT_QUANTILES, type DensityStats, type LeaveOneOutView, type Neighbors, type ScoringFit } from '../../../src/index/index.js';
import { combinationSchema } from '../../../src/index/manifest.js';
import { checkCombination, mahalanobis, percentileRank } from '../../../src/scoring/index.js';
import { gaussian, seededRandom } from '../../../src/util/random.js';

/**
 * fitModelCombination on a small brute-force leave-one-out view: two overlapping classes in
 * 30 dimensions, 600 references, so that a Gaussian fitted to a set sees its own rows as
 * clearly nearer than new ones (in-sample distances), which is what its fold fits must avoid.
 */
const DIM = 30;
const K = 10;
const N = 600;

function view(): LeaveOneOutView {
  const rnd = seededRandom(11);
  const vectors = new Float32Array(N * DIM);
  const labels: number[] = [];
  for (let i = 0; i < N; i++) {
    const c = i % 2;
    labels.push(c);
    const row = Array.from({ length: DIM }, (_, d) => (d === 0 ? (c === 0 ? 1 : -1) * 0.8 : 0) + gaussian(rnd));
    const norm = Math.hypot(...row);
    vectors.set(row.map((v) => v / norm), i * DIM);
  }
  const ids = labels.map((_, i) => `ref-${i}`);
  const cos = (a: number, b: number): number => {
    let s = 0;
    for (let d = 0; d < DIM; d++) s += (vectors[a * DIM + d] as number) * (vectors[b * DIM + d] as number);
    return 1 - s;
  };
  const loo = labels.map((_, i) => {
    const all: [number, number][] = [];
    for (let r = 0; r < N; r++) if (r !== i) all.push([r, cos(i, r)]);
    all.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
    return all.slice(0, K);
  });
  const looMean = Float64Array.from(loo, (nb) => nb.reduce((s, [, d]) => s + d, 0) / K);
  const looKth = Float64Array.from(loo, (nb) => (nb[K - 1] as [number, number])[1]);
  const looRelative = Float64Array.from(loo, (nb, i) => (looMean[i] as number) / (nb.reduce((s, [r]) => s + (looMean[r] as number), 0) / K));
  const density: DensityStats = {
    k: K,
    looMeanKnnQuantiles: empiricalQuantiles(looMean, STAT_QUANTILES),
    looKthKnnQuantiles: empiricalQuantiles(looKth, STAT_QUANTILES),
    looRelativeDensityQuantiles: empiricalQuantiles(looRelative, STAT_QUANTILES),
  };
  return {
    n: N,
    dim: DIM,
    vectors,
    ids,
    labels,
    numLabels: 2,
    density,
    neighborsOf: (row): Neighbors => {
      const nb = loo[row] as [number, number][];
      return {
        ids: nb.map(([r]) => ids[r] as string),
        labels: nb.map(([r]) => labels[r] as number),
        distances: nb.map(([, d]) => d),
        radii: nb.map(([r]) => looMean[r] as number),
        kthRadii: nb.map(([r]) => looKth[r] as number),
      };
    },
  };
}

const OPTS = { minHeldOut: 100, probe: { epochs: 10, batchSize: 64, learningRate: 0.05, weightDecay: 1e-4, seed: 1 } } as const;

test("with the bundle's Gaussian, the combination with the model uses the Gaussian's features, each fit row's from a Gaussian fitted without its fold", async () => {
  const loo = view();
  const fit = await fitCombination(loo, OPTS);
  assert.ok(fit?.gaussian !== undefined, 'the embedding-only fit has its Gaussian');
  const skipped: string[] = [];
  const wm = await fitModelCombination(loo, fit, { ...OPTS, onSkip: (r) => skipped.push(r) });
  assert.ok(wm !== null, skipped.join('; '));
  assert.deepEqual(skipped, []);
  for (const f of ['mahalanobis_percentile', 'relative_mahalanobis_percentile', 'model_gaussian_disagreement', 'model_log_msp_uncertainty']) assert.ok(wm.features.includes(f), `${f} in ${wm.features.join(', ')}`);
  assert.ok(combinationSchema.safeParse({ ...fit.combination, with_model: wm.bundle }).success);
  checkCombination({ ...fit.combination, with_model: wm.bundle });

  // The fit rows' Mahalanobis percentiles (their mean is the feature's standardisation mean):
  // against the bundle's cross-fitted quantiles, out-of-fold distances sit about evenly (mean
  // near 0.5), while the in-sample distances under the Gaussian fitted to every reference sit low.
  const j = wm.features.indexOf('mahalanobis_percentile');
  const fitMean = wm.mean[j] as number;
  const g = fit.gaussian;
  let inSample = 0;
  for (let r = 0; r < N; r++) inSample += percentileRank(mahalanobis(g.params, loo.vectors.subarray(r * DIM, (r + 1) * DIM)).classDistance, g.classDistanceQuantiles) / N;
  assert.ok(inSample < 0.4, `in-sample percentiles are low: mean ${inSample}`);
  assert.ok(fitMean > 0.4 && fitMean < 0.6, `the fit rows' percentiles are out of sample: mean ${fitMean} (in-sample ${inSample})`);
});

test("without the bundle's Gaussian, the combination with the model goes on without the Gaussian's features", async () => {
  const loo = view();
  const fit = await fitCombination(loo, OPTS);
  assert.ok(fit !== null);
  const plain: ScoringFit = { combination: fit.combination, referenceScore: fit.referenceScore };
  const wm = await fitModelCombination(loo, plain, OPTS);
  assert.ok(wm !== null);
  for (const f of ['mahalanobis_percentile', 'relative_mahalanobis_percentile', 'model_gaussian_disagreement']) assert.ok(!wm.features.includes(f), `${f} in ${wm.features.join(', ')}`);
  assert.ok(wm.features.includes('model_neighbor_disagreement'));
});
