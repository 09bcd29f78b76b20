import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../../config/index.js';
import type { LabelRecord } from '../../contracts/index.js';
import { parseLabelRecord } from '../../contracts/index.js';
import { loadFashionMnist } from '../../datasets/index.js';
import { OnnxEncoder } from '../../encoder/index.js';
import { ErrorCodes, QualmError } from '../../errors.js';
import {
  IDS_FILE,
  MANIFEST_FILE,
  buildBundle,
  checkManifest,
  pruneBundles,
  readPointer,
  sha256File,
  subsampleRows,
  type BuildInput,
  type BuildPhase,
  type BuildResult,
  type BundleManifest,
  type SubsampleSpec,
} from '../../index/index.js';
import { createLogger } from '../../logging/index.js';
import { fitCombination } from '../../eval/index.js';
import { referenceScorer } from '../../scoring/index.js';
import { createKafka, readTopicToEnd } from '../../stream/index.js';
import { intFlag, parseFlags, UsageError } from '../args.js';
import { Progress } from '../progress.js';
import { foldReviews, readReviewRecords, type FoldResult } from '../reviewed-references.js';
import { stopOnSignals } from '../stop-signals.js';

export const HELP = `qualm build-index: write a new reference bundle (full, incremental, or from reviewed labels)

Usage: qualm build-index [--limit N | --range A:B] [--subsample reservoir|stratified --max-references N [--seed S]]
                         [--from VERSION|current] [--k K] [--batch B]
       qualm build-index --labels [--from VERSION|current]

Full build: embeds the Fashion-MNIST training split (the Debian package,
$QUALM_FASHION_MNIST_DIR, or the committed slice) with the model at QUALM_MODEL_PATH, builds the
HNSW index (in parallel shards on multi-core machines), computes the references' leave-one-out
statistics, writes an immutable bundle under QUALM_BUNDLE_DIR and moves its CURRENT pointer last,
then deletes versions beyond the newest QUALM_BUNDLE_RETAIN. Prints the bundle as JSON.

Incremental (--from): the new references are added to an earlier bundle's, which are read back
from its index, never embedded again; the statistics are recomputed over the union.

--labels: reads QUALM_LABELS_TOPIC and QUALM_REVIEW_TOPIC to their ends, joins each reviewer's
label with the review record of the same sample (which carries its embedding) and adds those
samples, with their labels, to the bundle named by --from (default: the current one) as
references review:<id>. Nothing is encoded; with nothing new to add, no bundle is written.

Options:
  --limit N            use the first N training images (default: all)
  --range A:B          use training images A..B-1 (e.g. the ones a --from bundle lacks)
  --subsample M        keep only --max-references of the selected images, chosen before
                       embedding: reservoir (uniform) or stratified (each label's share, at
                       least 50 per label); see docs/bundle-format.md for the trade-off
  --max-references N   size of the subsample
  --seed S             seed of the subsample (default: 1)
  --from V             extend bundle V ("current": the one CURRENT names)
  --labels             fold reviewed labels into the --from bundle (see above)
  --k K                neighbours per query, stored in the bundle (default: QUALM_K)
  --batch B            ONNX batch size while embedding (default: 512)
  -h, --help           this text`;

export interface BuildIndexOptions {
  /** Use the first `limit` training images. */
  limit?: number;
  /** Use training images [start, end). */
  range?: { start: number; end: number };
  subsample?: SubsampleSpec;
  /** Extend this bundle version (in config.bundleDir). */
  from?: string;
  k: number;
  batch: number;
  signal?: AbortSignal;
  progress?: Progress;
}

function onBuildProgress(progress: Progress): (phase: BuildPhase, done: number, total: number) => void {
  let phase = '';
  return (p, done, total) => {
    if (p !== phase) progress.next();
    phase = p;
    progress.update(p, done, total);
  };
}

