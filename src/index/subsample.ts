import { seededRandom } from '../util/random.js';

/**
 * How to keep a training set too large to index whole: `reservoir` keeps a uniform random
 * `size` of the rows; `stratified` keeps each label's share of the rows (largest remainder),
 * but at least `minPerLabel` of every label (all of a smaller one), so rare classes survive.
 * Unlabelled rows (-1) form a stratum of their own.
 */
export type SubsampleSpec =
  | { readonly method: 'reservoir'; readonly size: number; readonly seed: number }
  | { readonly method: 'stratified'; readonly size: number; readonly seed: number; readonly minPerLabel?: number };

/** Default minimum rows kept per label by a stratified subsample. */
export const DEFAULT_MIN_PER_LABEL = 50;

/**
 * Reservoir sampling (Algorithm R) over a stream of unknown length: offer() once per item,
 * in order; it answers the reservoir slot the item takes (replacing what was there) or -1.
 * After m offers the reservoir holds a uniform sample of min(m, size) of them.
 */
export class ReservoirSampler {
  private seen = 0;
  private readonly rnd: () => number;

  constructor(
    readonly size: number,
    seed: number,
  ) {
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`reservoir size must be a non-negative integer, got ${size}`);
    this.rnd = seededRandom(seed);
  }

  /** Items offered so far. */
  get offered(): number {
    return this.seen;
  }

  offer(): number {
    const i = this.seen++;
    if (i < this.size) return i;
    const j = Math.floor(this.rnd() * (i + 1));
    return j < this.size ? j : -1;
  }
}

/** A uniform random `size` of the rows 0..n-1 (all of them when size >= n), ascending; the same for the same seed. */
export function reservoirSample(n: number, size: number, seed: number): Int32Array {
  const sampler = new ReservoirSampler(Math.min(size, n), seed);
  const out = new Int32Array(sampler.size);
  for (let i = 0; i < n; i++) {
    const slot = sampler.offer();
    if (slot >= 0) out[slot] = i;
  }
  return out.sort();
}

/**
 * A stratified sample of `size` rows by label: first min(minPerLabel, count) rows of every
 * label, then the rest shared in proportion to each label's remaining rows (largest
 * remainder), each label's rows drawn uniformly. Ascending; the same for the same seed.
 */
export function stratifiedSample(labels: ArrayLike<number>, size: number, seed: number, minPerLabel = DEFAULT_MIN_PER_LABEL): Int32Array {
  const n = labels.length;
  if (size >= n) return Int32Array.from({ length: n }, (_, i) => i);
  const strata = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const l = labels[i] as number;
    let rows = strata.get(l);
    if (rows === undefined) strata.set(l, (rows = []));
    rows.push(i);
  }
  const keys = [...strata.keys()].sort((a, b) => a - b);
  const quota = new Map<number, number>();
  let reserved = 0;
  for (const l of keys) {
    const q = Math.min(minPerLabel, (strata.get(l) as number[]).length);
    quota.set(l, q);
    reserved += q;
  }
  if (reserved > size) {
    throw new RangeError(`a stratified sample of ${size} cannot keep ${minPerLabel} of each of ${keys.length} labels (${reserved} rows): raise the size or lower the minimum`);
  }
  // Share the rest in proportion to what each label has left, by largest remainder.
  const rest = size - reserved;
  const spare = n - reserved;
  const shares = keys.map((l) => {
    const left = (strata.get(l) as number[]).length - (quota.get(l) as number);
    const exact = spare === 0 ? 0 : (rest * left) / spare;
    return { l, whole: Math.floor(exact), frac: exact - Math.floor(exact) };
  });
  let given = shares.reduce((s, x) => s + x.whole, 0);
  for (const x of [...shares].sort((a, b) => b.frac - a.frac || a.l - b.l)) {
    if (given >= rest) break;
    x.whole++;
    given++;
  }
  const rnd = seededRandom(seed);
  const out: number[] = [];
  for (const { l, whole } of shares) {
    const rows = strata.get(l) as number[];
    const take = Math.min(rows.length, (quota.get(l) as number) + whole);
    // Partial Fisher-Yates: the first `take` of a seeded shuffle.
    for (let i = 0; i < take; i++) {
      const j = i + Math.floor(rnd() * (rows.length - i));
      const t = rows[i] as number;
      rows[i] = rows[j] as number;
      rows[j] = t;
      out.push(rows[i] as number);
    }
  }
  return Int32Array.from(out).sort();
}

/** The rows a spec keeps out of n (labels are needed for a stratified one). */
export function subsampleRows(spec: SubsampleSpec, n: number, labels: ArrayLike<number> | null): Int32Array {
  if (!Number.isInteger(spec.size) || spec.size < 1) throw new RangeError(`subsample size must be a positive integer, got ${spec.size}`);
  if (spec.method === 'reservoir') return reservoirSample(n, spec.size, spec.seed);
  if (labels === null) throw new RangeError('a stratified subsample needs labels');
  if (labels.length !== n) throw new RangeError(`labels hold ${labels.length} rows, expected ${n}`);
  return stratifiedSample(labels, spec.size, spec.seed, spec.minPerLabel ?? DEFAULT_MIN_PER_LABEL);
}
