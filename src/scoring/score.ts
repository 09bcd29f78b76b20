import type { Combination, DensityStats, GaussianStats, Neighbors, ReferenceStats } from '../index/index.js';
import { relativeDensity } from '../util/relative-density.js';
import { applyIsotonic, combinedErrorProbability } from './combine.js';
import { meanDistance, percentileRank } from './density.js';
import { mahalanobis } from './gaussian.js';
import { labelVote } from './labels.js';
import { modelSignalsFor, type ModelPrediction } from './model-signals.js';
import type { Signals } from './signals.js';

export type { Signals } from './signals.js';

export interface ScoreOptions {
  /** Weight of the density percentile; 1 - weight goes to label disagreement. In [0, 1]. */
  readonly densityWeight: number;
  /** Number of label names in the bundle (0 when unlabelled). */
  readonly numLabels: number;
  /** The bundle's fitted combination; absent: the fixed combination of combineUncertainty. */
  readonly combination?: Combination | undefined;
  /** The bundle's class-conditional Gaussian; its signals need the embedding itself. */
  readonly gaussian?: GaussianStats | undefined;
  /** The bundle's label names, for a prediction that names its label (`{"label": "shirt", ...}`). */
  readonly labelNames?: readonly string[] | undefined;
}

export interface Score {
  readonly signals: Signals;
  /** The combination of the signals before calibration, in [0, 1]. */
  readonly rawScore: number;
  /**
   * Uncertainty in [0, 1]; higher means more likely wrong. With calibrated reference
   * statistics: the share of training references whose own (leave-one-out) raw score is
   * lower, so that on in-distribution data a threshold t flags about 1 - t of the samples.
   * Without: the raw score.
   */
  readonly uncertainty: number;
  /** Index of the suggested label, or -1 without labels. */
  readonly suggestedLabel: number;
  /**
   * The chance that the downstream model is right on this sample: the fitted combination's
   * isotonic calibration when the bundle has one; else the kNN vote share; null without labels.
   */
  readonly predictedAccuracy: number | null;
}

/** What a loaded bundle (an IndexSnapshot) gives scoreNeighbors. */
export interface ScoringBundle {
  readonly densityWeight: number;
  readonly labelNames: readonly string[];
  readonly combination: Combination | undefined;
  readonly gaussian: GaussianStats | undefined;
}

/** The options to score against `bundle` with everything it was calibrated with: its fixed weight, labels, fitted combination and Gaussian. */
export function bundleScoreOptions(bundle: ScoringBundle): ScoreOptions {
  return { densityWeight: bundle.densityWeight, numLabels: bundle.labelNames.length, combination: bundle.combination, gaussian: bundle.gaussian, labelNames: bundle.labelNames };
}

/**
 * The fixed combination, used when the bundle has no fitted one (an unlabelled bundle: the
 * label-free fallback; or one built before fitted combinations): the density score and
 * neighbour label disagreement, combined linearly. Without labels the raw score is the
 * density score alone.
 */
export function combineUncertainty(densityScore: number, labelAgreement: number | null, densityWeight: number): number {
  const u = labelAgreement === null ? densityScore : densityWeight * densityScore + (1 - densityWeight) * (1 - labelAgreement);
  return Math.min(1, Math.max(0, u));
}

/**
 * The density part of the score: the mean of the absolute (mean kNN distance) and the
 * relative (against the neighbours' own radii) density percentiles. The first finds samples
 * far from all training data, the second samples outside the cluster they sit next to,
 * whatever that cluster's own density.
 */
export function densityScore(densityPercentile: number, relativeDensityPercentile: number): number {
  return (densityPercentile + relativeDensityPercentile) / 2;
}

/**
 * The raw score of one reference from its leave-one-out neighbours, for the calibration that
 * build-index stores in the bundle (BuildInput.referenceScore).
 */
export function referenceScorer(opts: ScoreOptions): (neighbors: Neighbors, density: DensityStats) => number {
  return (neighbors, density) => scoreNeighbors(neighbors, { ...density, looScoreQuantiles: null }, opts).rawScore;
}

/** The share of neighbours j with distance_j ≤ kthRadii_j (1 for no neighbours). */
export function reverseNeighborConsistency(distances: readonly number[], kthRadii: readonly number[]): number {
  if (distances.length !== kthRadii.length) throw new RangeError('distances and kthRadii differ in length');
  if (distances.length === 0) return 1;
  let inside = 0;
  for (let j = 0; j < distances.length; j++) if ((distances[j] as number) <= (kthRadii[j] as number)) inside++;
  return inside / distances.length;
}

/**
 * Every signal of one embedding, from its neighbours and the bundle's reference statistics,
 * and with the bundle's Gaussian and the embedding itself, its Mahalanobis signals.
 */