/** Embeds (a selection of) Fashion-MNIST train with the configured encoder and writes a bundle. */
export async function buildFashionMnistBundle(config: Config, opts: BuildIndexOptions): Promise<BuildResult> {
  const progress = opts.progress ?? new Progress();
  const train = loadFashionMnist('train');
  const start = Math.min(opts.range?.start ?? 0, train.n);
  const end = Math.min(opts.range?.end ?? opts.limit ?? train.n, train.n);
  if (end - start < 1) throw new UsageError(`the selection holds no training image (the split has ${train.n})`);
  const allLabels = train.labels.subarray(start, end);
  // Subsample before embedding: the rows left out are never run through the encoder.
  const picked = opts.subsample === undefined ? null : subsampleRows(opts.subsample, end - start, allLabels);
  const rows = picked === null ? Array.from({ length: end - start }, (_, i) => start + i) : Array.from(picked, (r) => start + r);
  const n = rows.length;
  const pixels = new Float32Array(n * train.dim);
  rows.forEach((r, i) => pixels.set(train.pixels.subarray(r * train.dim, (r + 1) * train.dim), i * train.dim));

  const encoder = await OnnxEncoder.open(config.modelPath, { intraOpThreads: config.intraOpThreads });
  try {
    const embeddings = await encoder.embedAll(pixels, n, opts.batch, (done) => {
      progress.update('embed', done, n);
      if (opts.signal?.aborted === true) throw new QualmError(ErrorCodes.ABORTED, 'build-index cancelled');
    });
    const input: BuildInput = {
      embeddings,
      dim: encoder.dim,
      ids: rows.map((r) => `${train.name}#${r}`),
      labels: rows.map((r) => train.labels[r] as number),
      labelNames: train.labelNames,
      model: { name: encoder.manifest.name, version: encoder.manifest.version, sha256: encoder.sha256 },
      source: {
        dataset: train.name,
        origin: train.origin,
        rows: { start, end },
        count: n,
        ...(opts.subsample === undefined ? {} : { subsample: { ...opts.subsample, of: end - start, kept: n } }),
      },
      k: opts.k,
      densityWeight: config.densityWeight,
      referenceScore: referenceScorer({ densityWeight: config.densityWeight, numLabels: train.labelNames.length }),
      fitScoring,
      efSearch: config.efSearch,
      ...(opts.from === undefined ? {} : { from: { dir: config.bundleDir, version: opts.from } }),
    };
    return await buildBundle(config.bundleDir, input, { onProgress: onBuildProgress(progress), ...(opts.signal === undefined ? {} : { signal: opts.signal }) });
  } finally {
    await encoder.close();
  }
}

