import type { IndexSnapshot, LeaveOneOutView, ScoringFit } from '../index/index.js';
import {
  computeSignals,
  errorProbabilityOfFeatures,
  featureVector,
  fitLogistic,
  MODEL_FEATURE_NAMES,
  MODEL_FEATURES,
  modelSignals,
  type ModelFeature,
  type ModelSignals,
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
 * (eval/combination-fit.ts), on the references alone: the same seeded held-out split, the
 * probe trained on the rest, and the probe's probabilities on each held-out reference as the
 * model's prediction there. No test point enters the fit. At test time the model's
 * probabilities are the evaluated model's own (the probe trained on all references, or the
 * user's predictions file).
 */

export interface ModelCombination {
  /** Embedding features (the bundle combination's) then model features. */
  readonly features: string[];
  readonly embeddingFeatures: readonly string[];
  readonly modelFeatures: readonly ModelFeature[];
  readonly mean: number[];
  readonly scale: number[];
  readonly weights: number[];
  readonly bias: number;
  /** The fit's report: split sizes and, on the held-out half the regression did not see, its AUROC against the probe's MSP. */
  readonly fit: Record<string, number | boolean>;
}

export interface ModelCombinationOptions extends CombinationFitOptions {
  readonly modelFeatures?: readonly ModelFeature[];
}

/**
 * Fits the combination with model features on the references of `loo`, beside the
 * embedding-only `embeddingFit` that fitCombination made from the same view (whose features
 * and Gaussian it reuses); null when that one was not fitted.
 */
export async function fitModelCombination(loo: LeaveOneOutView, embeddingFit: ScoringFit | null, opts: ModelCombinationOptions = {}, signal?: AbortSignal): Promise<ModelCombination | null> {
  if (embeddingFit === null) return null;
  const { labels, numLabels, dim } = loo;
  if (labels === null || numLabels < 2) return null;
  const share = opts.heldOutShare ?? DEFAULT_COMBINATION_FIT.heldOutShare;
  const maxHeldOut = opts.maxHeldOut ?? DEFAULT_COMBINATION_FIT.maxHeldOut;
  const seed = opts.seed ?? DEFAULT_COMBINATION_FIT.seed;
  const l2 = opts.l2 ?? DEFAULT_COMBINATION_FIT.l2;
  const modelFeatures = [...(opts.modelFeatures ?? MODEL_FEATURE_NAMES)];
  const embeddingFeatures = [...embeddingFit.combination.features];
  const gaussian = embeddingFit.gaussian;

  // The split of fitCombination: the same shuffle of the labelled references.
  const labelled: number[] = [];
  for (let r = 0; r < loo.n; r++) if ((labels[r] as number) >= 0) labelled.push(r);
  const nHeld = Math.min(maxHeldOut, Math.round(labelled.length * share));
  const order = shuffleInPlace(labelled, seededRandom(seed));
  const held = order.slice(0, nHeld);
  const train = order.slice(nHeld);
  const probe = trainLinearProbe(gatherRows(loo.vectors, dim, train), Int32Array.from(train, (r) => labels[r] as number), train.length, dim, numLabels, opts.probe ?? DEFAULT_PROBE, signal);
  const heldVectors = gatherRows(loo.vectors, dim, held);
  const probs = probe.predictProba(heldVectors, held.length);
  const pred = probe.predict(heldVectors, held.length);
  const error = Float64Array.from(held, (r, i) => (pred[i] === labels[r] ? 0 : 1));

  const x: number[][] = [];
  const msp = new Float64Array(held.length);
  for (const [i, r] of held.entries()) {
    const vector = loo.vectors.subarray(r * dim, (r + 1) * dim);
    const nb = loo.neighborsOf(r);
    const sig = computeSignals(nb, loo.density, numLabels, gaussian === undefined ? undefined : { stats: gaussian, embedding: vector }).signals;
    const m = modelSignals({ probs: Array.from(probs.subarray(i * numLabels, (i + 1) * numLabels)) }, nb.labels, nb.distances, numLabels);
    msp[i] = 1 - m.confidence;
    x.push([...featureVector(sig, embeddingFeatures), ...modelFeatures.map((f) => MODEL_FEATURES[f](m))]);
    if (i % 2000 === 1999) {
      if (signal?.aborted === true) throw new QualmError(ErrorCodes.ABORTED, 'model combination fit cancelled');
      await new Promise((res) => setImmediate(res));
    }
  }
  const half = Math.floor(nHeld / 2);
  const fitErrors = error.subarray(0, half);
  const errorsA = fitErrors.reduce((s, v) => s + v, 0);
  if (half === 0 || errorsA === 0 || errorsA === half) return null;
  const logistic = fitLogistic(x.slice(0, half), fitErrors, { l2 });
  const features = [...embeddingFeatures, ...modelFeatures];
  const model = { features, mean: logistic.mean, scale: logistic.scale, weights: logistic.weights, bias: logistic.bias };
  const restScores = Float64Array.from(x.slice(half), (row) => errorProbabilityOfFeatures(model, row));
  const restErrors = error.subarray(half);
  return {
    ...model,
    embeddingFeatures,
    modelFeatures,
    fit: {
      seed,
      probe_train: train.length,
      held_out: nHeld,
      logistic_rows: half,
      evaluation_rows: nHeld - half,
      l2,
      iterations: logistic.iterations,
      converged: logistic.converged,
      held_out_auroc: auroc(restScores, restErrors),
      held_out_msp_auroc: auroc(msp.subarray(half), restErrors),
    },
  };
}

/** The combination's error probability for one sample's neighbour signals and model signals. */
export function modelCombinationScore(c: ModelCombination, embeddingRow: readonly number[], m: ModelSignals): number {
  return errorProbabilityOfFeatures(c, [...embeddingRow, ...c.modelFeatures.map((f) => MODEL_FEATURES[f](m))]);
}

/**
 * `qualm_with_model` on n rows of `z` with the model's probabilities (row-major [n, labels]):
 * the worker's kNN query against the bundle, its signals, and the model's.
 */
export function modelCombinationScores(c: ModelCombination, snap: IndexSnapshot, z: Float32Array, dim: number, efSearch: number, probs: Float64Array, numLabels: number): Float64Array {
  const n = z.length / dim;
  if (probs.length !== n * numLabels) throw new RangeError(`modelCombinationScores: ${probs.length} probabilities for ${n} rows of ${numLabels} labels`);
  snap.setEfSearch(efSearch);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const row = z.subarray(i * dim, (i + 1) * dim);
    const nb = snap.search(row);
    const sig = computeSignals(nb, snap.stats, numLabels, snap.gaussian === undefined ? undefined : { stats: snap.gaussian, embedding: row }).signals;
    const m = modelSignals({ probs: Array.from(probs.subarray(i * numLabels, (i + 1) * numLabels)) }, nb.labels, nb.distances, numLabels);
    out[i] = modelCombinationScore(c, featureVector(sig, c.embeddingFeatures), m);
  }
  return out;
}
