// Real bundles for integration tests: the committed encoder over the Fashion-MNIST slice.
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SLICE_FASHION_MNIST_DIR, loadFashionMnist } from '../../src/datasets/index.js';
import { OnnxEncoder } from '../../src/encoder/index.js';
import { buildBundle, movePointer } from '../../src/index/index.js';
import { referenceScorer } from '../../src/scoring/index.js';

/** The slice's training images embedded by one encoder, ready to build bundles from. */
export interface SliceRefs {
  readonly emb: Float32Array;
  readonly labels: readonly number[];
  readonly labelNames: readonly string[];
  readonly dim: number;
  readonly count: number;
  readonly model: { readonly name: string; readonly version: string; readonly sha256: string };
}

/** Embeds the slice's training images (6000) with the encoder at `modelPath`. */
export async function embedSlice(modelPath: string): Promise<SliceRefs> {
  const train = loadFashionMnist('train', [SLICE_FASHION_MNIST_DIR]);
  const n = train.n;
  const encoder = await OnnxEncoder.open(modelPath);
  try {
    return {
      emb: await encoder.embedAll(train.pixels.subarray(0, n * 784), n, 500),
      labels: Array.from(train.labels.subarray(0, n)),
      labelNames: train.labelNames,
      dim: encoder.dim,
      count: n,
      model: { name: encoder.manifest.name, version: encoder.manifest.version, sha256: encoder.sha256 },
    };
  } finally {
    await encoder.close();
  }
}

export interface SliceBundleOptions {
  readonly densityWeight: number;
  readonly version?: string;
  /** The encoder the manifest names; another sha256 makes a bundle the worker must refuse. */
  readonly model?: SliceRefs['model'];
}

/** Builds a real bundle over references [from, to) into `dir` and moves its pointer; returns the version. */
export async function buildSliceBundle(refs: SliceRefs, dir: string, from: number, to: number, opts: SliceBundleOptions): Promise<string> {
  const res = await buildBundle(
    dir,
    {
      embeddings: refs.emb.subarray(from * refs.dim, to * refs.dim),
      dim: refs.dim,
      ids: Array.from({ length: to - from }, (_, i) => `fm-train#${from + i}`),
      labels: refs.labels.slice(from, to),
      labelNames: refs.labelNames,
      model: opts.model ?? refs.model,
      source: { test: 'integration', from, to },
      k: 20,
      densityWeight: opts.densityWeight,
      referenceScore: referenceScorer({ densityWeight: opts.densityWeight, numLabels: refs.labelNames.length }),
    },
    opts.version === undefined ? {} : { version: opts.version },
  );
  return res.version;
}

/**
 * Publishes a bundle with a bad checksum into `live`: built in `staging`, one reference id
 * altered after the manifest was written, the directory moved in whole, then the pointer.
 */
export async function publishCorruptBundle(refs: SliceRefs, live: string, staging: string, version: string, densityWeight: number): Promise<void> {
  await buildSliceBundle(refs, staging, 0, 1000, { version, densityWeight });
  const ids = join(staging, version, 'ids.json');
  writeFileSync(ids, readFileSync(ids, 'utf8').replace('fm-train#5"', 'fm-train#X"'));
  cpSync(join(staging, version), join(live, version), { recursive: true });
  await movePointer(live, version);
}
