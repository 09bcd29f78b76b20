import { voteWeights } from './labels.js';
import type { Signals } from './signals.js';

/**
 * The downstream model's own view of a sample, as signals beside the embedding's: its
 * confidence (the maximum softmax probability, MSP), the entropy of its probabilities, how
 * much of the neighbours' distance-weighted label vote goes to the label it predicted, and,
 * with the bundle's class-conditional Gaussian, how strongly that Gaussian (a second, linear
 * classifier of the same embedding) prefers another label. Pure: the prediction comes with the
 * sample (or the reference), nothing is looked up.
 */

/**
 * A model prediction in one of the three forms a sample may carry (the input's `prediction`
 * field, validated by contracts/prediction.ts): probabilities or logits in the bundle's label
 * order, or a label (its index, or its name in the bundle) with the model's confidence in it.
 */
export type ModelPrediction =
  | { readonly probs: readonly number[] }
  | { readonly logits: readonly number[] }
  | { readonly label: number | string; readonly confidence: number };

/** The model's signals of one sample. */
export interface ModelSignals {
  /** The predicted label's index. */
  readonly label: number;
  /** The largest probability (MSP), in [0, 1]. */
  readonly confidence: number;
  /** Entropy of the probability vector over log(labels), in [0, 1]. */
  readonly entropy: number;
  /** Share of the neighbours' distance-weighted vote for the predicted label, in [0, 1] (0 when no neighbour is labelled). */
  readonly neighborAgreement: number;
  /** The Gaussian's log-odds of its likeliest other label against the predicted one (gaussianLogOdds); null without class distances. */
  readonly gaussianLogOdds: number | null;
}

/** Probabilities from logits (a numerically stable softmax). */
export function softmax(logits: readonly number[]): number[] {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const e = logits.map((v) => Math.exp(v - max));
  const sum = e.reduce((s, v) => s + v, 0);
  return e.map((v) => v / sum);
}

/**
 * The prediction's label, confidence and normalised entropy over `numLabels` labels. A
 * label-plus-confidence prediction spreads the remaining mass evenly over the other labels
 * for its entropy (the largest entropy that confidence allows).
 */
export function predictionSummary(prediction: ModelPrediction, numLabels: number, labelNames: readonly string[] = []): { label: number; confidence: number; entropy: number } {
  if (numLabels < 2) throw new RangeError(`a model prediction needs at least two labels, the bundle has ${numLabels}`);
  const norm = Math.log(numLabels);
  if ('label' in prediction) {
    const label = typeof prediction.label === 'number' ? prediction.label : labelNames.indexOf(prediction.label);
    if (!Number.isInteger(label) || label < 0 || label >= numLabels) throw new RangeError(`the prediction's label ${JSON.stringify(prediction.label)} is not one of the bundle's ${numLabels} labels`);
    const c = prediction.confidence;
    const rest = (1 - c) / (numLabels - 1);
    const h = (c > 0 ? -c * Math.log(c) : 0) + (rest > 0 ? -(1 - c) * Math.log(rest) : 0);
    return { label, confidence: c, entropy: Math.min(1, Math.max(0, h / norm)) };
  }
  const p = 'probs' in prediction ? prediction.probs : softmax(prediction.logits);
  if (p.length !== numLabels) throw new RangeError(`the prediction has ${p.length} probabilities, the bundle has ${numLabels} labels`);
  let best = 0;
  let h = 0;
  for (let c = 0; c < numLabels; c++) {
    const v = p[c] as number;
    if (v > (p[best] as number)) best = c;
    if (v > 0) h -= v * Math.log(v);
  }
  return { label: best, confidence: p[best] as number, entropy: Math.min(1, Math.max(0, h / norm)) };
}

/**
 * Under a class-conditional Gaussian with a shared covariance and equal priors, the log-odds of
 * label c against label y is (d_y − d_c) / 2 for squared Mahalanobis distances d. This is that
 * log-odds for the likeliest label other than `label`: positive when the Gaussian prefers
 * another label, negative when it agrees, by how much (unbounded; not a percentile, since its
 * scale is what a logistic regression on it needs).
 */
