import { STAT_QUANTILES, empiricalQuantiles, type Combination, type GaussianParams, type IndexSnapshot, type LeaveOneOutView, type ScoringFit } from '../index/index.js';
import {
  bundleScoreOptions,
  computeSignals,
  errorProbabilityOfFeatures,
  featureVector,
  fitGaussian,
  fitIsotonicAccuracy,
  fitLogistic,
  MODEL_FEATURE_NAMES,
  predictionSummary,
  scoreNeighbors,
  type ModelFeature,
  type ModelPrediction,
} from '../scoring/index.js';
import { ErrorCodes, QualmError } from '../errors.js';
import { seededRandom, shuffleInPlace } from '../util/random.js';
import { gatherRows } from '../util/rows.js';
import { DEFAULT_COMBINATION_FIT, type CombinationFitOptions } from './combination-fit.js';
import { DEFAULT_PROBE, trainLinearProbe } from './linear-probe.js';
import { auroc } from './rank-metrics.js';

/**
 * `qualm_with_model`: the fitted combination with the downstream model's own signals (MSP,
 * entropy, agreement of its label with the neighbours' vote; scoring/model-signals.ts) beside
 * the embedding's. It is fitted exactly where the embedding-only combination is
 * (eval/combination-fit.ts), on the references alone: the labelled references (at most
 * maxHeldOut, seeded) are split into 5 folds, each predicted by a probe trained on the other
 * references, and those cross-fitted probabilities are the model's prediction there (five
 * times the rows of the 20% held-out split, with no row predicted by a probe that saw it).
 * Half the rows fit the logistic regression, the other half its isotonic map, uncertainty
 * quantiles and held-out AUROC. No test point enters the fit. At test time the model's
 * probabilities are the evaluated model's own (the probe trained on all references, or the
 * user's predictions file), scored through the worker's own path (scoreNeighbors with the
 * sample's prediction).
 *
 * `build-index --references` fits the same with the user's own predictions of the references
 * (a `prediction` per record) in place of the probe's: the target is then that model's error
 * on the labelled references that carry one. Without reference predictions no such part is
 * fitted and the bundle is embedding-only, as before.
 */

export type WithModel = NonNullable<Combination['with_model']>;

export interface ModelCombination {
  /** Embedding features (the bundle combination's) then model features. */
  readonly features: string[];
  readonly embeddingFeatures: readonly string[];
  readonly modelFeatures: readonly ModelFeature[];
  readonly mean: number[];
  readonly scale: number[];
  readonly weights: number[];
  readonly bias: number;
  /** The fit's report: split sizes and, on the held-out half the regression did not see, its AUROC against the model's MSP. */
  readonly fit: Record<string, number | boolean | string>;
  /** The bundle's form (Combination.with_model): the model above, its isotonic map and score quantiles. */
  readonly bundle: WithModel;
}

/** Folds of the cross-fitted probe whose predictions of the references the fit uses. */
export const DEFAULT_MODEL_FOLDS = 5;
const GAUSSIAN_FEATURES = new Set(['mahalanobis_percentile', 'relative_mahalanobis_percentile']);

export interface ModelCombinationOptions extends CombinationFitOptions {
  /** Folds of the cross-fitted probe (default DEFAULT_MODEL_FOLDS). */
  readonly folds?: number;
  readonly modelFeatures?: readonly ModelFeature[];
  /**
   * The downstream model's prediction of reference `id` (build-index --references); when given,
   * its error on the labelled references that have one is the target, and no probe is trained.
   */
  readonly referencePrediction?: (id: string) => ModelPrediction | undefined;
  /** Label names of the references, for predictions that name their label. */
  readonly labelNames?: readonly string[];
}

/** The rows the fit uses, each with the model's prediction there and whether it was wrong. */
interface HeldRows {
  readonly rows: readonly number[];
  /** Fold of each row (0..folds-1): the row's Gaussian is fitted without its fold. */
  readonly fold: readonly number[];
  readonly predictions: readonly ModelPrediction[];
  readonly error: Float64Array;
  readonly source: string;
  readonly probeTrain: number;
}