/** The review and label topics read to their ends, and what joining them gives for bundle `version`. */
export async function foldReviewedLabels(config: Config, version: string, signal?: AbortSignal): Promise<{ fold: FoldResult; manifest: BundleManifest; reviews: number; labels: number }> {
  const dir = join(config.bundleDir, version);
  const manifest = checkManifest(version, JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8')));
  if (manifest.labels === null) throw new UsageError(`bundle ${version} has no label set, so it cannot take labelled references`);
  // The bundle must be the running encoder's: review embeddings are compared with its sha256.
  const modelSha256 = await sha256File(config.modelPath);
  if (manifest.model.sha256 !== modelSha256) {
    throw new QualmError(ErrorCodes.BUNDLE_INVALID, `bundle ${version} was built with model sha256 ${manifest.model.sha256}, but QUALM_MODEL_PATH is ${modelSha256}`, {
      context: { bundleVersion: version },
    });
  }
  const existingIds = new Set(JSON.parse(await readFile(join(dir, IDS_FILE), 'utf8')) as string[]);
  const kafka = createKafka(config, createLogger(config.logLevel), '-build-index');
  const labels: (LabelRecord | null)[] = [];
  const opts = signal === undefined ? {} : { signal };
  const reviews = await readReviewRecords(kafka, config.reviewTopic, signal);
  await readTopicToEnd(
    kafka,
    config.labelsTopic,
    (m) => {
      const parsed = parseLabelRecord(m.value);
      labels.push(parsed.ok ? parsed.record : null);
    },
    opts,
  );
  const fold = foldReviews(reviews, labels, { modelSha256, dim: manifest.model.dim, labelNames: manifest.labels.names, existingIds });
  return { fold, manifest, reviews: reviews.length, labels: labels.length };
}

function parseRange(raw: string): { start: number; end: number } {
  const m = /^(\d+):(\d+)$/.exec(raw);
  const start = Number(m?.[1]);
  const end = Number(m?.[2]);
  if (m === null || !(end > start)) throw new UsageError(`--range must be A:B with A < B, got ${JSON.stringify(raw)}`);
  return { start, end };
}

function parseSubsample(method: string | undefined, size: string | undefined, seed: string | undefined): SubsampleSpec | undefined {
  if (method === undefined) {
    if (size !== undefined) throw new UsageError('--max-references needs --subsample reservoir|stratified');
    return undefined;
  }
  if (method !== 'reservoir' && method !== 'stratified') throw new UsageError(`--subsample must be reservoir or stratified, got ${JSON.stringify(method)}`);
  if (size === undefined) throw new UsageError('--subsample needs --max-references N');
  return { method, size: intFlag('max-references', size, 0, 2), seed: intFlag('seed', seed, 1) };
}

async function resolveFrom(config: Config, raw: string | undefined): Promise<string | undefined> {
  if (raw === undefined) return undefined;
  if (raw !== 'current') return raw;
  const current = await readPointer(config.bundleDir);
  if (current === undefined) throw new QualmError(ErrorCodes.BUNDLE_MISSING, `--from current: no bundle in ${config.bundleDir} yet`, { context: { path: config.bundleDir } });
  return current;
}

/**
 * Fits the combination of the signals on a held-out split of the labelled references (see
 * eval/combination-fit.ts); an unlabelled or too small set keeps the label-free fallback.
 */
const fitScoring: NonNullable<BuildInput['fitScoring']> = (loo, signal) =>
  fitCombination(loo, { onSkip: (reason) => console.error(`build-index: ${reason}`) }, signal);

function summary(res: BuildResult, pruned: readonly string[], t0: number, extra: Record<string, unknown> = {}): string {
  const m = res.manifest;
  return JSON.stringify({
    version: res.version,
    dir: res.dir,
    count: m.count,
    dim: m.model.dim,
    k: m.reference_stats.k,
    model_sha256: m.model.sha256,
    loo_mean_knn_median: m.reference_stats.loo_mean_knn_quantiles[500],
    combination:
      m.scoring.combination === undefined
        ? null
        : { held_out_auroc: m.scoring.combination.fit.held_out_auroc, probe_held_out_accuracy: m.scoring.combination.fit.probe_held_out_accuracy, held_out: m.scoring.combination.fit.held_out },
    ...extra,
    pruned,
    seconds: (Date.now() - t0) / 1000,
  });
}

export async function run(argv: string[], config: Config): Promise<number> {
  const { values } = parseFlags(argv, {
    limit: { type: 'string' },
    range: { type: 'string' },
    subsample: { type: 'string' },
    'max-references': { type: 'string' },
    seed: { type: 'string' },
    from: { type: 'string' },
    labels: { type: 'boolean' },
    k: { type: 'string' },
    batch: { type: 'string' },
  });
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  if (values.limit !== undefined && values.range !== undefined) throw new UsageError('give --limit or --range, not both');
  const stop = stopOnSignals();
  try {
    const t0 = Date.now();
    const k = intFlag('k', values.k, config.k, 1);
    if (values.labels === true) {
      if (values.limit !== undefined || values.range !== undefined || values.subsample !== undefined) {
        throw new UsageError('--labels takes its references from the labels topic: no --limit, --range or --subsample');
      }
      const from = (await resolveFrom(config, values.from ?? 'current')) as string;
      const { fold, manifest, reviews, labels } = await foldReviewedLabels(config, from, stop.signal);
      const folded = { from, review_records: reviews, label_records: labels, added: fold.references.length, skipped: fold.skipped };
      if (fold.references.length === 0) {
        console.log(JSON.stringify({ version: null, ...folded, seconds: (Date.now() - t0) / 1000 }));
        return 0;
      }
      const dim = manifest.model.dim;
      const embeddings = new Float32Array(fold.references.length * dim);
      fold.references.forEach((r, i) => embeddings.set(r.embedding, i * dim));
      const res = await buildBundle(
        config.bundleDir,
        {
          embeddings,
          dim,
          ids: fold.references.map((r) => r.id),
          labels: fold.references.map((r) => r.label),
          labelNames: manifest.labels?.names ?? [],
          model: { name: manifest.model.name, version: manifest.model.version, sha256: manifest.model.sha256 },
          source: { reviewed_labels: { labels_topic: config.labelsTopic, review_topic: config.reviewTopic, added: fold.references.length, skipped: fold.skipped } },
          k: manifest.reference_stats.k,
          densityWeight: config.densityWeight,
          referenceScore: referenceScorer({ densityWeight: config.densityWeight, numLabels: manifest.labels?.names.length ?? 0 }),
          fitScoring,
          efSearch: config.efSearch,
          from: { dir: config.bundleDir, version: from },
        },
        { onProgress: onBuildProgress(new Progress()), signal: stop.signal },
      );
      const pruned = await pruneBundles(config.bundleDir, config.bundleRetain);
      console.log(summary(res, pruned, t0, folded));
      return 0;
    }
    const from = await resolveFrom(config, values.from);
    const subsample = parseSubsample(values.subsample, values['max-references'], values.seed);
    const res = await buildFashionMnistBundle(config, {
      ...(values.limit === undefined ? {} : { limit: intFlag('limit', values.limit, 0, 2) }),
      ...(values.range === undefined ? {} : { range: parseRange(values.range) }),
      ...(subsample === undefined ? {} : { subsample }),
      ...(from === undefined ? {} : { from }),
      k,
      batch: intFlag('batch', values.batch, 512, 1),
      signal: stop.signal,
    });
    const pruned = await pruneBundles(config.bundleDir, config.bundleRetain);
    console.log(summary(res, pruned, t0, from === undefined ? {} : { from }));
    return 0;
  } finally {
    stop.release();
  }
}
