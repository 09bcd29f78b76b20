import { ErrorCodes, describeError, isQualmError } from '../errors.js';
import { loadBundle, type LoadOptions } from './loader.js';
import type { IndexSnapshot } from './snapshot.js';
import { LocalBundleStore, type BundleStore } from './store.js';

export type RefreshOutcome =
  | { readonly kind: 'unchanged'; readonly version: string }
  | { readonly kind: 'swapped'; readonly from: string; readonly to: string; readonly loadMs: number }
  | { readonly kind: 'refused'; readonly version: string; readonly reason: string }
  | { readonly kind: 'skipped'; readonly version: string; readonly reason: string }
  | { readonly kind: 'error'; readonly reason: string };

export interface RefresherOptions {
  /** Poll period; each wait is this plus up to `jitter` of it, so that many workers spread out. */
  intervalMs: number;
  /** Share of the interval added at random, in [0, 1]. */
  jitter?: number;
  load: LoadOptions;
  /** Called with every outcome except `unchanged` (for logs and metrics). */
  onOutcome?: (outcome: RefreshOutcome) => void;
  /**
   * Runs on a verified version just before it is swapped in (the worker opens it in its search
   * thread here, so that the first search of the new version does not wait). Must not throw.
   */
  prepare?: (next: IndexSnapshot) => Promise<void>;
  random?: () => number;
}

/**
 * Follows a bundle store's pointer (a local directory's CURRENT, or an HTTP store's). A new
 * version is fetched into local disk, loaded and verified beside the one being served, then
 * swapped in as a whole: searches never see a half-loaded index, and a batch keeps the
 * snapshot it started with. A version that fails verification is refused and remembered (not
 * retried until the pointer names another), and the previous snapshot keeps serving. A
 * version that could not be fetched (store unreachable) is an `error`, tried again next poll.
 */
export class BundleRefresher {
  private snapshot: IndexSnapshot;
  private readonly refused = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<RefreshOutcome> | undefined;
  private stopped = false;
  private readonly store: BundleStore;
  private readonly abort = new AbortController();

  /** `store`: a BundleStore, or a bundle directory (a LocalBundleStore over it). */
  constructor(
    store: BundleStore | string,
    initial: IndexSnapshot,
    private readonly opts: RefresherOptions,
  ) {
    this.store = typeof store === 'string' ? new LocalBundleStore(store) : store;
    this.snapshot = initial;
  }

  /** The snapshot to search now. */
  current(): IndexSnapshot {
    return this.snapshot;
  }

  /** Starts polling (no-op with intervalMs <= 0). */
  start(): void {
    if (this.opts.intervalMs <= 0 || this.stopped) return;
    this.schedule();
  }

  private schedule(): void {
    const jitter = Math.min(1, Math.max(0, this.opts.jitter ?? 0.2));
    const wait = this.opts.intervalMs * (1 + jitter * (this.opts.random ?? Math.random)());
    this.timer = setTimeout(() => {
      void this.check().finally(() => {
        if (!this.stopped) this.schedule();
      });
    }, wait);
    this.timer.unref();
  }

  /** Checks the pointer once (concurrent calls share one check). */
  check(): Promise<RefreshOutcome> {
    this.checking ??= this.checkOnce().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async checkOnce(): Promise<RefreshOutcome> {
    let outcome: RefreshOutcome;
    try {
      const version = await this.store.readPointer(this.abort.signal);
      if (version === undefined || version === this.snapshot.version || this.refused.has(version)) {
        return { kind: 'unchanged', version: this.snapshot.version };
      }
      outcome = await this.fetchAndLoad(version);
      if (outcome.kind === 'skipped') return outcome;
    } catch (err) {
      if (this.stopped && isQualmError(err) && err.code === ErrorCodes.ABORTED) {
        return { kind: 'skipped', version: this.snapshot.version, reason: 'refresher stopped' };
      }
      outcome = { kind: 'error', reason: describeError(err) };
    }
    if (outcome.kind === 'swapped') await this.store.served(outcome.to);
    this.opts.onOutcome?.(outcome);
    return outcome;
  }

  /** Brings `version` to local disk, loads and verifies it, and swaps it in; throws when the store could not be read. */
  private async fetchAndLoad(version: string): Promise<RefreshOutcome> {
    const t0 = Date.now();
    let root: string;
    try {
      root = await this.store.materialize(version, this.abort.signal);
    } catch (err) {
      // A bad copy in the store is refused; a store we could not reach is tried again next poll.
      if (!isQualmError(err) || err.code !== ErrorCodes.BUNDLE_INVALID) throw err;
      this.refused.add(version);
      return { kind: 'refused', version, reason: describeError(err) };
    }
    try {
      const next = await loadBundle(root, version, this.opts.load);
      if (next.dim !== this.snapshot.dim) throw new Error(`dimension ${next.dim} differs from the served ${this.snapshot.dim}`);
      await this.opts.prepare?.(next);
      const from = this.snapshot.version;
      if (this.stopped) return { kind: 'skipped', version, reason: 'refresher stopped' };
      this.snapshot = next;
      return { kind: 'swapped', from, to: version, loadMs: Date.now() - t0 };
    } catch (err) {
      this.refused.add(version);
      return { kind: 'refused', version, reason: describeError(err) };
    }
  }

  /** Stops polling; waits for a check in progress. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.checking?.catch(() => undefined);
  }
}
