/**
 * The last `capacity` values of a stream, kept both in arrival order (to evict the oldest)
 * and sorted (for quantiles and tail shares). Push is O(capacity) through the array splice,
 * which for windows of a few thousand is far below the cost of scoring one sample.
 */
export class SortedWindow {
  private readonly ring: Float64Array;
  private readonly sorted: number[] = [];
  private next = 0;
  private filled = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('window capacity must be a positive integer');
    this.ring = new Float64Array(capacity);
  }

  /** Values currently held (at most `capacity`). */
  get size(): number {
    return this.filled;
  }

  push(value: number): void {
    if (Number.isNaN(value)) throw new RangeError('window values must not be NaN');
    if (this.filled === this.capacity) {
      const old = this.ring[this.next] as number;
      this.sorted.splice(lowerBound(this.sorted, old), 1);
    } else {
      this.filled++;
    }
    this.ring[this.next] = value;
    this.next = (this.next + 1) % this.capacity;
    this.sorted.splice(lowerBound(this.sorted, value), 0, value);
  }

  /**
   * The empirical p-quantile (lower, no interpolation): the value at rank floor(p * size),
   * clamped to the largest. Undefined while the window is empty.
   */
  quantile(p: number): number | undefined {
    if (this.filled === 0) return undefined;
    return this.sorted[Math.min(this.filled - 1, Math.floor(p * this.filled))];
  }

  /** Share of the held values that are at or above `cut`; 0 for an empty window. */
  shareAtLeast(cut: number): number {
    if (this.filled === 0) return 0;
    return (this.filled - lowerBound(this.sorted, cut)) / this.filled;
  }
}

/** First index i with a[i] >= v (a ascending). */
function lowerBound(a: readonly number[], v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
