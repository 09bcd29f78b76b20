import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fitCrossFittedGaussian, stratifiedFolds } from '../../../src/eval/gaussian-cross-fit.js';
import { empiricalQuantiles, STAT_QUANTILES } from '../../../src/index/index.js';
import { fitGaussian, mahalanobis, percentileRank } from '../../../src/scoring/index.js';
import { gaussian, seededRandom } from '../../../src/util/random.js';

test('stratified folds: every label spread evenly over the folds, unlabelled rows by row number, seeded', () => {
  const labels = [...Array.from({ length: 23 }, () => 0), ...Array.from({ length: 11 }, () => 1), -1, -1, -1];
  const folds = stratifiedFolds(labels, 5, 3);
  assert.deepEqual(folds, stratifiedFolds(labels, 5, 3));
  for (const c of [0, 1]) {
    const count = new Array<number>(5).fill(0);
    labels.forEach((l, r) => l === c && (count[folds[r] as number] = (count[folds[r] as number] as number) + 1));
    assert.ok(Math.max(...count) - Math.min(...count) <= 1, `label ${c}: ${count.join(',')}`);
  }
  assert.deepEqual(Array.from(folds.subarray(34)), [34 % 5, 35 % 5, 36 % 5]);
  assert.throws(() => stratifiedFolds(labels, 1, 1), RangeError);
});

/** n rows of dim standard-normal values around one of `classes` means, the label cycling. */
function sample(n: number, dim: number, classes: number, seed: number): { x: Float32Array; labels: Int32Array } {
  const rnd = seededRandom(seed);
  const x = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % classes;
    for (let d = 0; d < dim; d++) x[i * dim + d] = gaussian(rnd) + (d === (labels[i] as number) ? 3 : 0);
  }
  return { x, labels };
}

test('cross-fitted quantiles hold the out-of-distribution cut on new data; in-sample ones flag several times too many', async () => {
  const dim = 60;
  const classes = 3;
  const ref = sample(900, dim, classes, 1);
  const fresh = sample(4000, dim, classes, 2);
  const cross = await fitCrossFittedGaussian(ref.x, dim, ref.labels, classes, { folds: 5, seed: 1 });
  assert.equal(cross.crossFitFolds, 5);
  assert.equal(cross.classDistanceQuantiles.length, STAT_QUANTILES);
  const full = fitGaussian(ref.x, dim, ref.labels, classes);
  assert.deepEqual(cross.params.classFactor, full.classFactor, 'the stored parameters are the fit on every reference');
  const inSample = empiricalQuantiles(
    Float64Array.from({ length: 900 }, (_, r) => mahalanobis(full, ref.x.subarray(r * dim, (r + 1) * dim)).classDistance),
    STAT_QUANTILES,
  );
  const beyond = (q: readonly number[]): number => {
    let k = 0;
    for (let i = 0; i < 4000; i++) if (percentileRank(mahalanobis(full, fresh.x.subarray(i * dim, (i + 1) * dim)).classDistance, q) >= 0.99) k++;
    return k / 4000;
  };
  const crossRate = beyond(cross.classDistanceQuantiles);
  const inRate = beyond(inSample);
  assert.ok(crossRate >= 0.002 && crossRate <= 0.02, `cross-fitted: ${crossRate} of new points beyond the 99th percentile`);
  assert.ok(inRate > 0.04, `in-sample: ${inRate} (the bias this removes)`);
});

test('a label too small to leave a row outside its fold is refused with a RangeError', async () => {
  const { x, labels } = sample(200, 4, 2, 3);
  labels[0] = 2; // label 2 has one row: the fold holding it leaves none for its complement
  await assert.rejects(() => fitCrossFittedGaussian(x, 4, labels, 3), RangeError);
});
