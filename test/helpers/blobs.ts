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

/** The small, fast evaluation settings the blob tests run `evaluateEmbeddings` with (4 classes). */
export const BLOB_EVAL_SETTINGS = {
  setup: 'blobs',
  labelNames: ['0', '1', '2', '3'],
  k: 10,
  densityWeight: 0.9,
  efSearch: 50,
  probe: { epochs: 5, batchSize: 64, learningRate: 0.05, weightDecay: 1e-4, seed: 1 },
  gmm: { components: 4, maxIter: 20, tol: 1e-4, varianceFloor: 1e-6, kmeansIter: 5, seed: 1 },
  // A fifth of the references held out: enough for these tests' fit (build-index asks for 200).
  combinationFit: { minHeldOut: 100 },
} as const;
