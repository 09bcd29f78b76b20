import { type GaussianStats, type LeaveOneOutView, type Neighbors, type ScoringFit } from '../index/index.js';
import {
  COMBINATION_FEATURE_NAMES,
  applyIsotonic,
  combinedErrorProbability,
  computeSignals,
  errorProbabilityOfFeatures,
  featureVector,
  fitIsotonicAccuracy,
  fitLogistic,
  type CombinationFeature,
  type Signals,
} from '../scoring/index.js';
import { ErrorCodes, QualmError } from '../errors.js';
import { seededRandom, shuffleInPlace } from '../util/random.js';
import { gatherRows } from '../util/rows.js';
import { fitCrossFittedGaussian } from './gaussian-cross-fit.js';
import { DEFAULT_PROBE, trainLinearProbe, type ProbeOptions } from './linear-probe.js';
import { auroc } from './rank-metrics.js';

/**
 * Fitting the combination of the signals at build time, on the references alone:
 *
 * 0. The class-conditional Gaussian (scoring/gaussian.ts) is fitted to all labelled
 *    references, and every reference's own distances under it give its quantiles.
 * 1. The labelled references are shuffled (seeded) and a share of them is held out.
 * 2. The downstream model, a softmax-regression probe, is trained on the rest; its 0/1 error
 *    on each held-out reference is the target.
 * 3. Each held-out reference is scored from its leave-one-out neighbours (the k nearest
 *    other references: what a worker sees for a new point there), giving its signals.
 * 4. Half the held-out set fits a logistic regression of the error on the features; the
 *    other half fits the isotonic map from that regression's output to the accuracy, so the
 *    calibration is measured on points the regression did not see.
 *
 * No test data is involved; `qualm evaluate` calls this exactly as `build-index` does.
 */
export interface CombinationFitOptions {
  /** Share of the labelled references held out from the probe (default 0.2). */
  readonly heldOutShare?: number;
  /** At most this many held out (default 20,000). */
  readonly maxHeldOut?: number;
  /** Fewer held-out references than this and no combination is fitted (default 200). */
  readonly minHeldOut?: number;
  readonly features?: readonly CombinationFeature[];
  /** L2 penalty of the logistic regression (on standardised features). */
  readonly l2?: number;
  readonly seed?: number;
  readonly probe?: ProbeOptions;
  /** Says what was left out and why: the whole combination, or only its Gaussian features. */
  readonly onSkip?: (reason: string) => void;
}

export const DEFAULT_COMBINATION_FIT = { heldOutShare: 0.2, maxHeldOut: 20_000, minHeldOut: 200, l2: 1e-2, seed: 1 } as const;

