/**
 * A stream-level test for covariate shift. Some shifts move samples into regions the
 * references do cover, only more often than the references do: Fashion-MNIST images
 * rotated by 90 degrees sit among trousers and bags, so few of them lie beyond any per-sample
 * cut, yet the probe gets 95% of them wrong. One sample cannot show that; a run of them can.
 *
 * The window holds the last `capacity` out-of-distribution percentiles (policy.ts
 * oodPercentileOf). On in-distribution traffic each is a percentile of the references, at
 * most uniform on [0, 1] (mean 1/2, variance 1/12; the combined one is smaller still), so
 * the window mean of `capacity` independent samples stays below
 * 1/2 + z / sqrt(12 capacity) but for a share of about Φ(−z) of windows (z = 5: 3e-7). That
 * bound alone trips on shifts too mild to matter (a slight blur the probe still gets 79%
 * right, on Fashion-MNIST) and on a stream of one sparse class, so the window also needs a
 * mean of at least SHIFT_MIN_MEAN: three quarters of the references lie less far out than
 * the average recent sample. Once the window is full and its mean is above both, the
 * stream is shifted.
 */
export const SHIFT_WINDOW_Z = 5;
/** The smallest window mean that counts as shifted, whatever the window length. */
export const SHIFT_MIN_MEAN = 0.75;

export class ShiftWindow {
  private readonly ring: Float64Array;
  private next = 0;
  private filled = 0;
  private sum = 0;
  /** The window mean above which the stream counts as shifted. */
  readonly threshold: number;

  constructor(
    readonly capacity: number,
    readonly z = SHIFT_WINDOW_Z,
  ) {
    if (!Number.isInteger(capacity) || capacity < 2) throw new RangeError('shift window capacity must be an integer of at least 2');
    if (!(z > 0)) throw new RangeError('shift window z must be positive');
    this.ring = new Float64Array(capacity);
    this.threshold = Math.max(SHIFT_MIN_MEAN, 0.5 + z / Math.sqrt(12 * capacity));
  }

  get size(): number {
    return this.filled;
  }

  /** Mean of the held percentiles (NaN while empty). */
  get mean(): number {
    return this.filled === 0 ? NaN : this.sum / this.filled;
  }

  /** Records one sample's out-of-distribution percentile (in [0, 1]). */
  observe(percentile: number): void {
    if (!(percentile >= 0 && percentile <= 1)) throw new RangeError(`an out-of-distribution percentile must be in [0, 1], got ${percentile}`);
    if (this.filled === this.capacity) this.sum -= this.ring[this.next] as number;
    else this.filled++;
    this.ring[this.next] = percentile;
    this.sum += percentile;
    this.next = (this.next + 1) % this.capacity;
  }

  /** True when the window is full and its mean is above `threshold`. */
  get shifted(): boolean {
    return this.filled === this.capacity && this.sum / this.filled > this.threshold;
  }
}