export function computeSignals(
  neighbors: Neighbors,
  stats: DensityStats,
  numLabels: number,
  gaussian?: { readonly stats: GaussianStats; readonly embedding: ArrayLike<number> },
  prediction?: ModelPrediction,
  labelNames?: readonly string[],
): { signals: Signals; suggestedLabel: number } {
  const d = neighbors.distances;
  if (d.length === 0) throw new RangeError('scoreNeighbors needs at least one neighbour');
  const meanKnnDistance = meanDistance(d);
  const kthKnnDistance = d[d.length - 1] as number;
  const relative = relativeDensity(meanKnnDistance, meanDistance(neighbors.radii));
  let labelAgreement: number | null = null;
  let labelEntropy: number | null = null;
  let labelMargin: number | null = null;
  let suggestedLabel = -1;
  if (neighbors.labels !== null && numLabels > 0) {
    const vote = labelVote(neighbors.labels, d, numLabels);
    labelAgreement = vote.share;
    labelEntropy = vote.entropy;
    labelMargin = vote.margin;
    suggestedLabel = vote.topLabel;
  }
  const m = gaussian === undefined ? null : mahalanobis(gaussian.stats.params, gaussian.embedding);
  const model = modelSignalsFor(prediction, neighbors.labels, d, numLabels, labelNames, m?.classDistances ?? null);
  return {
    signals: {
      meanKnnDistance,
      kthKnnDistance,
      densityPercentile: percentileRank(meanKnnDistance, stats.looMeanKnnQuantiles),
      kthKnnPercentile: percentileRank(kthKnnDistance, stats.looKthKnnQuantiles),
      relativeDensity: relative,
      relativeDensityPercentile: percentileRank(relative, stats.looRelativeDensityQuantiles),
      labelAgreement,
      labelEntropy,
      labelMargin,
      reverseNeighborConsistency: neighbors.kthRadii === null ? null : reverseNeighborConsistency(d, neighbors.kthRadii),
      mahalanobisPercentile: m === null || gaussian === undefined ? null : percentileRank(m.classDistance, gaussian.stats.classDistanceQuantiles),
      relativeMahalanobisPercentile: m === null || gaussian === undefined ? null : percentileRank(m.relative, gaussian.stats.relativeQuantiles),
      modelConfidence: model?.confidence ?? null,
      modelEntropy: model?.entropy ?? null,
      modelNeighborAgreement: model === null || neighbors.labels === null ? null : model.neighborAgreement,
      // Set by scoreNeighbors, which knows the combination.
      modelPredictionUsed: null,
      modelGaussianLogOdds: model?.gaussianLogOdds ?? null,
    },
    suggestedLabel,
  };
}

/**
 * Scores one embedding from its neighbours and the bundle's reference statistics: with the
 * bundle's fitted combination when it has one, else with the fixed one. The embedding itself
 * is needed for the Gaussian signals (opts.gaussian); without it they are null.
 *
 * With the downstream model's `prediction` (the sample's), its signals are computed too; when
 * the bundle's combination has a part fitted with them (`with_model`), that part scores the
 * sample: its error probability, its rank among the held-out references' own (uncertainty),
 * its isotonic map (predicted accuracy). A sample without a usable prediction is scored by the
 * embedding-only combination, and `modelPredictionUsed` says which one it was.
 */
export function scoreNeighbors(neighbors: Neighbors, stats: ReferenceStats, opts: ScoreOptions, embedding?: ArrayLike<number>, prediction?: ModelPrediction): Score {
  const g = opts.gaussian !== undefined && embedding !== undefined ? { stats: opts.gaussian, embedding } : undefined;
  const computed = computeSignals(neighbors, stats, opts.numLabels, g, prediction, opts.labelNames);
  const suggestedLabel = computed.suggestedLabel;
  const wm = opts.combination?.with_model;
  const useModel = wm !== undefined && computed.signals.modelConfidence !== null;
  const signals: Signals = { ...computed.signals, modelPredictionUsed: wm === undefined ? null : useModel ? 1 : 0 };
  if (useModel) {
    const raw = combinedErrorProbability(wm, signals);
    return { signals, rawScore: raw, uncertainty: percentileRank(raw, wm.score_quantiles), suggestedLabel, predictedAccuracy: applyIsotonic(wm.isotonic, raw) };
  }
  const c = opts.combination;
  const rawScore =
    c === undefined
      ? combineUncertainty(densityScore(signals.densityPercentile, signals.relativeDensityPercentile), signals.labelAgreement, opts.densityWeight)
      : combinedErrorProbability(c, signals);
  return {
    signals,
    rawScore,
    uncertainty: stats.looScoreQuantiles === null ? rawScore : percentileRank(rawScore, stats.looScoreQuantiles),
    suggestedLabel,
    predictedAccuracy: c === undefined ? signals.labelAgreement : applyIsotonic(c.isotonic, rawScore),
  };
}
