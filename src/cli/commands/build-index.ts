import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../../config/index.js';
import type { LabelRecord, SamplePrediction } from '../../contracts/index.js';
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
  ReservoirSampler,
} from '../../index/index.js';
import { createLogger } from '../../logging/index.js';
import { fitCombination, fitModelCombination, withModelPart } from '../../eval/index.js';
import { referenceScorer } from '../../scoring/index.js';
import { LabelCollector, SkipCounter, SourceRecordError, mergeSkips, openSource, type SkipReport, type Source, type SourceOptions, type SourceRecord } from '../../sources/index.js';
import { encodeInputs, inputSpecFor } from '../../encoder/index.js';
import { KafkajsTransport, type Transport } from '../../transport/index.js';
import { intFlag, parseFlags, UsageError } from '../args.js';
import { Progress } from '../progress.js';
import { foldReviews, readReviewRecords, type FoldResult } from '../reviewed-references.js';
import { stopOnSignals } from '../stop-signals.js';

export const HELP = `qualm build-index: write a new reference bundle (full, incremental, or from reviewed labels)

Usage: qualm build-index [--limit N | --range A:B] [--subsample reservoir|stratified --max-references N [--seed S]]
                         [--from VERSION|current] [--k K] [--batch B]
       qualm build-index --references PATH|-|topic:NAME|builtin:NAME[/SPLIT] [--dim D] [--sidecar FILE]
                         [--skip-invalid] [--limit N] [--subsample ... --max-references N [--seed S]]
                         [--from VERSION|current] [--k K] [--batch B]
       qualm build-index --labels [--from VERSION|current]

Full build: embeds the Fashion-MNIST training split (the Debian package,
$QUALM_FASHION_MNIST_DIR, or the committed slice) with the model at QUALM_MODEL_PATH, builds the
HNSW index (in parallel shards on multi-core machines), computes the references' leave-one-out
statistics, writes an immutable bundle under QUALM_BUNDLE_DIR and moves its CURRENT pointer last,
then deletes versions beyond the newest QUALM_BUNDLE_RETAIN. Prints the bundle as JSON.

Incremental (--from): the new references are added to an earlier bundle's, which are read back
from its index, never embedded again; the statistics are recomputed over the union.

--references: the references come from a file, stdin, a topic or a built-in set instead
(docs/sources.md): JSONL in the input wire format plus an optional label per line
(.jsonl/.ndjson, or - for stdin), precomputed embeddings (.npy float32 [N, D], or raw .f32
with --dim) with ids and labels from a --sidecar (JSONL {id,label} or CSV id,label), Parquet,
topic:NAME (read to its end), or builtin:fashion-mnist[/train|t10k], builtin:mnist,
builtin:imdb[/train|test], builtin:spam-assassin. Records are streamed and embedded in runs
of --batch; embedding inputs skip the encoder. Label names come from the data (numeric order
when every label is an integer, else code-unit order); an unlabelled source gives a
label-free bundle.

--labels: reads QUALM_LABELS_TOPIC and QUALM_REVIEW_TOPIC to their ends, joins each reviewer's
label with the review record of the same sample (which carries its embedding) and adds those
samples, with their labels, to the bundle named by --from (default: the current one) as
references review:<id>. Nothing is encoded; with nothing new to add, no bundle is written.

Options:
  --references SPEC    build from this source (see above) instead of Fashion-MNIST train
  --dim D              values per row of a raw .f32 file
  --sidecar FILE       ids and labels of a .npy/.f32 file, line i for row i (.jsonl or .csv)
  --skip-invalid       count and skip bad records (reported in the output and the manifest)
                       instead of stopping at the first; also drops unlabelled records of a
                       source whose other records have labels
  --limit N            use the first N training images (default: all), or the first N
                       records of --references
  --range A:B          use training images A..B-1 (e.g. the ones a --from bundle lacks)
  --subsample M        keep only --max-references of the selected images, chosen before
                       embedding: reservoir (uniform) or stratified (each label's share, at
                       least 50 per label); see docs/bundle-format.md for the trade-off.
                       With --references, reservoir runs on the stream, and stratified reads
                       the source twice (its labels first), so not from stdin
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
      metric: encoder.metric,
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

export interface ReferencesOptions {
  /** Source spec: PATH, -, topic:NAME or builtin:NAME[/SPLIT] (see sources/). */
  references: string;
  /** Values per row of a raw .f32 file. */
  dim?: number;
  /** Ids and labels of a .npy/.f32 file. */
  sidecar?: string;
  skipInvalid: boolean;
  /** Use the first `limit` usable records. */
  limit?: number;
  subsample?: SubsampleSpec;
  from?: string;
  k: number;
  batch: number;
  signal?: AbortSignal;
  /** Needed by topic:NAME sources. */
  transport?: Transport;
  /** Where the read progress goes (default: stderr). */
  log?: (line: string) => void;
}

/** Records between two progress lines while reading a source. */
const READ_PROGRESS_EVERY = 100_000;

/**
 * Row-major embeddings appended row by row into one Float32Array whose capacity doubles,
 * with their ids and labels; no per-row arrays are kept. The array is in shared memory, so
 * the build threads read it where it is instead of a copy (BuildInput.embeddings).
 */
class EmbeddingRows {
  private data: Float32Array;
  private n = 0;
  readonly ids: string[] = [];
  /** The ids so far, to refuse a repeated one where it appears. */
  private readonly seen = new Set<string>();
  readonly labels: LabelCollector;

  constructor(
    readonly dim: number,
    labelNames: readonly string[] | undefined,
  ) {
    this.data = new Float32Array(new SharedArrayBuffer(dim * 1024 * 4));
    this.labels = new LabelCollector(labelNames);
  }

  get count(): number {
    return this.n;
  }

  add(record: SourceRecord, embedding: Float32Array): void {
    if (this.seen.has(record.id)) throw new SourceRecordError(record.where, 'duplicate_id', `id ${JSON.stringify(record.id)} was given by an earlier record; reference ids must be unique`);
    this.seen.add(record.id);
    if ((this.n + 1) * this.dim > this.data.length) {
      const grown = new Float32Array(new SharedArrayBuffer(this.data.length * 2 * 4));
      grown.set(this.data);
      this.data = grown;
    }
    this.data.set(embedding, this.n * this.dim);
    this.n++;
    this.ids.push(record.id);
    this.labels.add(record.label, record.where);
  }

  /** The rows kept (keep[i] = 1), compacted in place; all of them without a mask. */
  rows(keep: Uint8Array | null): { embeddings: Float32Array; ids: string[] } {
    if (keep === null) return { embeddings: this.data.subarray(0, this.n * this.dim), ids: this.ids };
    let m = 0;
    const ids: string[] = [];
    for (let i = 0; i < this.n; i++) {
      if (keep[i] !== 1) continue;
      if (m !== i) this.data.copyWithin(m * this.dim, i * this.dim, (i + 1) * this.dim);
      ids.push(this.ids[i] as string);
      m++;
    }
    return { embeddings: this.data.subarray(0, m * this.dim), ids };
  }
}

/** An `embedding` record as the metric wants it: L2-normalised for cosine (a zero vector is refused), as given otherwise. */
function referenceEmbedding(values: Float32Array, normalise: boolean, where: string): Float32Array {
  if (!normalise) return values;
  let s = 0;
  for (const v of values) s += v * v;
  if (!(s > 0)) throw new SourceRecordError(where, 'zero_embedding', 'input.embedding is all zeros, which the cosine metric cannot normalise');
  const out = new Float32Array(values.length);
  const inv = 1 / Math.sqrt(s);
  for (let i = 0; i < values.length; i++) out[i] = (values[i] as number) * inv;
  return out;
}

/**
 * The record indices a stratified subsample keeps, from a first pass over the source that
 * reads only the labels (a second source is opened for the embedding pass, so stdin cannot
 * be stratified).
 */
async function stratifiedRows(open: () => Promise<Source>, spec: SubsampleSpec, limit: number | undefined, signal: AbortSignal | undefined): Promise<Set<number>> {
  const source = await open();
  const codes = new Map<string, number>();
  const labels: number[] = [];
  for await (const r of source.records(signal)) {
    if (limit !== undefined && labels.length >= limit) break;
    let c = -1;
    if (r.label !== undefined) {
      c = codes.get(r.label) ?? codes.size;
      codes.set(r.label, c);
    }
    labels.push(c);
  }
  try {
    return new Set(subsampleRows(spec, labels.length, labels));
  } catch (err) {
    // Too small a sample for the per-label minimum: the user's numbers, so a usage error.
    if (err instanceof RangeError) throw new UsageError(`${source.name}: ${err.message}`);
    throw err;
  }
}

/**
 * Builds a bundle from any source (sources/openSource): records are read as a stream,
 * embedded in runs of `batch` as they arrive (`embedding` records skip the encoder), and
 * appended to one growable array; label names come from the data (a built-in's declared
 * order, else labelOrder), an unlabelled source gives a label-free bundle. Subsampling:
 * reservoir on the stream (seeded; the left-out records are never embedded), or stratified
 * with a first pass that reads the labels (not for stdin).
 */
export async function buildReferencesBundle(config: Config, opts: ReferencesOptions): Promise<BuildResult & { skipped: SkipReport }> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const signal = opts.signal;
  if (opts.subsample?.method === 'stratified' && opts.references === '-') {
    throw new UsageError('--subsample stratified reads the source twice (labels first), which stdin cannot give: use --subsample reservoir, or a file');
  }
  // The encoder is opened even when every record is an embedding: the bundle records the model it belongs to.
  const encoder = await OnnxEncoder.open(config.modelPath, { intraOpThreads: config.intraOpThreads });
  try {
    const spec = inputSpecFor(encoder, config.maxMessageBytes);
    const sourceOptions: SourceOptions = {
      spec,
      skipInvalid: opts.skipInvalid,
      ...(opts.dim === undefined ? {} : { dim: opts.dim }),
      ...(opts.sidecar === undefined ? {} : { sidecar: opts.sidecar }),
      ...(opts.transport === undefined ? {} : { transport: opts.transport }),
    };
    const open = (): Promise<Source> => openSource(opts.references, sourceOptions);
    const stratified = opts.subsample?.method === 'stratified' ? await stratifiedRows(open, opts.subsample, opts.limit, signal) : null;
    const source = await open();
    const dim = encoder.dim;
    // Where the bundle metric decides: cosine rows are unit length (the encoder normalises its own output).
    const normalise = encoder.metric === 'cosine';
    const rows = new EmbeddingRows(dim, source.labelNames);
    // The references' own predictions (a `prediction` per record), for the combination with the model's signals.
    const predictions = new Map<string, SamplePrediction>();
    const rejected = new SkipCounter(opts.skipInvalid);
    const between = (): Promise<void> => {
      signal?.throwIfAborted();
      return Promise.resolve();
    };
    const embed = async (records: readonly SourceRecord[]): Promise<void> => {
      if (records.length === 0) return;
      const out = await encodeInputs(encoder, records.map((r) => r.input), opts.batch, between, signal === undefined ? {} : { signal });
      records.forEach((r, i) => {
        const e = out[i];
        try {
          if (e === undefined) throw new RangeError('encodeInputs gave fewer results than inputs');
          if (!(e instanceof Float32Array)) throw new SourceRecordError(r.where, e.code, e.message);
          rows.add(r, r.input.kind === 'embedding' ? referenceEmbedding(e, normalise, r.where) : e);
          if (r.prediction !== undefined) predictions.set(r.id, r.prediction);
        } catch (err) {
          if (!(err instanceof SourceRecordError)) throw err;
          rejected.reject(err);
        }
      });
    };

    const reservoir = opts.subsample?.method === 'reservoir' ? new ReservoirSampler(opts.subsample.size, opts.subsample.seed) : null;
    const kept: { i: number; r: SourceRecord }[] = [];
    let pending: SourceRecord[] = [];
    let seen = 0;
    for await (const r of source.records(signal)) {
      if (opts.limit !== undefined && seen >= opts.limit) break;
      const i = seen++;
      if (seen % READ_PROGRESS_EVERY === 0) log(`build-index: read ${seen} records from ${source.name}`);
      if (reservoir !== null) {
        const slot = reservoir.offer();
        if (slot >= 0) kept[slot] = { i, r };
        continue;
      }
      if (stratified !== null && !stratified.has(i)) continue;
      pending.push(r);
      if (pending.length >= opts.batch) {
        await embed(pending);
        pending = [];
      }
    }
    if (reservoir !== null) {
      // The reservoir in stream order, embedded now: the records it dropped never reach the encoder.
      kept.sort((a, b) => a.i - b.i);
      for (let s = 0; s < kept.length; s += opts.batch) await embed(kept.slice(s, s + opts.batch).map((x) => x.r));
    } else {
      await embed(pending);
    }
    log(`build-index: read ${seen} records from ${source.name}, embedded ${rows.count}`);

    const collected = rows.labels.finish(opts.skipInvalid);
    const skipped = mergeSkips(mergeSkips(source.skipped, rejected.report), collected.skipped);
    const { embeddings, ids } = rows.rows(collected.keep);
    if (ids.length === 0) throw new QualmError(ErrorCodes.SOURCE_INVALID, `${source.name} holds no usable record (${skipped.total} skipped)`);
    const input: BuildInput = {
      embeddings,
      dim,
      ids,
      labels: collected.labels,
      labelNames: collected.labelNames,
      model: { name: encoder.manifest.name, version: encoder.manifest.version, sha256: encoder.sha256 },
      metric: encoder.metric,
      source: {
        references: opts.references,
        count: ids.length,
        skipped,
        ...(opts.limit === undefined ? {} : { limit: opts.limit }),
        ...(opts.subsample === undefined ? {} : { subsample: { ...opts.subsample, of: seen, kept: ids.length } }),
      },
      k: opts.k,
      densityWeight: config.densityWeight,
      referenceScore: referenceScorer({ densityWeight: config.densityWeight, numLabels: collected.labelNames?.length ?? 0 }),
      fitScoring: predictions.size === 0 ? fitScoring : fitScoringWithPredictions(predictions, collected.labelNames ?? []),
      efSearch: config.efSearch,
      ...(opts.from === undefined ? {} : { from: { dir: config.bundleDir, version: opts.from } }),
    };
    const res = await buildBundle(config.bundleDir, input, { onProgress: onBuildProgress(new Progress()), ...(signal === undefined ? {} : { signal }) });
    return { ...res, skipped };
  } catch (err) {
    // Ctrl-C while reading or embedding surfaces as the platform's AbortError: one code for every phase.
    if (signal?.aborted === true && !(err instanceof QualmError)) throw new QualmError(ErrorCodes.ABORTED, 'build-index cancelled', { cause: err });
    throw err;
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
  const transport = KafkajsTransport.fromConfig(config, createLogger(config.logLevel), '-build-index');
  const labels: (LabelRecord | null)[] = [];
  const opts = signal === undefined ? {} : { signal };
  const reviews = await readReviewRecords(transport, config.reviewTopic, signal);
  await transport.readToEnd(
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

/**
 * The same, plus the combination with the model's signals (eval/model-combination.ts) fitted on
 * the labelled references that carry the downstream model's `prediction`: samples with a
 * prediction are scored by it, the others by the embedding-only combination.
 */
const fitScoringWithPredictions =
  (predictions: ReadonlyMap<string, SamplePrediction>, labelNames: readonly string[]): NonNullable<BuildInput['fitScoring']> =>
  async (loo, signal) => {
    const onSkip = (reason: string): void => console.error(`build-index: ${reason}`);
    const fit = await fitCombination(loo, { onSkip }, signal);
    return withModelPart(fit, await fitModelCombination(loo, fit, { onSkip, labelNames, referencePrediction: (id) => predictions.get(id) }, signal));
  };

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
    references: { type: 'string' },
    dim: { type: 'string' },
    sidecar: { type: 'string' },
    'skip-invalid': { type: 'boolean' },
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
    if (values.references === undefined && (values.dim !== undefined || values.sidecar !== undefined || values['skip-invalid'] === true)) {
      throw new UsageError('--dim, --sidecar and --skip-invalid go with --references');
    }
    const from = await resolveFrom(config, values.from);
    const subsample = parseSubsample(values.subsample, values['max-references'], values.seed);
    if (values.references !== undefined) {
      if (values.range !== undefined) throw new UsageError('--range selects Fashion-MNIST images; with --references use --limit');
      const references = values.references;
      const res = await buildReferencesBundle(config, {
        references,
        ...(values.dim === undefined ? {} : { dim: intFlag('dim', values.dim, 0, 1) }),
        ...(values.sidecar === undefined ? {} : { sidecar: values.sidecar }),
        skipInvalid: values['skip-invalid'] === true,
        ...(values.limit === undefined ? {} : { limit: intFlag('limit', values.limit, 0, 1) }),
        ...(subsample === undefined ? {} : { subsample }),
        ...(from === undefined ? {} : { from }),
        k,
        batch: intFlag('batch', values.batch, 512, 1),
        signal: stop.signal,
        ...(references.startsWith('topic:') ? { transport: KafkajsTransport.fromConfig(config, createLogger(config.logLevel), '-build-index') } : {}),
      });
      const pruned = await pruneBundles(config.bundleDir, config.bundleRetain);
      const labels = res.manifest.labels;
      console.log(summary(res, pruned, t0, { references, labels: labels === null ? null : labels.names, skipped: res.skipped, ...(from === undefined ? {} : { from }) }));
      return 0;
    }
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
