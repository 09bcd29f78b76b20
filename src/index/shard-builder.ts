import type { Worker } from 'node:worker_threads';
import { ErrorCodes, QualmError } from '../errors.js';
import { spawnThread, threadUrl } from '../util/spawn-thread.js';
import type { BuildReply, BuildRequest, BuildThreadData } from './build-protocol.js';
import type { BundleMetric } from './manifest.js';
import { ShardWork, type ShardParams } from './shard-work.js';

const THREAD_URL = threadUrl(import.meta.url, 'build-thread');

/** One shard of a build: its rows [lo, hi) to insert, an optional base file, its output file. */
export interface ShardPlan {
  lo: number;
  hi: number;
  /** An earlier bundle's shard to extend (incremental build), or null to start empty. */
  base: string | null;
  out: string;
}

export interface ShardBuildInput {
  /** Row-major vectors of all n rows; backed by a SharedArrayBuffer when threads > 1. */
  vectors: Float32Array;
  dim: number;
  /** The HNSW space of every shard. */
  metric: BundleMetric;
  n: number;
  k: number;
  /** Query ef of the leave-one-out pass. */
  ef: number;
  params: ShardParams;
  shards: readonly ShardPlan[];
  /**
   * 1: everything on the calling thread (yielding to the event loop between chunks).
   * More: one build thread per shard, or, for a single shard, one thread inserts and all
   * `threads` split the leave-one-out queries.
   */
  threads: number;
  onProgress: (phase: 'insert' | 'leave-one-out', done: number, total: number) => void;
  signal: AbortSignal | undefined;
}

/** Each row's k nearest other rows over all shards, nearest first (row -1 where fewer exist). */
export interface LeaveOneOut {
  rows: Int32Array;
  dist: Float64Array;
}

function aborted(): QualmError {
  return new QualmError(ErrorCodes.ABORTED, 'index build cancelled');
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A build thread with one request in flight at a time. */
class BuildThread {
  private pending: { resolve: (r: BuildReply) => void; reject: (e: Error) => void; progress: (done: number) => void } | undefined;
  private failure: Error | undefined;

  constructor(private readonly worker: Worker) {
    worker.on('message', (msg: BuildReply) => {
      const p = this.pending;
      if (p === undefined) return;
      if (msg.type === 'progress') return p.progress(msg.done);
      this.pending = undefined;
      if (msg.type === 'error') p.reject(new Error(`build thread failed: ${msg.message}`));
      else p.resolve(msg);
    });
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => this.fail(new Error(`build thread exited with code ${code}`)));
  }

  fail(err: Error): void {
    this.failure ??= err;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
  }

  request(req: BuildRequest, progress: (done: number) => void = () => undefined): Promise<BuildReply> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject, progress };
      this.worker.postMessage(req);
    });
  }

  async terminate(): Promise<void> {
    this.fail(aborted());
    await this.worker.terminate();
  }
}

/**
 * Merges per-row candidate lists (each `k1` long, nearest first) from groups of shards into
 * each row's k nearest others, dropping the row itself and padding.
 */
function mergeGroups(groups: readonly { rows: Int32Array; dist: Float32Array }[], n: number, k1: number, k: number): LeaveOneOut {
  const rows = new Int32Array(n * k).fill(-1);
  const dist = new Float64Array(n * k);
  const pos = new Int32Array(groups.length);
  for (let i = 0; i < n; i++) {
    pos.fill(0);
    let kept = 0;
    while (kept < k) {
      // The nearest unconsumed candidate over all groups (each list is sorted).
      let best = -1;
      let bestD = Infinity;
      let bestRow = -1;
      for (let g = 0; g < groups.length; g++) {
        const p = pos[g] as number;
        if (p >= k1) continue;
        const grp = groups[g] as { rows: Int32Array; dist: Float32Array };
        const r = grp.rows[i * k1 + p] as number;
        const d = grp.dist[i * k1 + p] as number;
        if (r < 0) continue;
        if (best < 0 || d < bestD || (d === bestD && r < bestRow)) {
          best = g;
          bestD = d;
          bestRow = r;
        }
      }
      if (best < 0) break;
      pos[best] = (pos[best] as number) + 1;
      if (bestRow === i) continue;
      rows[i * k + kept] = bestRow;
      dist[i * k + kept] = Math.max(0, bestD);
      kept++;
    }
  }
  return { rows, dist };
}

