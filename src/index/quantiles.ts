/**
 * Empirical quantiles of `values` at `count` evenly spaced probabilities 0..1 (type-7,
 * linear interpolation between order statistics), ascending.
 */
export function empiricalQuantiles(values: ArrayLike<number>, count: number): number[] {
  if (values.length === 0) throw new RangeError('empiricalQuantiles needs at least one value');
  if (!Number.isInteger(count) || count < 2) throw new RangeError('count must be an integer >= 2');
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const h = (i / (count - 1)) * (n - 1);
    const lo = Math.floor(h);
    const hi = Math.min(n - 1, lo + 1);
    const a = sorted[lo] as number;
    const b = sorted[hi] as number;
    out.push(a + (h - lo) * (b - a));
  }
  return out;
}
