// Fixtures for the scorer's unit tests (pure logic around a real HNSW bundle): a fake encoder
// that returns the features themselves, and a small bundle of two labelled clusters.
import { normalizeRows } from '../../src/encoder/index.js';
import { buildBundle, loadCurrentBundle, type IndexSnapshot } from '../../src/index/index.js';
import type { Embedder } from '../../src/scorer/index.js';
import { seededRandom } from '../../src/util/random.js';

export const DIM = 8;

/** A fake encoder for pure logic: the features themselves, L2-normalised; `runs` counts its ONNX-sized runs. */
export class IdentityEmbedder implements Embedder {
  readonly dim = DIM;
  readonly inputDim = DIM;
  readonly manifest: { readonly name: string; readonly version: string };
  readonly sha256 = 'e'.repeat(64);
  readonly runs: number[] = [];

  constructor(version = '0') {
    this.manifest = { name: 'identity', version };
  }

  embedAll(features: Float32Array, n: number, batch: number, between?: (done: number) => Promise<void> | void): Promise<Float32Array> {
    return (async () => {
      for (let s = 0; s < n; s += batch) {
        this.runs.push(Math.min(batch, n - s));
        await between?.(Math.min(n, s + batch));
      }
      return normalizeRows(Float32Array.from(features), DIM);
    })();
  }
}

/**
 * A bundle in `root` of n references clustered around +e0 (label "east") and +e1 (label
 * "north"), seeded; returns its loaded snapshot.
 */
export async function twoClusterBundle(root: string, opts: { readonly n: number; readonly seed: number; readonly modelVersion: string }): Promise<IndexSnapshot> {
  const rnd = seededRandom(opts.seed);
  const emb = new Float32Array(opts.n * DIM);
  const labels: number[] = [];
  for (let i = 0; i < opts.n; i++) {
    const c = i % 2;
    for (let j = 0; j < DIM; j++) emb[i * DIM + j] = (j === c ? 1 : 0) + (rnd() - 0.5) * 0.2;
    labels.push(c);
  }
  normalizeRows(emb, DIM);
  await buildBundle(root, {
    embeddings: emb,
    dim: DIM,
    ids: labels.map((_, i) => `r${i}`),
    labels,
    labelNames: ['east', 'north'],
    model: { name: 'identity', version: opts.modelVersion, sha256: 'c'.repeat(64) },
    source: {},
    k: 10,
    densityWeight: 0.5,
  });
  return loadCurrentBundle(root, { efSearch: 100 });
}
