import type { GaussianParams } from './types.js';

/**
 * The bytes of GAUSSIAN_FILE, in one place for the builder that writes it and the loader
 * that reads it: float64 LE, the within-class Cholesky factor (dim²), the whitened class
 * means (classes × dim), the global factor (dim²), the whitened global mean (dim).
 */
function layout(g: Pick<GaussianParams, 'dim' | 'classes'>): number[] {
  return [g.dim * g.dim, g.classes * g.dim, g.dim * g.dim, g.dim];
}

export function encodeGaussian(g: GaussianParams): Buffer {
  const parts = [g.classFactor, g.classMeans, g.globalFactor, g.globalMean];
  const sizes = layout(g);
  parts.forEach((p, i) => {
    if (p.length !== sizes[i]) throw new RangeError(`gaussian part ${i} holds ${p.length} values, expected ${sizes[i]}`);
  });
  const buf = Buffer.alloc(sizes.reduce((a, b) => a + b, 0) * 8);
  let off = 0;
  for (const p of parts) for (const v of p) off = buf.writeDoubleLE(v, off);
  return buf;
}

/** The parameters in `raw`, or a sentence saying why they are not valid (size, a non-finite value, a non-positive factor diagonal). */
export function decodeGaussian(raw: Buffer, dim: number, classes: number): GaussianParams | string {
  const sizes = layout({ dim, classes });
  const want = sizes.reduce((a, b) => a + b, 0) * 8;
  if (raw.length !== want) return `holds ${raw.length} bytes, expected ${want}`;
  const parts: Float64Array[] = [];
  let off = 0;
  for (const size of sizes) {
    const part = new Float64Array(size);
    for (let i = 0; i < size; i++, off += 8) {
      const v = raw.readDoubleLE(off);
      if (!Number.isFinite(v)) return `holds a non-finite value at byte ${off}`;
      part[i] = v;
    }
    parts.push(part);
  }
  const [classFactor, classMeans, globalFactor, globalMean] = parts as [Float64Array, Float64Array, Float64Array, Float64Array];
  for (let i = 0; i < dim; i++) {
    if (!((classFactor[i * dim + i] as number) > 0 && (globalFactor[i * dim + i] as number) > 0)) return `a Cholesky factor has a non-positive diagonal at ${i}`;
  }
  return { dim, classes, classFactor, classMeans, globalFactor, globalMean };
}
