import { normalizeRows } from '../../src/encoder/index.js';

/**
 * Unit rows of `dim` values around class centres, row i in class i mod centres; `spread`
 * blurs the classes, `shift` moves every row along the first axis (an OOD or shifted set).
 */
export function blobs(n: number, centres: readonly Float32Array[], spread: number, rnd: () => number, shift = 0, dim = centres[0]?.length ?? 0): { x: Float32Array; y: Uint8Array } {
  const x = new Float32Array(n * dim);
  const y = new Uint8Array(n);
  const g = (): number => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  for (let i = 0; i < n; i++) {
    const c = i % centres.length;
    y[i] = c;
    for (let d = 0; d < dim; d++) x[i * dim + d] = ((centres[c] as Float32Array)[d] as number) + spread * g() + (d === 0 ? shift : 0);
  }
  return { x: normalizeRows(x, dim), y };
}
