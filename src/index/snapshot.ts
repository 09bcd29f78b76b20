import type hnswlib from 'hnswlib-node';
import type { BundleManifest, Combination } from './manifest.js';
import { searchShards } from './shard-search.js';
import type { GaussianStats, Neighbors, ReferenceStats } from './types.js';

/**
 * One loaded, verified bundle. Immutable: nothing inserts into its HNSW index after load,
 * so concurrent searches are safe and a refresh swaps the whole snapshot.
 */
export class IndexSnapshot {
  readonly version: string;
  readonly stats: ReferenceStats;
  readonly labelNames: readonly string[];
  readonly loadedAt: number;
  /** Density weight of the fixed combination (used when the bundle has no fitted one). */
  readonly densityWeight: number;
  /** The combination fitted at build time, or undefined (the fixed combination applies). */
  readonly combination: Combination | undefined;

  constructor(
    readonly manifest: BundleManifest,
    /** The HNSW shards; their labels are global row numbers. */
    private readonly indexes: readonly hnswlib.HierarchicalNSW[],
    /** The shard holding each row, or null for a single shard. */
    private readonly shardOf: Uint8Array | null,
    private readonly ids: readonly string[],
    private readonly labels: readonly number[] | null,
    /** Each reference's own leave-one-out mean kNN distance, by row. */
    private readonly radii: Float32Array,
    /** Each reference's own leave-one-out k-NN radius, by row; null for a bundle without it. */
    private readonly kthRadii: Float32Array | null,
    /** The references' class-conditional Gaussian, when the build fitted one. */
    readonly gaussian: GaussianStats | undefined,
    efSearch: number,
    /** Absolute paths of the shard files the indexes were read from (for a search thread to open them too). */
    readonly shardPaths: readonly string[] = [],
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
    this.combination = manifest.scoring.combination;
    for (const index of indexes) index.setEf(Math.max(efSearch, manifest.reference_stats.k));
    this.loadedAt = Date.now();
  }

  get count(): number {
    return this.manifest.count;
  }

  get dim(): number {
    return this.manifest.model.dim;
  }

  /**
   * Changes the HNSW query ef of every shard (recall against latency); the loader sets it
   * from LoadOptions.efSearch. For tuning and benchmarks: searches are synchronous, so none
   * is in flight while it changes.
   */
  setEfSearch(ef: number): void {
    for (const index of this.indexes) index.setEf(Math.max(ef, this.stats.k));
  }

  /** Number of HNSW shards (each searched for every query). */
  get shards(): number {
    return this.indexes.length;
  }

  /**
   * The k nearest references of `vector` (k defaults to the bundle's k), nearest first.
   * A sharded bundle asks every shard for its k nearest and keeps the k nearest of all.
   */
  search(vector: ArrayLike<number>, k: number = this.stats.k): Neighbors {
    const { rows, distances } = searchShards(this.indexes, Array.from(vector), k);
    return this.neighborsOf(rows, distances);
  }

  /** The HNSW query ef of the shards. */
  get efSearch(): number {
    return this.indexes[0]?.getEf() ?? this.stats.k;
  }

  /**
   * Neighbours of reference rows found elsewhere (a search thread on the same shard files):
   * `rows` nearest first with their `distances`, looked up in this snapshot's ids, labels and radii.
   */
  neighborsOf(rows: ArrayLike<number>, distances: ArrayLike<number>): Neighbors {
    const n = rows.length;
    const ids = new Array<string>(n);
    const dist = new Array<number>(n);
    const radii = new Array<number>(n);
    const labels = this.labels === null ? null : new Array<number>(n);
    const kth = this.kthRadii === null ? null : new Array<number>(n);
    for (let j = 0; j < n; j++) {
      const r = rows[j] as number;
      const id = this.ids[r];
      if (id === undefined) throw new RangeError(`no reference row ${r} in bundle ${this.version}`);
      ids[j] = id;
      dist[j] = distances[j] as number;
      radii[j] = this.radii[r] as number;
      if (labels !== null) labels[j] = this.labels?.[r] ?? -1;
      if (kth !== null) kth[j] = this.kthRadii?.[r] as number;
    }
    return { ids, labels, distances: dist, radii, kthRadii: kth };
  }

  /** The stored vector of reference row `row` (for sanity checks). */
  vectorOf(row: number): number[] {
    const index = this.indexes[this.shardOf?.[row] ?? 0];
    if (index === undefined || row < 0 || row >= this.count) throw new RangeError(`no reference row ${row}`);
    return index.getPoint(row);
  }

  /** Reference ids by row. */
  get referenceIds(): readonly string[] {
    return this.ids;
  }

  /** Label index by row (-1 unknown), or null for an unlabelled bundle. */
  get referenceLabels(): readonly number[] | null {
    return this.labels;
  }

  labelName(label: number): string | null {
    return label >= 0 ? (this.labelNames[label] ?? null) : null;
  }
}