/**
 * Cross-fitted probe predictions: the labelled references (at most maxHeldOut, seeded) split
 * into `folds`, each fold predicted by a probe trained on the other labelled references, so
 * that every fit row's prediction comes from a model that did not see it.
 */
function crossFittedRows(loo: LeaveOneOutView, labels: readonly number[], folds: number, opts: ModelCombinationOptions, signal: AbortSignal | undefined): HeldRows {
  const { numLabels, dim } = loo;
  const maxHeldOut = opts.maxHeldOut ?? DEFAULT_COMBINATION_FIT.maxHeldOut;
  const labelled: number[] = [];
  for (let r = 0; r < loo.n; r++) if ((labels[r] as number) >= 0) labelled.push(r);
  const order = shuffleInPlace(labelled, seededRandom(opts.seed ?? DEFAULT_COMBINATION_FIT.seed));
  const used = order.slice(0, maxHeldOut);
  const rows: number[] = [];
  const predictions: ModelPrediction[] = [];
  const error: number[] = [];
  let probeTrain = 0;
  for (let f = 0; f < folds; f++) {
    const fold = used.filter((_, i) => i % folds === f);
    const inFold = new Set(fold);
    const train = order.filter((r) => !inFold.has(r));
    probeTrain = train.length;
    const probe = trainLinearProbe(gatherRows(loo.vectors, dim, train), Int32Array.from(train, (r) => labels[r] as number), train.length, dim, numLabels, opts.probe ?? DEFAULT_PROBE, signal);
    const probs = probe.predictProba(gatherRows(loo.vectors, dim, fold), fold.length);
    fold.forEach((r, i) => {
      const p = { probs: Array.from(probs.subarray(i * numLabels, (i + 1) * numLabels)) };
      rows.push(r);
      predictions.push(p);
      error.push(predictionSummary(p, numLabels).label === labels[r] ? 0 : 1);
    });
  }
  // Back in the seeded order, so that the two halves below mix the folds.
  const pos = new Map(used.map((r, i) => [r, i]));
  const idx = rows.map((_, i) => i).sort((a, b) => (pos.get(rows[a] as number) as number) - (pos.get(rows[b] as number) as number));
  return {
    rows: idx.map((i) => rows[i] as number),
    fold: idx.map((i) => (pos.get(rows[i] as number) as number) % folds),
    predictions: idx.map((i) => predictions[i] as ModelPrediction),
    error: Float64Array.from(idx, (i) => error[i] as number),
    source: `the probe, cross-fitted over ${folds} folds of the references`,
    probeTrain,
  };
}

function givenRows(loo: LeaveOneOutView, labels: readonly number[], of: (id: string) => ModelPrediction | undefined, folds: number, opts: ModelCombinationOptions): HeldRows {
  const maxHeldOut = opts.maxHeldOut ?? DEFAULT_COMBINATION_FIT.maxHeldOut;
  const rows: number[] = [];
  for (let r = 0; r < loo.n; r++) if ((labels[r] as number) >= 0 && of(loo.ids[r] as string) !== undefined) rows.push(r);
  const held = shuffleInPlace(rows, seededRandom(opts.seed ?? DEFAULT_COMBINATION_FIT.seed)).slice(0, maxHeldOut);
  const predictions: ModelPrediction[] = [];
  const kept: number[] = [];
  const error: number[] = [];
  for (const r of held) {
    const p = of(loo.ids[r] as string) as ModelPrediction;
    let label: number;
    try {
      label = predictionSummary(p, loo.numLabels, opts.labelNames ?? []).label;
    } catch (err) {
      opts.onSkip?.(`reference ${loo.ids[r] as string}: its prediction does not fit the references' labels (${err instanceof Error ? err.message : String(err)}), left out of the fit`);
      continue;
    }
    kept.push(r);
    predictions.push(p);
    error.push(label === labels[r] ? 0 : 1);
  }
  return { rows: kept, fold: kept.map((_, i) => i % folds), predictions, error: Float64Array.from(error), source: "the references' own predictions", probeTrain: 0 };
}

