import type { DensityStats, Neighbors, ReferenceStats } from '../index/index.js';
import { relativeDensity } from '../util/relative-density.js';
import { meanDistance, percentileRank } from './density.js';
import { labelVote } from './labels.js';

export interface Signals {
  readonly meanKnnDistance: number;
  readonly kthKnnDistance: number;
  /** percentileRank of meanKnnDistance against the references' leave-one-out distribution. */
  readonly densityPercentile: number;
  /** meanKnnDistance over the neighbours' own mean kNN distances: about 1 inside a cluster, larger outside. */
  readonly relativeDensity: number;
  /** percentileRank of relativeDensity against the references' own leave-one-out values. */
  readonly relativeDensityPercentile: number;
  /** Weighted vote share of the top label; null without labels. */
  readonly labelAgreement: number | null;
  /** Normalised entropy of the neighbour labels; null without labels. */
  readonly labelEntropy: number | null;
}

export interface ScoreOptions {
  /** Weight of the density percentile; 1 - weight goes to label disagreement. In [0, 1]. */
  readonly densityWeight: number;
  /** Number of label names in the bundle (0 when unlabelled). */
  readonly numLabels: number;
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
  /** kNN estimate of the chance that the suggested label is right (the vote share); null without labels. */
  readonly predictedAccuracy: number | null;
}

/**
 * Scoring v1: the density score and neighbour label disagreement, combined linearly.
 * Without labels the raw score is the density score alone.
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

/** Scores one embedding from its neighbours and the bundle's reference statistics. */
export function scoreNeighbors(neighbors: Neighbors, stats: ReferenceStats, opts: ScoreOptions): Score {
  const d = neighbors.distances;
  if (d.length === 0) throw new RangeError('scoreNeighbors needs at least one neighbour');
  const meanKnnDistance = meanDistance(d);
  const kthKnnDistance = d[d.length - 1] as number;
  const densityPercentile = percentileRank(meanKnnDistance, stats.looMeanKnnQuantiles);
  const relative = relativeDensity(meanKnnDistance, meanDistance(neighbors.radii));
  const relativeDensityPercentile = percentileRank(relative, stats.looRelativeDensityQuantiles);
  let labelAgreement: number | null = null;
  let labelEntropy: number | null = null;
  let suggestedLabel = -1;
  if (neighbors.labels !== null && opts.numLabels > 0) {
    const vote = labelVote(neighbors.labels, d, opts.numLabels);
    labelAgreement = vote.share;
    labelEntropy = vote.entropy;
    suggestedLabel = vote.topLabel;
  }
  const rawScore = combineUncertainty(densityScore(densityPercentile, relativeDensityPercentile), labelAgreement, opts.densityWeight);
  return {
    signals: { meanKnnDistance, kthKnnDistance, densityPercentile, relativeDensity: relative, relativeDensityPercentile, labelAgreement, labelEntropy },
    rawScore,
    uncertainty: stats.looScoreQuantiles === null ? rawScore : percentileRank(rawScore, stats.looScoreQuantiles),
    suggestedLabel,
    predictedAccuracy: labelAgreement,
  };
}
