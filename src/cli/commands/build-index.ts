import type { Config } from '../../config/index.js';
import { loadFashionMnist } from '../../datasets/index.js';
import { OnnxEncoder } from '../../encoder/index.js';
import { buildBundle, pruneBundles, type BuildResult } from '../../index/index.js';
import { referenceScorer } from '../../scoring/index.js';
import { intFlag, parseFlags } from '../args.js';
import { Progress } from '../progress.js';

export const HELP = `qualm build-index: embed a labelled reference set and write a new reference bundle

Usage: qualm build-index [--limit N] [--k K] [--batch B]

Embeds the Fashion-MNIST training split (the Debian package, $QUALM_FASHION_MNIST_DIR, or the
committed slice) with the model at QUALM_MODEL_PATH, builds a cosine HNSW index, computes the
references' leave-one-out kNN distance quantiles, writes an immutable bundle under
QUALM_BUNDLE_DIR and moves its CURRENT pointer last, then deletes versions beyond the newest
QUALM_BUNDLE_RETAIN. Prints the bundle as JSON on stdout.

Options:
  --limit N   use the first N references (default: all)
  --k K       neighbours per query, stored in the bundle (default: QUALM_K)
  --batch B   ONNX batch size while embedding (default: 512)
  -h, --help  this text`;

export interface BuildIndexOptions {
  limit?: number;
  k: number;
  batch: number;
  signal?: AbortSignal;
  progress?: Progress;
}

/** Embeds Fashion-MNIST train with the configured encoder and writes a bundle. */
export async function buildFashionMnistBundle(config: Config, opts: BuildIndexOptions): Promise<BuildResult> {
  const progress = opts.progress ?? new Progress();
  const train = loadFashionMnist('train');
  const n = Math.min(opts.limit ?? train.n, train.n);
  const encoder = await OnnxEncoder.open(config.modelPath, { intraOpThreads: config.intraOpThreads });
  try {
    const pixels = train.pixels.subarray(0, n * train.dim);
    const embeddings = await encoder.embedAll(pixels, n, opts.batch, (done) => {
      progress.update('embed', done, n);
      if (opts.signal?.aborted === true) throw new Error('build-index cancelled');
    });
    progress.next();
    let phase = '';
    return await buildBundle(
      config.bundleDir,
      {
        embeddings,
        dim: encoder.dim,
        ids: Array.from({ length: n }, (_, i) => `${train.name}#${i}`),
        labels: Array.from(train.labels.subarray(0, n)),
        labelNames: train.labelNames,
        model: { name: encoder.manifest.name, version: encoder.manifest.version, sha256: encoder.sha256 },
        source: { dataset: train.name, origin: train.origin, count: n },
        k: opts.k,
        densityWeight: config.densityWeight,
        referenceScore: referenceScorer({ densityWeight: config.densityWeight, numLabels: train.labelNames.length }),
        efSearch: config.efSearch,
      },
      {
        onProgress: (p, done, total) => {
          if (p !== phase) progress.next();
          phase = p;
          progress.update(p, done, total);
        },
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      },
    );
  } finally {
    await encoder.close();
  }
}

export async function run(argv: string[], config: Config): Promise<number> {
  const { values } = parseFlags(argv, { limit: { type: 'string' }, k: { type: 'string' }, batch: { type: 'string' } });
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const limit = values.limit === undefined ? undefined : intFlag('limit', values.limit, 0, 2);
    const t0 = Date.now();
    const res = await buildFashionMnistBundle(config, {
      ...(limit === undefined ? {} : { limit }),
      k: intFlag('k', values.k, config.k, 1),
      batch: intFlag('batch', values.batch, 512, 1),
      signal: ac.signal,
    });
    const pruned = await pruneBundles(config.bundleDir, config.bundleRetain);
    const m = res.manifest;
    console.log(
      JSON.stringify({
        version: res.version,
        dir: res.dir,
        count: m.count,
        dim: m.model.dim,
        k: m.reference_stats.k,
        model_sha256: m.model.sha256,
        loo_mean_knn_median: m.reference_stats.loo_mean_knn_quantiles[500],
        pruned,
        seconds: (Date.now() - t0) / 1000,
      }),
    );
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
