/** Statistics of the references themselves, computed at build time and stored in the bundle. */
export interface ReferenceStats {
  /** k used for the leave-one-out queries; workers query with the same k. */
  readonly k: number;
  /**
   * Empirical quantiles of each reference's leave-one-out mean distance to its k nearest
   * other references, at probabilities i / (n - 1) for i = 0..n-1 (ascending).
   */
  readonly looMeanKnnQuantiles: readonly number[];
  /** The same for the distance to the k-th nearest other reference. */
  readonly looKthKnnQuantiles: readonly number[];
  /**
   * Quantiles of each reference's leave-one-out relative density: its mean kNN distance
   * divided by the mean of its neighbours' own leave-one-out mean kNN distances.
   */
  readonly looRelativeDensityQuantiles: readonly number[];
  /**
   * Quantiles of the references' own leave-one-out raw combined score (see scoring), which
   * turn a raw score into "the share of training references more certain than this";
   * null for a bundle built without them.
   */
  readonly looScoreQuantiles: readonly number[] | null;
}

/** The density part of the reference statistics, available before any combined score. */
export type DensityStats = Omit<ReferenceStats, 'looScoreQuantiles'>;

/** The k nearest references of one query, nearest first. */
export interface Neighbors {
  readonly ids: readonly string[];
  /** Label index per neighbour (into the bundle's label names), or -1 when unknown; null when the bundle has no labels. */
  readonly labels: readonly number[] | null;
  /** Distances under the bundle's metric (cosine: 1 - cosine similarity; l2: squared Euclidean; ip: 1 - inner product, clamped at 0), ascending. */
  readonly distances: readonly number[];
  /** Each neighbour's own leave-one-out mean distance to its k nearest other references. */
  readonly radii: readonly number[];
  /** Each neighbour's own k-NN radius (leave-one-out distance to its k-th nearest other reference); null for a bundle without it. */
  readonly kthRadii: readonly number[] | null;
}

/**
 * The references' class-conditional Gaussian (see scoring/gaussian.ts): lower Cholesky
 * factors of the shared within-class and of the global covariance, and the means whitened
 * by them (L⁻¹ μ). Row-major, dim × dim and classes × dim.
 */
export interface GaussianParams {
  readonly dim: number;
  readonly classes: number;
  readonly classFactor: Float64Array;
  readonly classMeans: Float64Array;
  readonly globalFactor: Float64Array;
  readonly globalMean: Float64Array;
}

/** The Gaussian and the references' own distances under it, as 1001 ascending quantiles each. */
export interface GaussianStats {
  readonly params: GaussianParams;
  readonly classDistanceQuantiles: readonly number[];
  readonly relativeQuantiles: readonly number[];
  /**
   * Folds the quantiles were cross-fitted over (each reference's distances under the Gaussian
   * fitted without its fold); absent: in-sample, as bundles written before it have them.
   */
  readonly crossFitFolds?: number;
}