/**
 * The class-conditional Gaussian of each fold of the fit rows, fitted on every labelled
 * reference outside that fold (for the probe's folds: the probe's own training rows), so that
 * a fit row's Mahalanobis signals are those of a point the Gaussian has not seen, as a new
 * sample's are under the bundle's Gaussian; null (with onSkip) when a fold's complement cannot
 * be fitted.
 */
function foldGaussians(loo: LeaveOneOutView, labels: readonly number[], held: HeldRows, folds: number, opts: ModelCombinationOptions): GaussianParams[] | null {
  const out: GaussianParams[] = [];
  for (let f = 0; f < folds; f++) {
    const inFold = new Set(held.rows.filter((_, i) => held.fold[i] === f));
    const train: number[] = [];
    for (let r = 0; r < loo.n; r++) if ((labels[r] as number) >= 0 && !inFold.has(r)) train.push(r);
    try {
      out.push(fitGaussian(gatherRows(loo.vectors, loo.dim, train), loo.dim, Int32Array.from(train, (r) => labels[r] as number), loo.numLabels));
    } catch (err) {
      opts.onSkip?.(`the combination with the model's signals goes on without the Gaussian's features: fold ${f}'s Gaussian cannot be fitted (${err instanceof Error ? err.message : String(err)})`);
      return null;
    }
  }
  return out;
}

/**
 * Fits the combination with model features on the references of `loo`, beside the
 * embedding-only `embeddingFit` that fitCombination made from the same view (whose features
 * and Gaussian it reuses); null (with onSkip) when that one was not fitted or the rows
 * cannot support one.
 */
export async function fitModelCombination(loo: LeaveOneOutView, embeddingFit: ScoringFit | null, opts: ModelCombinationOptions = {}, signal?: AbortSignal): Promise<ModelCombination | null> {
  const skip = (reason: string): null => {
    opts.onSkip?.(`no combination with the model's signals: ${reason}`);
    return null;
  };
  if (embeddingFit === null) return skip('no embedding-only combination was fitted');
  const { labels, numLabels, dim } = loo;
  if (labels === null || numLabels < 2) return skip('the references have no labels');
  const minHeldOut = opts.minHeldOut ?? DEFAULT_COMBINATION_FIT.minHeldOut;
  const l2 = opts.l2 ?? DEFAULT_COMBINATION_FIT.l2;
  const gaussian = embeddingFit.gaussian;
  const labelNames = opts.labelNames ?? [];
  const folds = opts.folds ?? DEFAULT_MODEL_FOLDS;
  if (!Number.isInteger(folds) || folds < 2) throw new RangeError(`fitModelCombination: folds must be an integer >= 2, got ${folds}`);
  const held = opts.referencePrediction !== undefined ? givenRows(loo, labels, opts.referencePrediction, folds, opts) : crossFittedRows(loo, labels, folds, opts, signal);
  const nHeld = held.rows.length;
  if (nHeld < minHeldOut) return skip(`only ${nHeld} labelled references with a prediction, fewer than ${minHeldOut}`);
  // The Gaussian's features (its two percentiles and its log-odds against the model's label)
  // are computed for each fit row under the Gaussian fitted without the row's fold: under the
  // bundle's Gaussian, fitted to every reference, a fit row's distances are in-sample (smaller
  // and more regular than a new point's), and the regression over-weighted them (IMDB: test
  // AUROC 0.737 with the in-sample ones, 0.757 without any; docs/evaluation.md).
  const byFold = gaussian === undefined ? null : foldGaussians(loo, labels, held, folds, opts);
  const embeddingFeatures = byFold === null ? embeddingFit.combination.features.filter((f) => !GAUSSIAN_FEATURES.has(f)) : [...embeddingFit.combination.features];
  const modelFeatures = (opts.modelFeatures ?? MODEL_FEATURE_NAMES).filter((f) => byFold !== null || f !== 'model_gaussian_disagreement');

  const features = [...embeddingFeatures, ...modelFeatures];
  const x: number[][] = [];
  const msp = new Float64Array(nHeld);
  for (const [i, r] of held.rows.entries()) {
    const vector = loo.vectors.subarray(r * dim, (r + 1) * dim);
    const nb = loo.neighborsOf(r);
    const params = byFold?.[held.fold[i] as number];
    const g = gaussian === undefined || params === undefined ? undefined : { stats: { ...gaussian, params }, embedding: vector };
    const sig = computeSignals(nb, loo.density, numLabels, g, held.predictions[i], labelNames).signals;
    msp[i] = 1 - (sig.modelConfidence ?? 0);
    x.push(featureVector(sig, features));
    if (i % 2000 === 1999) {
      if (signal?.aborted === true) throw new QualmError(ErrorCodes.ABORTED, 'model combination fit cancelled');
      await new Promise((res) => setImmediate(res));
    }
  }
  const half = Math.floor(nHeld / 2);
  const fitErrors = held.error.subarray(0, half);
  const errorsA = fitErrors.reduce((s, v) => s + v, 0);
  if (errorsA === 0 || errorsA === half) return skip(`the model made ${errorsA === 0 ? 'no' : 'only'} errors on the fit half: nothing to fit`);
  const logistic = fitLogistic(x.slice(0, half), fitErrors, { l2 });
  const model = { features, mean: logistic.mean, scale: logistic.scale, weights: logistic.weights, bias: logistic.bias };
  // The other half: the isotonic map, the uncertainty quantiles and the held-out AUROC.
  const restScores = Float64Array.from(x.slice(half), (row) => errorProbabilityOfFeatures(model, row));
  const restErrors = held.error.subarray(half);
  const isotonic = fitIsotonicAccuracy(restScores, restErrors.map((e) => 1 - e));
  const fit = {
    model_source: held.source,
    seed: opts.seed ?? DEFAULT_COMBINATION_FIT.seed,
    probe_train: held.probeTrain,
    held_out: nHeld,
    logistic_rows: half,
    isotonic_rows: nHeld - half,
    model_held_out_accuracy: 1 - held.error.reduce((s, v) => s + v, 0) / nHeld,
    l2,
    iterations: logistic.iterations,
    converged: logistic.converged,
    held_out_auroc: auroc(restScores, restErrors),
    held_out_msp_auroc: auroc(msp.subarray(half), restErrors),
  };
  return {
    ...model,
    embeddingFeatures,
    modelFeatures,
    fit,
    bundle: { ...model, isotonic, score_quantiles: empiricalQuantiles(restScores, STAT_QUANTILES), fit },
  };
}

