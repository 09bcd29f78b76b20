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
  /** Cosine distances (1 - cosine similarity), ascending. */
  readonly distances: readonly number[];
  /** Each neighbour's own leave-one-out mean distance to its k nearest other references. */
  readonly radii: readonly number[];
}
