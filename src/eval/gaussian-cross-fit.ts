import { STAT_QUANTILES, empiricalQuantiles, type GaussianStats } from '../index/index.js';
import { fitGaussian, mahalanobis } from '../scoring/index.js';
import { seededRandom, shuffleInPlace } from '../util/random.js';
import { gatherRows } from '../util/rows.js';

/**
 * The references' class-conditional Gaussian with cross-fitted reference percentiles.
 *
 * A reference's Mahalanobis distance under a Gaussian fitted to a set that contains it is
 * smaller than a new point's (the fit has seen it; with 384 dimensions and 4,000 references
 * the difference is large), so in-sample quantiles put the out-of-distribution cut too low
 * and flag several times the nominal share of in-distribution traffic. Here the labelled
 * references are split into `folds` label-stratified folds; each fold's distances come from
 * the Gaussian fitted on the other folds, the way the kNN percentiles come from each
 * reference's leave-one-out neighbours. The stored parameters are the fit on every
 * labelled reference (what a new point meets), slightly tighter than each fold's fit, so the
 * cut errs on the side of flagging a little less than nominal.
 */
export const DEFAULT_GAUSSIAN_FOLDS = 5;

export interface GaussianCrossFitOptions {
  /** Number of folds (at least 2; default DEFAULT_GAUSSIAN_FOLDS). */
  readonly folds?: number;
  /** Seed of the stratified fold assignment. */
  readonly seed?: number;
  /** Yields to the event loop every so many rows (default 5,000). */
  readonly yieldEvery?: number;
}

export interface CrossFittedGaussian extends GaussianStats {
  /** Folds the quantiles were cross-fitted over. */
  readonly crossFitFolds: number;
}

/**
 * Fold of every row: labelled rows shuffled (seeded) within their label and dealt round-robin,
 * so each fold holds about 1/folds of every label; unlabelled rows (label < 0) by row number.
 */
export function stratifiedFolds(labels: ArrayLike<number>, folds: number, seed: number): Int32Array {
  if (!Number.isInteger(folds) || folds < 2) throw new RangeError(`folds must be an integer of at least 2, got ${folds}`);
  const n = labels.length;
  const out = new Int32Array(n);
  const byLabel = new Map<number, number[]>();
  for (let r = 0; r < n; r++) {
    const c = labels[r] as number;
    if (c < 0) {
      out[r] = r % folds;
      continue;
    }
    let rows = byLabel.get(c);
    if (rows === undefined) byLabel.set(c, (rows = []));
    rows.push(r);
  }
  const rand = seededRandom(seed);
  let next = 0;
  for (const c of [...byLabel.keys()].sort((a, b) => a - b)) {
    for (const r of shuffleInPlace(byLabel.get(c) as number[], rand)) out[r] = next++ % folds;
  }
  return out;
}

/**
 * Fits the Gaussian to every labelled row of `vectors` (n × dim) and cross-fits the
 * references' class and relative distance quantiles over label-stratified folds. Throws
 * (RangeError, from fitGaussian) when the full fit or a fold's complement cannot be fitted:
 * a label with fewer than two rows, or not more labelled rows than dimensions.
 */
export async function fitCrossFittedGaussian(vectors: Float32Array, dim: number, labels: ArrayLike<number>, classes: number, opts: GaussianCrossFitOptions = {}): Promise<CrossFittedGaussian> {
  const folds = opts.folds ?? DEFAULT_GAUSSIAN_FOLDS;
  const yieldEvery = opts.yieldEvery ?? 5000;
  const n = labels.length;
  const params = fitGaussian(vectors, dim, labels, classes);
  const fold = stratifiedFolds(labels, folds, opts.seed ?? 1);
  const classD = new Float64Array(n);
  const relative = new Float64Array(n);
  let done = 0;
  for (let f = 0; f < folds; f++) {
    const inside: number[] = [];
    const held: number[] = [];
    for (let r = 0; r < n; r++) (fold[r] === f ? held : inside).push(r);
    if (held.length === 0) continue;
    const fit = fitGaussian(gatherRows(vectors, dim, inside), dim, Int32Array.from(inside, (r) => labels[r] as number), classes);
    for (const r of held) {
      const m = mahalanobis(fit, vectors.subarray(r * dim, (r + 1) * dim));
      classD[r] = m.classDistance;
      relative[r] = m.relative;
      if (++done % yieldEvery === 0) await new Promise((res) => setImmediate(res));
    }
  }
  return { params, classDistanceQuantiles: empiricalQuantiles(classD, STAT_QUANTILES), relativeQuantiles: empiricalQuantiles(relative, STAT_QUANTILES), crossFitFolds: folds };
}