/** `fit` with `withModel`'s bundle form added to its combination (the embedding-only part stays the fallback). */
export function withModelPart(fit: ScoringFit | null, withModel: ModelCombination | null): ScoringFit | null {
  return fit === null || withModel === null ? fit : { ...fit, combination: { ...fit.combination, with_model: withModel.bundle } };
}

/**
 * `qualm_with_model` on n rows of `z` with the model's probabilities (row-major [n, labels]),
 * through the worker's path: the bundle's kNN query and scoreNeighbors with each row's
 * prediction. The bundle must hold the combination with the model's signals. Returns the raw
 * error probabilities (the ranking; the uncertainty is their rank among the held-out references').
 */
export function modelCombinationScores(snap: IndexSnapshot, z: Float32Array, dim: number, efSearch: number, probs: Float64Array, numLabels: number): Float64Array {
  const n = z.length / dim;
  if (probs.length !== n * numLabels) throw new RangeError(`modelCombinationScores: ${probs.length} probabilities for ${n} rows of ${numLabels} labels`);
  if (snap.combination?.with_model === undefined) throw new RangeError('modelCombinationScores: the bundle has no combination with the model\'s signals');
  const opts = bundleScoreOptions(snap);
  snap.setEfSearch(efSearch);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const row = z.subarray(i * dim, (i + 1) * dim);
    const score = scoreNeighbors(snap.search(row), snap.stats, opts, row, { probs: Array.from(probs.subarray(i * numLabels, (i + 1) * numLabels)) });
    if (score.signals.modelPredictionUsed !== 1) throw new RangeError(`modelCombinationScores: row ${i}'s prediction was not used`);
    out[i] = score.rawScore;
  }
  return out;
}
