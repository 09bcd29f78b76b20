/** The signals of one embedding against the reference bundle (see score.ts computeSignals). */
export interface Signals {
  readonly meanKnnDistance: number;
  readonly kthKnnDistance: number;
  /** percentileRank of meanKnnDistance against the references' leave-one-out distribution. */
  readonly densityPercentile: number;
  /** percentileRank of kthKnnDistance against the references' leave-one-out k-th distances. */
  readonly kthKnnPercentile: number;
  /** meanKnnDistance over the neighbours' own mean kNN distances: about 1 inside a cluster, larger outside. */
  readonly relativeDensity: number;
  /** percentileRank of relativeDensity against the references' own leave-one-out values. */
  readonly relativeDensityPercentile: number;
  /** Weighted vote share of the top label; null without labels. */
  readonly labelAgreement: number | null;
  /** Normalised entropy of the neighbour labels; null without labels. */
  readonly labelEntropy: number | null;
  /** Weighted vote share of the top label minus that of the second; null without labels. */
  readonly labelMargin: number | null;
  /**
   * Reverse-neighbour consistency: the share of the neighbours that would count the sample
   * inside their own k-NN radius (distance at most their leave-one-out k-th distance). Label
   * free; null for a bundle without the radii.
   */
  readonly reverseNeighborConsistency: number | null;
  /**
   * Share of the references closer to their nearest class mean (Mahalanobis, shared
   * covariance; Lee et al. 2018) than this sample is to its own; null without the bundle's Gaussian.
   */
  readonly mahalanobisPercentile: number | null;
  /** The same for the relative Mahalanobis distance (class minus global; Ren et al. 2021); null without the Gaussian. */
  readonly relativeMahalanobisPercentile: number | null;
}
