import hnswlib from 'hnswlib-node';
import type { BundleMetric } from './manifest.js';

/** HNSW construction parameters of one shard. */
export interface ShardParams {
  m: number;
  efConstruction: number;
  randomSeed: number;
}

/** Rows between two progress reports (and abort checks) of the insert and leave-one-out loops. */
export const PROGRESS_EVERY = 1000;

/**
 * The index work of a build, shared by the in-process path and the build threads: HNSW
 * shards over the rows of one row-major vector matrix (hnswlib labels are the global row
 * numbers), and nearest-neighbour queries of rows against every shard held here.
 * The loops are generators that yield their progress every PROGRESS_EVERY rows, so that the
 * caller decides how to report it and where to stop.
 */
export class ShardWork {
  readonly indexes: hnswlib.HierarchicalNSW[] = [];

  constructor(
    private readonly vectors: Float32Array,
    readonly dim: number,
    /** The HNSW space: cosine, l2 or ip (see manifest.ts BUNDLE_METRICS). */
    readonly metric: BundleMetric = 'cosine',
  ) {}

  row(i: number): number[] {
    return Array.from(this.vectors.subarray(i * this.dim, (i + 1) * this.dim));
  }

  /**
   * Opens a shard with room for `adding` more rows: empty, or read from `base` (an earlier
   * bundle's shard file, for an incremental build). Returns its position here.
   */
  async open(params: ShardParams, base: string | null, adding: number): Promise<number> {
    const index = new hnswlib.HierarchicalNSW(this.metric, this.dim);
    if (base === null) {
      index.initIndex(Math.max(1, adding), params.m, params.efConstruction, params.randomSeed);
    } else {
      await index.readIndex(base);
      index.resizeIndex(index.getCurrentCount() + Math.max(1, adding));
    }
    this.indexes.push(index);
    return this.indexes.length - 1;
  }

  /** Reads a finished shard file (to query it). */
  async load(file: string): Promise<void> {
    const index = new hnswlib.HierarchicalNSW(this.metric, this.dim);
    await index.readIndex(file);
    this.indexes.push(index);
  }

  /** Inserts rows [lo, hi) into shard `at`, yielding the number inserted so far. */
  *insert(at: number, lo: number, hi: number): Generator<number, void> {
    const index = this.indexes[at];
    if (index === undefined) throw new RangeError(`no shard ${at}`);
    for (let i = lo; i < hi; i++) {
      index.addPoint(this.row(i), i);
      if ((i - lo) % PROGRESS_EVERY === PROGRESS_EVERY - 1) yield i - lo + 1;
    }
    yield hi - lo;
  }

  async write(at: number, file: string): Promise<void> {
    const index = this.indexes[at];
    if (index === undefined) throw new RangeError(`no shard ${at}`);
    await index.writeIndex(file);
  }

  /**
   * The `k1` nearest rows of each row in [lo, hi) over every shard held here, nearest first,
   * into `outRows`/`outDist` at (i - lo) * k1 (row -1 and distance Infinity pad a short list).
   * The row itself is among them when a shard here holds it: the caller drops it.
   */
  *nearest(lo: number, hi: number, k1: number, ef: number, outRows: Int32Array, outDist: Float32Array): Generator<number, void> {
    for (const index of this.indexes) index.setEf(Math.max(ef, k1));
    const candRows: number[] = [];
    const candDist: number[] = [];
    const order: number[] = [];
    for (let i = lo; i < hi; i++) {
      const q = this.row(i);
      candRows.length = 0;
      candDist.length = 0;
      for (const index of this.indexes) {
        const res = index.searchKnn(q, Math.min(k1, index.getCurrentCount()));
        for (let j = 0; j < res.neighbors.length; j++) {
          candRows.push(res.neighbors[j] as number);
          candDist.push(res.distances[j] as number);
        }
      }
      order.length = 0;
      for (let j = 0; j < candRows.length; j++) order.push(j);
      order.sort((a, b) => (candDist[a] as number) - (candDist[b] as number) || (candRows[a] as number) - (candRows[b] as number));
      const off = (i - lo) * k1;
      for (let j = 0; j < k1; j++) {
        const c = order[j];
        outRows[off + j] = c === undefined ? -1 : (candRows[c] as number);
        outDist[off + j] = c === undefined ? Infinity : (candDist[c] as number);
      }
      if ((i - lo) % PROGRESS_EVERY === PROGRESS_EVERY - 1) yield i - lo + 1;
    }
    yield hi - lo;
  }
}
