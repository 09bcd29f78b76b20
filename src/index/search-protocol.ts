/** Messages between the worker's main thread and its search thread (src/index/search-thread.ts). */
import type { BundleMetric } from './manifest.js';

/** Opens one bundle version's shard files in the thread (read-only; never inserted into). */
export interface SearchLoad {
  readonly type: 'load';
  readonly version: string;
  /** Absolute paths of the shard files, in shard order. */
  readonly files: readonly string[];
  readonly metric: BundleMetric;
  readonly dim: number;
  readonly ef: number;
}

/** Forgets a version (after the main thread has swapped past it). */
export interface SearchDrop {
  readonly type: 'drop';
  readonly version: string;
}

/** The k nearest references of each of n query rows. */
export interface SearchQuery {
  readonly type: 'search';
  readonly id: number;
  readonly version: string;
  readonly k: number;
  readonly n: number;
  /** n rows of dim values, row-major (transferred). */
  readonly data: Float32Array;
}

export type SearchRequest = SearchLoad | SearchDrop | SearchQuery;

export type SearchReply =
  | { readonly type: 'loaded'; readonly version: string; readonly count: number }
  | { readonly type: 'load-failed'; readonly version: string; readonly message: string }
  /**
   * Per query, `m` neighbours nearest first: rows[i*m + j] is a global reference row,
   * dist[i*m + j] its distance (clamped at 0), m = min(k, references).
   */
  | { readonly type: 'found'; readonly id: number; readonly m: number; readonly rows: Int32Array; readonly dist: Float32Array }
  | { readonly type: 'error'; readonly id: number; readonly message: string };
