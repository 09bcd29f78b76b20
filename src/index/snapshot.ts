import type hnswlib from 'hnswlib-node';
import type { BundleManifest } from './manifest.js';
import type { Neighbors, ReferenceStats } from './types.js';

/**
 * One loaded, verified bundle. Immutable: nothing inserts into its HNSW index after load,
 * so concurrent searches are safe and a refresh swaps the whole snapshot.
 */
export class IndexSnapshot {
  readonly version: string;
  readonly stats: ReferenceStats;
  readonly labelNames: readonly string[];
  readonly loadedAt: number;
  /** Density weight of the combination the bundle was calibrated with. */
  readonly densityWeight: number;

  constructor(
    readonly manifest: BundleManifest,
    private readonly index: hnswlib.HierarchicalNSW,
    private readonly ids: readonly string[],
    private readonly labels: readonly number[] | null,
    /** Each reference's own leave-one-out mean kNN distance, by row. */
    private readonly radii: Float32Array,
    efSearch: number,
  ) {
    this.version = manifest.version;
    this.labelNames = manifest.labels?.names ?? [];
    this.stats = {
      k: manifest.reference_stats.k,
      looMeanKnnQuantiles: manifest.reference_stats.loo_mean_knn_quantiles,
      looKthKnnQuantiles: manifest.reference_stats.loo_kth_knn_quantiles,
      looRelativeDensityQuantiles: manifest.reference_stats.loo_relative_density_quantiles,
      looScoreQuantiles: manifest.reference_stats.loo_score_quantiles,
    };
    this.densityWeight = manifest.scoring.density_weight;
    index.setEf(Math.max(efSearch, manifest.reference_stats.k));
    this.loadedAt = Date.now();
  }

  get count(): number {
    return this.manifest.count;
  }

  get dim(): number {
    return this.manifest.model.dim;
  }

  /** The k nearest references of `vector` (k defaults to the bundle's k), nearest first. */
  search(vector: ArrayLike<number>, k: number = this.stats.k): Neighbors {
    const res = this.index.searchKnn(Array.from(vector), Math.min(k, this.count));
    const order = res.distances.map((_, i) => i).sort((a, b) => (res.distances[a] as number) - (res.distances[b] as number));
    const distances = order.map((i) => Math.max(0, res.distances[i] as number));
    const rows = order.map((i) => res.neighbors[i] as number);
    return {
      ids: rows.map((r) => this.ids[r] as string),
      labels: this.labels === null ? null : rows.map((r) => this.labels?.[r] ?? -1),
      distances,
      radii: rows.map((r) => this.radii[r] as number),
    };
  }

  /** The stored vector of reference row `row` (for sanity checks). */
  vectorOf(row: number): number[] {
    return this.index.getPoint(row);
  }

  labelName(label: number): string | null {
    return label >= 0 ? (this.labelNames[label] ?? null) : null;
  }
}
