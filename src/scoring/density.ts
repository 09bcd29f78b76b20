/** Arithmetic mean of distances; 0 for an empty list. */
export function meanDistance(distances: readonly number[]): number {
  if (distances.length === 0) return 0;
  let sum = 0;
  for (const d of distances) sum += d;
  return sum / distances.length;
}

/**
 * Where `value` falls in a distribution given by its ascending quantiles at evenly spaced
 * probabilities 0, 1/(n-1), ..., 1: the interpolated CDF, in [0, 1]. Below the smallest
 * quantile gives 0, above the largest gives 1; ties spread over their probability range
 * and take its middle.
 */
export function percentileRank(value: number, quantiles: readonly number[]): number {
  const n = quantiles.length;
  if (n === 0) throw new RangeError('percentileRank needs at least one quantile');
  const first = quantiles[0] as number;
  const last = quantiles[n - 1] as number;
  if (n === 1) return value < first ? 0 : value > first ? 1 : 0.5;
  if (value < first) return 0;
  if (value > last) return 1;
  // lo = first index with q >= value, hi = first index with q > value.
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((quantiles[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  let end = lo;
  while (end < n && (quantiles[end] as number) === value) end++;
  const step = 1 / (n - 1);
  if (end > lo) {
    // value equals quantiles[lo..end-1]: the CDF is flat across that range.
    return ((lo + end - 1) / 2) * step;
  }
  const a = quantiles[lo - 1] as number;
  const b = quantiles[lo] as number;
  return (lo - 1 + (value - a) / (b - a)) * step;
}
