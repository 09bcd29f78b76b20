import { seededRandom } from '../util/random.js';

/**
 * Paired bootstrap over test points of the difference between two uncertainty scores in
 * error AUROC, AURC and Kendall tau-b against the same 0/1 error. Each resample draws n test
 * points with replacement (seeded), and both scores are measured on the same draw, so the
 * interval is that of the difference, not of two independent estimates.
 *
 * A draw is a vector of counts over the original points; each score is sorted once and a
 * resample's metric is computed from per-tie-group weighted sums in O(n), with the same tie
 * conventions as rank-metrics.ts (AUROC: ties count one half; tau-b: the tie corrections of
 * the drawn copies) and risk-coverage.ts (a tied group contributes its mean loss per position).
 */

/** The metrics the bootstrap compares. */
export const BOOTSTRAP_METRICS = ['auroc', 'aurc', 'kendall_tau'] as const;
export type BootstrapMetric = (typeof BOOTSTRAP_METRICS)[number];

export interface BootstrapOptions {
  /** Number of resamples (default 1000). */
  readonly resamples?: number;
  /** Seed of the draws (default 1). */
  readonly seed?: number;
}

export const DEFAULT_BOOTSTRAP = { resamples: 1000, seed: 1 } as const;

/** One metric's difference a − b on the full test set and its percentile 95% interval. */
export interface BootstrapDelta {
  readonly delta: number;
  readonly ci95: readonly [number, number];
}

export type PairedBootstrap = Readonly<Record<BootstrapMetric, BootstrapDelta>>;

/** A score sorted once: row order ascending and the tie group of each sorted position. */
interface SortedScore {
  readonly order: Int32Array;
  /** Tie-group index per sorted position, 0-based and non-decreasing. */
  readonly group: Int32Array;
  readonly groups: number;
}

function sortScore(u: ArrayLike<number>): SortedScore {
  const n = u.length;
  const order = Int32Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => (u[a] as number) - (u[b] as number) || a - b);
  const group = new Int32Array(n);
  let g = 0;
  for (let i = 1; i < n; i++) {
    if (u[order[i] as number] !== u[order[i - 1] as number]) g++;
    group[i] = g;
  }
  return { order, group, groups: n === 0 ? 0 : g + 1 };
}

/** The three metrics of one sorted score under per-point counts (weights). */
function weightedMetrics(s: SortedScore, error01: ArrayLike<number>, counts: ArrayLike<number>, pos: Float64Array, neg: Float64Array): Record<BootstrapMetric, number> {
  pos.fill(0, 0, s.groups);
  neg.fill(0, 0, s.groups);
  const n = s.order.length;
  for (let i = 0; i < n; i++) {
    const r = s.order[i] as number;
    const c = counts[r] as number;
    if (c === 0) continue;
    const g = s.group[i] as number;
    if ((error01[r] as number) > 0) pos[g] = (pos[g] as number) + c;
    else neg[g] = (neg[g] as number) + c;
  }
  let negBelow = 0;
  let posBelow = 0;
  let above = 0; // sum over error copies of non-errors strictly below, plus half the tied ones
  let signed = 0; // concordant minus discordant pairs
  let tiedX = 0;
  let cum = 0;
  let position = 0;
  let area = 0;
  for (let g = 0; g < s.groups; g++) {
    const p = pos[g] as number;
    const q = neg[g] as number;
    const w = p + q;
    if (w === 0) continue;
    above += p * negBelow + 0.5 * p * q;
    signed += p * negBelow - q * posBelow;
    tiedX += (w * (w - 1)) / 2;
    const mean = p / w;
    for (let t = 0; t < w; t++) {
      cum += mean;
      position++;
      area += cum / position;
    }
    negBelow += q;
    posBelow += p;
  }
  const P = posBelow;
  const N = negBelow;
  const W = P + N;
  const pairs = (W * (W - 1)) / 2;
  const tiedY = (P * (P - 1)) / 2 + (N * (N - 1)) / 2;
  const den = Math.sqrt((pairs - tiedX) * (pairs - tiedY));
  return {
    auroc: P === 0 || N === 0 ? NaN : above / (P * N),
    aurc: W === 0 ? NaN : area / W,
    kendall_tau: den > 0 ? signed / den : NaN,
  };
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return (sorted[lo] as number) + (at - lo) * ((sorted[hi] as number) - (sorted[lo] as number));
}

/** The metrics of one score on the full set (all counts 1), with the bootstrap's tie conventions. */
export function unweightedMetrics(u: ArrayLike<number>, error01: ArrayLike<number>): Record<BootstrapMetric, number> {
  const s = sortScore(u);
  return weightedMetrics(s, error01, new Float64Array(u.length).fill(1), new Float64Array(s.groups), new Float64Array(s.groups));
}

/**
 * a − b in AUROC, AURC and Kendall tau-b (both oriented as uncertainty), on the full set, with
 * percentile 95% intervals from a paired bootstrap over the points. Resamples in which a
 * metric is undefined (no error or no correct point drawn) are left out of its interval.
 */
export function pairedBootstrap(a: ArrayLike<number>, b: ArrayLike<number>, error01: ArrayLike<number>, opts: BootstrapOptions = {}): PairedBootstrap {
  const n = error01.length;
  if (a.length !== n || b.length !== n) throw new RangeError(`pairedBootstrap: ${a.length} and ${b.length} scores for ${n} errors`);
  if (n === 0) throw new RangeError('pairedBootstrap needs at least one point');
  const resamples = opts.resamples ?? DEFAULT_BOOTSTRAP.resamples;
  if (!Number.isInteger(resamples) || resamples < 1) throw new RangeError(`pairedBootstrap: resamples must be a positive integer, got ${resamples}`);
  const sa = sortScore(a);
  const sb = sortScore(b);
  const bufA = [new Float64Array(sa.groups), new Float64Array(sa.groups)] as const;
  const bufB = [new Float64Array(sb.groups), new Float64Array(sb.groups)] as const;
  const ones = new Float64Array(n).fill(1);
  const fullA = weightedMetrics(sa, error01, ones, bufA[0], bufA[1]);
  const fullB = weightedMetrics(sb, error01, ones, bufB[0], bufB[1]);
  const draws: Record<BootstrapMetric, number[]> = { auroc: [], aurc: [], kendall_tau: [] };
  const rand = seededRandom(opts.seed ?? DEFAULT_BOOTSTRAP.seed);
  const counts = new Float64Array(n);
  for (let r = 0; r < resamples; r++) {
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const j = Math.floor(rand() * n);
      counts[j] = (counts[j] as number) + 1;
    }
    const ma = weightedMetrics(sa, error01, counts, bufA[0], bufA[1]);
    const mb = weightedMetrics(sb, error01, counts, bufB[0], bufB[1]);
    for (const m of BOOTSTRAP_METRICS) {
      const d = ma[m] - mb[m];
      if (Number.isFinite(d)) draws[m].push(d);
    }
  }
  const out = {} as Record<BootstrapMetric, BootstrapDelta>;
  for (const m of BOOTSTRAP_METRICS) {
    const sorted = Float64Array.from(draws[m]).sort();
    out[m] = { delta: fullA[m] - fullB[m], ci95: [percentile(sorted, 0.025), percentile(sorted, 0.975)] };
  }
  return out;
}
