import type { Worker } from 'node:worker_threads';
import { spawnThread, threadUrl } from '../util/spawn-thread.js';
import type { SearchReply, SearchRequest } from './search-protocol.js';
import type { IndexSnapshot } from './snapshot.js';
import type { Neighbors } from './types.js';

const THREAD_URL = threadUrl(import.meta.url, 'search-thread');

interface Pending {
  resolve: (r: Extract<SearchReply, { type: 'found' }>) => void;
  reject: (e: Error) => void;
}

/**
 * kNN search of the served snapshot on a thread of its own (src/index/search-thread.ts),
 * which opens its own read-only copy of the snapshot's shard files: the main thread then
 * keeps only the ids, labels and radii lookups. `open(snapshot)` before a snapshot is served
 * (the refresher calls it before it swaps); `search` answers with the same neighbours as
 * `snapshot.search`, nearest first. A snapshot the thread has not opened (or a thread that
 * died) is searched on the calling thread instead, so a search never fails for it.
 */
export class SearchThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private readonly opening = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  private readonly open_ = new Set<string>();
  private nextId = 1;
  private failure: Error | undefined;
  private closed = false;

  constructor() {
    this.worker = spawnThread(THREAD_URL, null);
    this.worker.on('message', (msg: SearchReply) => this.onReply(msg));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`search thread exited with code ${code}`)));
  }

  private onReply(msg: SearchReply): void {
    if (msg.type === 'loaded' || msg.type === 'load-failed') {
      const o = this.opening.get(msg.version);
      this.opening.delete(msg.version);
      if (msg.type === 'loaded') {
        this.open_.add(msg.version);
        o?.resolve();
      } else o?.reject(new Error(`the search thread cannot open bundle ${msg.version}: ${msg.message}`));
      return;
    }
    const p = this.pending.get(msg.id);
    if (p === undefined) return;
    this.pending.delete(msg.id);
    if (msg.type === 'error') p.reject(new Error(`search thread: ${msg.message}`));
    else p.resolve(msg);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const o of this.opening.values()) o.reject(err);
    this.opening.clear();
    this.open_.clear();
  }

  private post(req: SearchRequest, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(req, transfer);
  }

  /** True when searches of `snapshot` run on the thread. */
  serves(snapshot: IndexSnapshot): boolean {
    return this.failure === undefined && this.open_.has(snapshot.version);
  }

  /** Opens `snapshot`'s shard files in the thread; resolves once it answers queries on them. */
  open(snapshot: IndexSnapshot): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.open_.has(snapshot.version)) return Promise.resolve();
    if (snapshot.shardPaths.length !== snapshot.shards) return Promise.reject(new Error(`bundle ${snapshot.version} does not say where its shard files are`));
    return new Promise((resolve, reject) => {
      this.opening.set(snapshot.version, { resolve, reject });
      this.post({ type: 'load', version: snapshot.version, files: snapshot.shardPaths, metric: snapshot.manifest.metric, dim: snapshot.dim, ef: snapshot.efSearch });
    });
  }

  /** Frees the thread's copy of every version but `keep`. */
  retain(keep: IndexSnapshot): void {
    for (const v of [...this.open_]) {
      if (v === keep.version) continue;
      this.open_.delete(v);
      this.post({ type: 'drop', version: v });
    }
  }

  /**
   * The neighbours of each vector (null stays null), as `snapshot.search` gives them.
   * The vectors are copied into one buffer that moves to the thread.
   */
  async search(snapshot: IndexSnapshot, vectors: readonly (Float32Array | null)[], k: number = snapshot.stats.k): Promise<(Neighbors | null)[]> {
    const idx: number[] = [];
    vectors.forEach((v, i) => {
      if (v !== null) idx.push(i);
    });
    const out: (Neighbors | null)[] = vectors.map(() => null);
    if (idx.length === 0) return out;
    if (!this.serves(snapshot)) {
      for (const i of idx) out[i] = snapshot.search(vectors[i] as Float32Array, k);
      return out;
    }
    const dim = snapshot.dim;
    const data = new Float32Array(idx.length * dim);
    idx.forEach((i, r) => data.set(vectors[i] as Float32Array, r * dim));
    const id = this.nextId++;
    const found = await new Promise<Extract<SearchReply, { type: 'found' }>>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.post({ type: 'search', id, version: snapshot.version, k, n: idx.length, data }, [data.buffer]);
    });
    const m = found.m;
    idx.forEach((i, r) => {
      out[i] = snapshot.neighborsOf(found.rows.subarray(r * m, (r + 1) * m), found.dist.subarray(r * m, (r + 1) * m));
    });
    return out;
  }

  /** Stops the thread; later searches run on the calling thread. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.worker.removeAllListeners('exit');
    this.fail(new Error('search thread closed'));
    await this.worker.terminate();
  }
}
