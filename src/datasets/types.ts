/** A labelled image set: n rows of `dim` pixel values in [0, 1], row-major. */
export interface ImageSet {
  readonly name: string;
  readonly n: number;
  readonly dim: number;
  readonly pixels: Float32Array;
  readonly labels: Uint8Array;
  readonly labelNames: readonly string[];
  /** Where the data was read from. */
  readonly origin: string;
}

/** Row i of a set, as a view (no copy). */
export function row(set: ImageSet, i: number): Float32Array {
  return set.pixels.subarray(i * set.dim, (i + 1) * set.dim);
}