async function runInProcess(input: ShardBuildInput, k1: number): Promise<LeaveOneOut> {
  const { n, signal } = input;
  const work = new ShardWork(input.vectors, input.dim, input.metric);
  const total = input.shards.reduce((s, p) => s + (p.hi - p.lo), 0);
  let before = 0;
  for (const plan of input.shards) {
    const at = await work.open(input.params, plan.base, plan.hi - plan.lo);
    for (const done of work.insert(at, plan.lo, plan.hi)) {
      input.onProgress('insert', before + done, total);
      if (signal?.aborted === true) throw aborted();
      await tick();
    }
    before += plan.hi - plan.lo;
    await work.write(at, plan.out);
  }
  const rows = new Int32Array(n * k1);
  const dist = new Float32Array(n * k1);
  for (const done of work.nearest(0, n, k1, input.ef, rows, dist)) {
    input.onProgress('leave-one-out', done, n);
    if (signal?.aborted === true) throw aborted();
    await tick();
  }
  return mergeGroups([{ rows, dist }], n, k1, input.k);
}

async function runThreaded(input: ShardBuildInput, k1: number): Promise<LeaveOneOut> {
  const { n, shards } = input;
  const buffer = input.vectors.buffer;
  if (!(buffer instanceof SharedArrayBuffer)) throw new TypeError('a threaded build needs vectors in a SharedArrayBuffer');
  const data: BuildThreadData = { vectors: buffer, byteOffset: input.vectors.byteOffset, length: input.vectors.length, dim: input.dim, metric: input.metric };
  const sharded = shards.length > 1;
  const count = sharded ? shards.length : input.threads;
  const threads = Array.from({ length: count }, () => new BuildThread(spawnThread(THREAD_URL, data)));
  const onAbort = (): void => {
    for (const t of threads) void t.terminate();
  };
  input.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    // Insert: every shard in its own thread at once, or the single shard in thread 0.
    const total = shards.reduce((s, p) => s + (p.hi - p.lo), 0);
    const inserted = new Array<number>(count).fill(0);
    const report = (t: number) => (done: number) => {
      inserted[t] = done;
      input.onProgress('insert', inserted.reduce((a, b) => a + b, 0), total);
    };
    await Promise.all(
      shards.map((plan, s) =>
        (threads[s] as BuildThread).request({ type: 'build', params: input.params, base: plan.base, lo: plan.lo, hi: plan.hi, out: plan.out }, report(s)),
      ),
    );
    // Leave-one-out: sharded, each thread queries every row against its own shard and the
    // lists are merged; single-shard, the other threads read the index and each takes a slice.
    if (!sharded) {
      const out = (shards[0] as ShardPlan).out;
      await Promise.all(threads.slice(1).map((t) => t.request({ type: 'load', file: out })));
    }
    const queried = new Array<number>(count).fill(0);
    const work = sharded ? n * count : n;
    const slices = threads.map((_, t) => (sharded ? { lo: 0, hi: n } : { lo: Math.floor((t * n) / count), hi: Math.floor(((t + 1) * n) / count) }));
    const replies = await Promise.all(
      threads.map((t, i) => {
        const { lo, hi } = slices[i] as { lo: number; hi: number };
        return t.request({ type: 'nearest', lo, hi, k1, ef: input.ef }, (done) => {
          queried[i] = done;
          input.onProgress('leave-one-out', Math.floor((queried.reduce((a, b) => a + b, 0) * n) / work), n);
        });
      }),
    );
    const lists = replies.map((r) => {
      if (r.type !== 'nearest') throw new Error(`build thread answered ${r.type}`);
      return { rows: r.rows, dist: r.dist };
    });
    if (sharded) return mergeGroups(lists, n, k1, input.k);
    const rows = new Int32Array(n * k1);
    const dist = new Float32Array(n * k1);
    lists.forEach((l, i) => {
      const lo = (slices[i] as { lo: number }).lo * k1;
      rows.set(l.rows, lo);
      dist.set(l.dist, lo);
    });
    return mergeGroups([{ rows, dist }], n, k1, input.k);
  } catch (err) {
    if (input.signal?.aborted === true) throw aborted();
    throw err;
  } finally {
    input.signal?.removeEventListener('abort', onAbort);
    await Promise.all(threads.map((t) => t.terminate()));
  }
}

/**
 * Builds the HNSW shards (writing each to its `out` file) and returns every row's k nearest
 * other rows over all shards: the leave-one-out pass of each reference runs against all
 * references, whichever shard holds them.
 */
export async function buildShards(input: ShardBuildInput): Promise<LeaveOneOut> {
  if (input.signal?.aborted === true) throw aborted();
  const k1 = input.k + 1;
  return input.threads <= 1 ? runInProcess(input, k1) : runThreaded(input, k1);
}