export function gaussianLogOdds(classDistances: readonly number[], label: number): number {
  const own = classDistances[label];
  if (own === undefined || classDistances.length < 2) throw new RangeError(`gaussianLogOdds: label ${label} of ${classDistances.length} class distances`);
  let other = Infinity;
  for (let c = 0; c < classDistances.length; c++) if (c !== label) other = Math.min(other, classDistances[c] as number);
  return (own - other) / 2;
}

/**
 * The model's signals of one sample from its prediction, its neighbours' labels (-1: unknown)
 * and distances and, when the bundle has a Gaussian, the sample's squared Mahalanobis distance
 * to each class mean.
 */
export function modelSignals(
  prediction: ModelPrediction,
  neighborLabels: readonly number[] | null,
  distances: readonly number[],
  numLabels: number,
  labelNames: readonly string[] = [],
  classDistances: readonly number[] | null = null,
): ModelSignals {
  const { label, confidence, entropy } = predictionSummary(prediction, numLabels, labelNames);
  let neighborAgreement = 0;
  if (neighborLabels !== null) {
    const { weights, total } = voteWeights(neighborLabels, distances, numLabels);
    neighborAgreement = total === 0 ? 0 : (weights[label] as number) / total;
  }
  const gaussian = classDistances === null || classDistances.length !== numLabels ? null : gaussianLogOdds(classDistances, label);
  return { label, confidence, entropy, neighborAgreement, gaussianLogOdds: gaussian };
}

/**
 * The features the fitted combination takes from the model's signals, each oriented as
 * uncertainty: the log of 1 − MSP (the MSP's own scale compresses the confident end, where
 * most errors are ranked), the normalised entropy, 1 − the neighbours' vote for the model's
 * label, and the Gaussian's log-odds against the model's label (only fitted for a bundle with
 * a Gaussian: eval/model-combination.ts).
 */
export const MODEL_FEATURE_NAMES = ['model_log_msp_uncertainty', 'model_entropy', 'model_neighbor_disagreement', 'model_gaussian_disagreement'] as const;
export type ModelFeature = (typeof MODEL_FEATURE_NAMES)[number];

export const MODEL_FEATURES: Readonly<Record<ModelFeature, (m: Pick<ModelSignals, 'confidence' | 'entropy' | 'neighborAgreement' | 'gaussianLogOdds'>) => number>> = {
  model_log_msp_uncertainty: (m) => Math.log(1 - m.confidence + 1e-6),
  model_entropy: (m) => m.entropy,
  model_neighbor_disagreement: (m) => 1 - m.neighborAgreement,
  // Missing (no Gaussian) is 0, "no opinion": an unbounded feature has no worst value, and a
  // combination that uses it is only fitted, and so only applied, with the bundle's Gaussian.
  model_gaussian_disagreement: (m) => m.gaussianLogOdds ?? 0,
};

/**
 * A model feature of one sample's signals; a missing model signal gives the feature its
 * worst value, as for the embedding features (a combination with model features is only
 * applied to samples whose prediction was read: see scoreNeighbors).
 */
export function modelFeatureOfSignals(name: ModelFeature, s: Signals): number {
  return MODEL_FEATURES[name]({
    confidence: s.modelConfidence ?? 0,
    entropy: s.modelEntropy ?? 1,
    neighborAgreement: s.modelNeighborAgreement ?? 0,
    gaussianLogOdds: s.modelGaussianLogOdds,
  });
}

/**
 * The model's signals of a sample for the bundle, or null when the prediction does not fit it
 * (another number of probabilities, a label it does not have): the sample is then scored
 * without them, and the record's model signals are null.
 */
export function modelSignalsFor(
  prediction: ModelPrediction | undefined,
  neighborLabels: readonly number[] | null,
  distances: readonly number[],
  numLabels: number,
  labelNames: readonly string[] = [],
  classDistances: readonly number[] | null = null,
): ModelSignals | null {
  if (prediction === undefined || numLabels < 2) return null;
  try {
    return modelSignals(prediction, neighborLabels, distances, numLabels, labelNames, classDistances);
  } catch {
    return null;
  }
}

export function isModelFeature(name: string): name is ModelFeature {
  return Object.hasOwn(MODEL_FEATURES, name);
}

/** The model features of one sample, in MODEL_FEATURE_NAMES order. */
export function modelFeatureVector(m: ModelSignals): number[] {
  return MODEL_FEATURE_NAMES.map((f) => MODEL_FEATURES[f](m));
}