/** The combination fitted on `loo`'s references, or null (with onSkip) when they cannot support one. */
export async function fitCombination(loo: LeaveOneOutView, opts: CombinationFitOptions = {}, signal?: AbortSignal): Promise<ScoringFit | null> {
  const share = opts.heldOutShare ?? DEFAULT_COMBINATION_FIT.heldOutShare;
  const maxHeldOut = opts.maxHeldOut ?? DEFAULT_COMBINATION_FIT.maxHeldOut;
  const minHeldOut = opts.minHeldOut ?? DEFAULT_COMBINATION_FIT.minHeldOut;
  const seed = opts.seed ?? DEFAULT_COMBINATION_FIT.seed;
  const l2 = opts.l2 ?? DEFAULT_COMBINATION_FIT.l2;
  let features: CombinationFeature[] = [...(opts.features ?? COMBINATION_FEATURE_NAMES)];
  const skip = (reason: string): null => {
    opts.onSkip?.(`no fitted combination: ${reason}`);
    return null;
  };
  const { labels, numLabels, dim } = loo;
  if (labels === null || numLabels < 2) return skip('the references have no labels (label-free fallback)');
  const labelled: number[] = [];
  for (let r = 0; r < loo.n; r++) if ((labels[r] as number) >= 0) labelled.push(r);
  const nHeld = Math.min(maxHeldOut, Math.round(labelled.length * share));
  if (nHeld < minHeldOut) return skip(`only ${nHeld} labelled references would be held out, fewer than ${minHeldOut}`);
  const order = shuffleInPlace(labelled, seededRandom(seed));
  const held = order.slice(0, nHeld);
  const train = order.slice(nHeld);
  const present = new Set(train.map((r) => labels[r] as number));
  if (present.size < 2) return skip('the probe training split has fewer than two labels');

  // The class-conditional Gaussian, on every labelled reference; its reference quantiles are
  // cross-fitted (gaussian-cross-fit.ts), like the kNN ones are leave-one-out. Without it (a
  // label with too few rows, fewer rows than dimensions) the combination does without its two features.
  let gaussian: GaussianStats | undefined;
  try {
    gaussian = await fitCrossFittedGaussian(loo.vectors, dim, labels, numLabels, { seed });
  } catch (err) {
    opts.onSkip?.(`no class-conditional Gaussian (the combination goes on without its features): ${err instanceof Error ? err.message : String(err)}`);
    features = features.filter((f) => f !== 'mahalanobis_percentile' && f !== 'relative_mahalanobis_percentile');
  }
  const signalsOf = (neighbors: Neighbors, vector: Float32Array): Signals =>
    computeSignals(neighbors, loo.density, numLabels, gaussian === undefined ? undefined : { stats: gaussian, embedding: vector }).signals;

  // The downstream model and its error on the held-out references.
  const probe = trainLinearProbe(gatherRows(loo.vectors, dim, train), Int32Array.from(train, (r) => labels[r] as number), train.length, dim, numLabels, opts.probe ?? DEFAULT_PROBE, signal);
  const pred = probe.predict(gatherRows(loo.vectors, dim, held), held.length);
  const error = Float64Array.from(held, (r, i) => (pred[i] === labels[r] ? 0 : 1));

  // The held-out references' features, from their leave-one-out neighbours.
  const x: number[][] = [];
  for (const [i, r] of held.entries()) {
    x.push(featureVector(signalsOf(loo.neighborsOf(r), loo.vectors.subarray(r * dim, (r + 1) * dim)), features));
    if (i % 2000 === 1999) {
      if (signal?.aborted === true) throw new QualmError(ErrorCodes.ABORTED, 'combination fit cancelled');
      await new Promise((res) => setImmediate(res));
    }
  }
  const half = Math.floor(nHeld / 2);
  const fitRows = x.slice(0, half);
  const fitErrors = error.subarray(0, half);
  const errorsA = fitErrors.reduce((s, v) => s + v, 0);
  if (errorsA === 0 || errorsA === half) return skip(`the probe made ${errorsA === 0 ? 'no' : 'only'} errors on the held-out references: nothing to fit`);
  const logistic = fitLogistic(fitRows, fitErrors, { l2 });
  const model = { features, mean: logistic.mean, scale: logistic.scale, weights: logistic.weights, bias: logistic.bias };
  const calibrationScores = Float64Array.from(x.slice(half), (row) => errorProbabilityOfFeatures(model, row));
  const calibrationErrors = error.subarray(half);
  const isotonic = fitIsotonicAccuracy(calibrationScores, calibrationErrors.map((e) => 1 - e));
  let brier = 0;
  calibrationScores.forEach((s, i) => (brier += (applyIsotonic(isotonic, s) - (1 - (calibrationErrors[i] as number))) ** 2));
  const combination = {
    kind: 'logistic' as const,
    ...model,
    isotonic,
    fit: {
      seed,
      held_out_share: share,
      probe_train: train.length,
      held_out: nHeld,
      logistic_rows: half,
      isotonic_rows: nHeld - half,
      probe_held_out_accuracy: 1 - error.reduce((s, v) => s + v, 0) / nHeld,
      l2,
      iterations: logistic.iterations,
      converged: logistic.converged,
      // On the isotonic half, which the regression did not see.
      held_out_auroc: auroc(calibrationScores, calibrationErrors),
      held_out_brier: brier / (nHeld - half),
    },
  };
  return {
    combination,
    referenceScore: (neighbors, density, vector) =>
      combinedErrorProbability(combination, computeSignals(neighbors, density, numLabels, gaussian === undefined ? undefined : { stats: gaussian, embedding: vector }).signals),
    ...(gaussian === undefined ? {} : { gaussian }),
  };
}
