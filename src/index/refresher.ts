import { describeError } from '../errors.js';
import { loadBundle, readPointer, type LoadOptions } from './loader.js';
import type { IndexSnapshot } from './snapshot.js';

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
  random?: () => number;
}

/**
 * Follows a bundle directory's CURRENT pointer. A new version is loaded and verified beside
 * the one being served, then swapped in as a whole: searches never see a half-loaded index,
 * and a batch keeps the snapshot it started with. A version that fails verification is
 * refused and remembered (not retried until the pointer names another), and the previous
 * snapshot keeps serving.
 */
export class BundleRefresher {
  private snapshot: IndexSnapshot;
  private readonly refused = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<RefreshOutcome> | undefined;
  private stopped = false;

  constructor(
    private readonly bundleDir: string,
    initial: IndexSnapshot,
    private readonly opts: RefresherOptions,
  ) {
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
      const version = await readPointer(this.bundleDir);
      if (version === undefined || version === this.snapshot.version) {
        return { kind: 'unchanged', version: this.snapshot.version };
      }
      if (this.refused.has(version)) {
        return { kind: 'unchanged', version: this.snapshot.version };
      }
      const t0 = Date.now();
      try {
        const next = await loadBundle(this.bundleDir, version, this.opts.load);
        if (next.dim !== this.snapshot.dim) throw new Error(`dimension ${next.dim} differs from the served ${this.snapshot.dim}`);
        const from = this.snapshot.version;
        if (this.stopped) return { kind: 'skipped', version, reason: 'refresher stopped' };
        this.snapshot = next;
        outcome = { kind: 'swapped', from, to: version, loadMs: Date.now() - t0 };
      } catch (err) {
        this.refused.add(version);
        outcome = { kind: 'refused', version, reason: describeError(err) };
      }
    } catch (err) {
      outcome = { kind: 'error', reason: describeError(err) };
    }
    this.opts.onOutcome?.(outcome);
    return outcome;
  }

  /** Stops polling; waits for a check in progress. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.checking?.catch(() => undefined);
  }
}
