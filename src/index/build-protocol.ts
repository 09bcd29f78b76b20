/** Messages between the builder and its build threads (see build-thread.ts). */
import type { BundleMetric } from './manifest.js';
import type { ShardParams } from './shard-work.js';

export interface BuildThreadData {
  /** The row-major vectors of every reference, shared by all threads. */
  readonly vectors: SharedArrayBuffer;
  readonly byteOffset: number;
  readonly length: number;
  readonly dim: number;
  readonly metric: BundleMetric;
}

export type BuildRequest =
  /** Open a shard (empty or from `base`), insert rows [lo, hi), write it to `out`. */
  | { readonly type: 'build'; readonly params: ShardParams; readonly base: string | null; readonly lo: number; readonly hi: number; readonly out: string }
  /** Read a finished shard file to query it. */
  | { readonly type: 'load'; readonly file: string }
  /** The k1 nearest rows of rows [lo, hi) over every shard this thread holds. */
  | { readonly type: 'nearest'; readonly lo: number; readonly hi: number; readonly k1: number; readonly ef: number };

export type BuildReply =
  | { readonly type: 'progress'; readonly done: number }
  | { readonly type: 'done' }
  | { readonly type: 'nearest'; readonly rows: Int32Array; readonly dist: Float32Array }
  | { readonly type: 'error'; readonly message: string };
