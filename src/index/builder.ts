import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { ErrorCodes, QualmError } from '../errors.js';
import { sha256File } from '../util/sha256.js';
import {
  BUNDLE_FORMAT_VERSION,
  IDS_FILE,
  LABELS_FILE,
  MANIFEST_FILE,
  MAX_SHARDS,
  RADII_FILE,
  KTH_RADII_FILE,
  GAUSSIAN_FILE,
  POINTER_FILE,
  shardFile,
  type BundleManifest,
  type BundleMetric,
  type Combination,
} from './manifest.js';
import { encodeGaussian } from './gaussian-file.js';
import { loadBundle } from './loader.js';
import { buildShards, type ShardPlan } from './shard-builder.js';
import type { IndexSnapshot } from './snapshot.js';
import { subsampleRows, type SubsampleSpec } from './subsample.js';
import { empiricalQuantiles } from './quantiles.js';
import { relativeDensity } from '../util/relative-density.js';
import { gatherRows } from '../util/rows.js';
import type { DensityStats, GaussianStats, Neighbors } from './types.js';

export interface HnswParams {
  /** Graph degree. */
  m: number;
  efConstruction: number;
  randomSeed: number;
  /**
   * Independent HNSW indexes over disjoint rows, built in parallel threads and all searched
   * for every query. Default 1: one index, inserted on one build thread, with the
   * leave-one-out pass split across all build threads, which measured best on 2 shared cores
   * (docs/benchmarks.md). More shards insert in parallel but double the leave-one-out work
   * (each reference is queried against every shard) and every query at serving time.
   */
  shards?: number;
}

export const DEFAULT_HNSW: HnswParams = { m: 16, efConstruction: 200, randomSeed: 100 };
/** Number of stored quantiles of the leave-one-out distance distributions. */
export const STAT_QUANTILES = 1001;
/** Below this many references a build runs on the calling thread by default. */
export const PARALLEL_MIN_REFERENCES = 20_000;

/** An earlier bundle an incremental build extends. */
export interface PreviousBundle {
  /** The bundle directory (holding CURRENT and the versions). */
  dir: string;
  version: string;
}

/** What a combination fit sees: every reference and its leave-one-out neighbours, by row. */
export interface LeaveOneOutView {
  readonly n: number;
  readonly dim: number;
  /** Row-major reference embeddings (after subsampling and any union with a previous bundle). */
  readonly vectors: Float32Array;
  readonly ids: readonly string[];
  readonly labels: readonly number[] | null;
  readonly numLabels: number;
  readonly density: DensityStats;
  /** Reference `row`'s k nearest other references, exactly as a worker would see a new point there. */
  neighborsOf(row: number): Neighbors;
}

/** A fitted combination and the raw score it gives a reference (for the calibration quantiles). */
export interface ScoringFit {
  readonly combination: Combination;
  /** Reference `row`'s raw score from its leave-one-out neighbours and its own vector. */
  readonly referenceScore: (neighbors: Neighbors, density: DensityStats, vector: Float32Array) => number;
  /** The class-conditional Gaussian the combination uses, written to GAUSSIAN_FILE. */
  readonly gaussian?: GaussianStats;
}

export interface BuildInput {
  /**
   * Row-major embeddings, count * dim values, as the encoder returns them (L2-normalised for
   * cosine). A SharedArrayBuffer-backed array is used by the build threads without a copy.
   */
  embeddings: Float32Array;
  dim: number;
  /**
   * The HNSW distance, the encoder's metric (`encoder.metric`): cosine (default), l2 (squared
   * Euclidean) or ip (1 - inner product, which needs rows of norm at most 1 so that distances
   * stay non-negative). Stored in the manifest; an incremental build keeps its bundle's.
   */
  metric?: BundleMetric;
  ids: readonly string[];
  /** Label index per reference (-1 unknown), or null for an unlabelled reference set. */
  labels: readonly number[] | null;
  labelNames: readonly string[] | null;
  model: { name: string; version: string; sha256: string };
  /** Free-form description of where the references came from. */
  source: Record<string, unknown>;
  k: number;
  /** Density weight of the combined score; stored in the bundle for the workers. */
  densityWeight: number;
  /**
   * Raw combined score of one reference from its leave-one-out neighbours; the quantiles of
   * these calibrate the workers' uncertainty. Omitted: no calibration is stored.
   */
  referenceScore?: (neighbors: Neighbors, density: DensityStats) => number;
  /**
   * Fits the combination of the signals on the references' leave-one-out neighbours (see
   * eval/combination-fit.ts); its score then replaces `referenceScore` for the calibration and
   * it is stored in the manifest. Resolving null (e.g. too few labels) keeps `referenceScore`.
   */
  fitScoring?: (loo: LeaveOneOutView, signal: AbortSignal | undefined) => Promise<ScoringFit | null>;
  /** HNSW parameters; an incremental build keeps those of the bundle it extends. */
  hnsw?: HnswParams;
  /** Query ef for the leave-one-out pass. */
  efSearch?: number;
  /**
   * Incremental build: the references above are added to this earlier bundle's, whose
   * vectors are read back from its index (never re-embedded) and whose HNSW shards are
   * extended rather than rebuilt. It must have the same model sha256, dimension and label
   * names; an id already in it is refused. The statistics are recomputed over the union.
   */
  from?: PreviousBundle;
  /** Keep only a sample of the references above (see subsample.ts and docs/bundle-format.md). */
  subsample?: SubsampleSpec;
}

export type BuildPhase = 'load-previous' | 'insert' | 'leave-one-out' | 'fit' | 'calibrate' | 'write';
export interface BuildOptions {
  onProgress?: ((phase: BuildPhase, done: number, total: number) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** Version name; defaults to a UTC timestamp plus random suffix. */
  version?: string | undefined;
  /**
   * Build threads. Default: the machine's available parallelism from PARALLEL_MIN_REFERENCES
   * references on, else 1 (everything on the calling thread).
   */
  threads?: number | undefined;
}

export interface BuildResult {
  version: string;
  dir: string;
  manifest: BundleManifest;
}

/**
 * The ip metric's distance, 1 - inner product, is non-negative only for rows of norm at most 1;
 * qualm's signals read distances as non-negative (the search clamps them at 0), so larger rows
 * are refused rather than scored wrongly.
 */
function checkInnerProductRows(embeddings: Float32Array, dim: number): void {
  for (let off = 0, row = 0; off < embeddings.length; off += dim, row++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += (embeddings[off + j] as number) ** 2;
    if (s > 1 + 1e-4) {
      throw new QualmError(ErrorCodes.DATASET_INVALID, `reference row ${row} has L2 norm ${Math.sqrt(s).toFixed(4)}: the ip metric (distance 1 - inner product) needs rows of norm at most 1; use cosine (normalises the rows) or l2 for this model`);
    }
  }
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new QualmError(ErrorCodes.ABORTED, 'index build cancelled');
}

function defaultVersion(): string {
  const ts = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `v${ts}-${randomBytes(3).toString('hex')}`;
}

async function writeDurable(path: string, data: string | Buffer): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Flushes a file written by someone else (hnswlib) to disk. */
async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Atomically points `bundleDir/CURRENT` at `version` (write a temp file, then rename). */
export async function movePointer(bundleDir: string, version: string): Promise<void> {
  const tmp = join(bundleDir, `.${POINTER_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`);
  await writeDurable(tmp, `${version}\n`);
  await rename(tmp, join(bundleDir, POINTER_FILE));
}

/** The references of a build after subsampling and the union with a previous bundle. */
interface Union {
  vectors: Float32Array;
  ids: readonly string[];
  labels: readonly number[] | null;
  previous: { snapshot: IndexSnapshot; dir: string } | null;
  source: Record<string, unknown>;
  threads: number;
}

function mismatch(from: PreviousBundle, message: string): QualmError {
  return new QualmError(ErrorCodes.BUNDLE_INVALID, `cannot extend bundle ${from.version}: ${message}`, {
    context: { bundleVersion: from.version, path: from.dir },
  });
}

/** A float32 array of `length` values, in shared memory when build threads will read it. */
function vectorBuffer(length: number, shared: boolean): Float32Array {
  return shared ? new Float32Array(new SharedArrayBuffer(length * 4)) : new Float32Array(length);
}

async function gatherReferences(
  input: BuildInput,
  threadsFor: (n: number) => number,
  progress: (phase: BuildPhase, done: number, total: number) => void,
): Promise<Union> {
  const { dim } = input;
  let embeddings = input.embeddings;
  let ids = input.ids;
  let labels = input.labels;
  let source = input.source;
  if (input.subsample !== undefined) {
    const keep = subsampleRows(input.subsample, ids.length, labels);
    const all = labels;
    embeddings = gatherRows(embeddings, dim, keep);
    ids = Array.from(keep, (r) => ids[r] as string);
    labels = all === null ? null : Array.from(keep, (r) => all[r] as number);
    source = { ...source, subsample: { ...input.subsample, of: input.ids.length, kept: keep.length } };
  }
  if (input.from === undefined) {
    const threads = threadsFor(ids.length);
    const usable = threads === 1 || embeddings.buffer instanceof SharedArrayBuffer;
    const vectors = usable ? embeddings : vectorBuffer(embeddings.length, true);
    if (!usable) vectors.set(embeddings);
    return { vectors, ids, labels, previous: null, source, threads };
  }

  const from = input.from;
  progress('load-previous', 0, 1);
  const snapshot = await loadBundle(from.dir, from.version, { efSearch: 10 });
  const m = snapshot.manifest;
  if (m.model.sha256 !== input.model.sha256) throw mismatch(from, `it was built with model sha256 ${m.model.sha256}, these references with ${input.model.sha256}`);
  if (m.model.dim !== dim) throw mismatch(from, `it has dimension ${m.model.dim}, these references ${dim}`);
  const metric = input.metric ?? 'cosine';
  if (m.metric !== metric) throw mismatch(from, `it uses the ${m.metric} metric, these references ${metric}`);
  const oldNames = m.labels?.names ?? null;
  const newNames = labels === null ? null : (input.labelNames ?? []);
  if (JSON.stringify(oldNames) !== JSON.stringify(newNames)) {
    throw mismatch(from, `its label names are ${JSON.stringify(oldNames)}, these references have ${JSON.stringify(newNames)}`);
  }
  const oldIds = snapshot.referenceIds;
  const known = new Set(oldIds);
  for (const id of ids) {
    if (known.has(id)) {
      throw new QualmError(ErrorCodes.DATASET_INVALID, `reference id ${JSON.stringify(id)} is already in bundle ${from.version}: an incremental build only adds references (run a full build to replace or remove one)`, {
        context: { bundleVersion: from.version },
      });
    }
    known.add(id);
  }
  const nOld = snapshot.count;
  const threads = threadsFor(nOld + ids.length);
  const vectors = vectorBuffer((nOld + ids.length) * dim, threads > 1);
  for (let r = 0; r < nOld; r++) vectors.set(snapshot.vectorOf(r), r * dim);
  vectors.set(embeddings, nOld * dim);
  const oldLabels = snapshot.referenceLabels;
  progress('load-previous', 1, 1);
  return {
    vectors,
    ids: [...oldIds, ...ids],
    labels: labels === null || oldLabels === null ? null : [...oldLabels, ...labels],
    previous: { snapshot, dir: join(from.dir, from.version) },
    source: { ...source, incremental: { from: from.version, previous_count: nOld, added: ids.length } },
    threads,
  };
}

/**
 * Builds the HNSW index over the references, computes their leave-one-out kNN distance
 * statistics, writes an immutable bundle directory beside the existing ones and moves the
 * CURRENT pointer last. From PARALLEL_MIN_REFERENCES references on it works in build
 * threads: one inserts, all share the leave-one-out queries (or one thread per shard with
 * `hnsw.shards`; docs/benchmarks.md says why not by default). Cancelled through `signal` it
 * leaves no partial bundle behind.
 */
export async function buildBundle(bundleDir: string, input: BuildInput, opts: BuildOptions = {}): Promise<BuildResult> {
  const { embeddings, dim, k } = input;
  if (embeddings.length !== input.ids.length * dim) throw new RangeError(`embeddings hold ${embeddings.length} values, expected ${input.ids.length} x ${dim}`);
  if (input.labels !== null && input.labels.length !== input.ids.length) throw new RangeError('labels and ids differ in length');
  const metric: BundleMetric = input.metric ?? 'cosine';
  if (metric === 'ip') checkInnerProductRows(embeddings, dim);
  const progress = opts.onProgress ?? (() => undefined);
  checkAborted(opts.signal);
  const threadsFor = (count: number): number => Math.max(1, Math.floor(opts.threads ?? (count >= PARALLEL_MIN_REFERENCES ? availableParallelism() : 1)));
  const union = await gatherReferences(input, threadsFor, progress);
  const { ids, labels, threads } = union;
  const n = ids.length;
  if (n <= k) throw new RangeError(`need more than k=${k} references, got ${n}`);
  checkAborted(opts.signal);

  const prevManifest = union.previous?.snapshot.manifest;
  const hnsw: HnswParams = prevManifest
    ? { m: prevManifest.hnsw.m, efConstruction: prevManifest.hnsw.ef_construction, randomSeed: prevManifest.hnsw.random_seed, shards: prevManifest.hnsw.shards ?? 1 }
    : (input.hnsw ?? DEFAULT_HNSW);
  const shards = Math.min(MAX_SHARDS, Math.max(1, Math.floor(hnsw.shards ?? 1)));
  const nOld = union.previous?.snapshot.count ?? 0;
  const nNew = n - nOld;

  const version = opts.version ?? defaultVersion();
  await mkdir(bundleDir, { recursive: true });
  const finalDir = join(bundleDir, version);
  const tmpDir = join(bundleDir, `.tmp-${version}`);
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir);
  try {
    // The shards are written straight into the temporary directory as they finish.
    const plans: ShardPlan[] = Array.from({ length: shards }, (_, s) => ({
      lo: nOld + Math.floor((s * nNew) / shards),
      hi: nOld + Math.floor(((s + 1) * nNew) / shards),
      base: union.previous === null ? null : join(union.previous.dir, shardFile(s, shards)),
      out: join(tmpDir, shardFile(s, shards)),
    }));
    const { rows: looRows, dist: looDist } = await buildShards({
      vectors: union.vectors,
      dim,
      metric,
      n,
      k,
      ef: Math.max(input.efSearch ?? 100, k + 1),
      params: hnsw,
      shards: plans,
      threads,
      onProgress: progress,
      signal: opts.signal,
    });
    // Rows with fewer than k others found (row -1) average over those they have.
    const found = (i: number): number => {
      let c = 0;
      while (c < k && (looRows[i * k + c] as number) >= 0) c++;
      return c;
    };
    const looMean = new Float64Array(n);
    const looKth = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const c = found(i);
      let sum = 0;
      for (let j = 0; j < c; j++) sum += looDist[i * k + j] as number;
      looMean[i] = c === 0 ? 0 : sum / c;
      looKth[i] = c === 0 ? 0 : (looDist[i * k + c - 1] as number);
    }
    checkAborted(opts.signal);

    // Relative density: a reference's mean kNN distance against its neighbours' own.
    const looRelative = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const c = found(i);
      let s = 0;
      for (let j = 0; j < c; j++) s += looMean[looRows[i * k + j] as number] as number;
      looRelative[i] = relativeDensity(looMean[i] as number, c === 0 ? 0 : s / c);
    }
    const looMeanQuantiles = empiricalQuantiles(looMean, STAT_QUANTILES);
    const looKthQuantiles = empiricalQuantiles(looKth, STAT_QUANTILES);
    const looRelativeQuantiles = empiricalQuantiles(looRelative, STAT_QUANTILES);
    const density: DensityStats = {
      k,
      looMeanKnnQuantiles: looMeanQuantiles,
      looKthKnnQuantiles: looKthQuantiles,
      looRelativeDensityQuantiles: looRelativeQuantiles,
    };
    const neighborsOf = (i: number): Neighbors => {
      const rows = Array.from(looRows.subarray(i * k, i * k + found(i)));
      return {
        ids: rows.map((r) => ids[r] as string),
        labels: labels === null ? null : rows.map((r) => labels[r] as number),
        distances: rows.map((_, j) => looDist[i * k + j] as number),
        radii: rows.map((r) => looMean[r] as number),
        kthRadii: rows.map((r) => looKth[r] as number),
      };
    };
    let combination: Combination | undefined;
    let gaussian: GaussianStats | undefined;
    let referenceScore: ScoringFit['referenceScore'] | undefined = input.referenceScore;
    if (input.fitScoring !== undefined) {
      progress('fit', 0, 1);
      const fit = await input.fitScoring(
        { n, dim, vectors: union.vectors, ids, labels, numLabels: labels === null ? 0 : (input.labelNames ?? []).length, density, neighborsOf },
        opts.signal,
      );
      checkAborted(opts.signal);
      if (fit !== null) {
        combination = fit.combination;
        gaussian = fit.gaussian;
        referenceScore = fit.referenceScore;
      }
      progress('fit', 1, 1);
    }
    let looScoreQuantiles: number[] | null = null;
    if (referenceScore !== undefined) {
      const scores = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        scores[i] = referenceScore(neighborsOf(i), density, union.vectors.subarray(i * dim, (i + 1) * dim));
        if (i % 5000 === 4999 || i === n - 1) {
          progress('calibrate', i + 1, n);
          checkAborted(opts.signal);
          await new Promise((r) => setImmediate(r));
        }
      }
      looScoreQuantiles = empiricalQuantiles(scores, STAT_QUANTILES);
    }

    progress('write', 0, 1);
    const files: string[] = [];
    for (const plan of plans) {
      await fsyncFile(plan.out);
      files.push(basename(plan.out));
    }
    await writeDurable(join(tmpDir, IDS_FILE), JSON.stringify(ids));
    const f32 = (values: Float64Array): Buffer => {
      const buf = Buffer.alloc(values.length * 4);
      for (let i = 0; i < values.length; i++) buf.writeFloatLE(values[i] as number, i * 4);
      return buf;
    };
    await writeDurable(join(tmpDir, RADII_FILE), f32(looMean));
    await writeDurable(join(tmpDir, KTH_RADII_FILE), f32(looKth));
    files.push(IDS_FILE, RADII_FILE, KTH_RADII_FILE);
    if (labels !== null) {
      await writeDurable(join(tmpDir, LABELS_FILE), JSON.stringify(labels));
      files.push(LABELS_FILE);
    }
    if (gaussian !== undefined) {
      await writeDurable(join(tmpDir, GAUSSIAN_FILE), encodeGaussian(gaussian.params));
      files.push(GAUSSIAN_FILE);
    }
    const checksums: BundleManifest['files'] = {};
    for (const f of files) {
      const p = join(tmpDir, f);
      checksums[f] = { sha256: await sha256File(p), bytes: (await stat(p)).size };
    }
    const manifest: BundleManifest = {
      // Sharded bundles need format 2; a single shard stays format 1, which older workers read.
      format_version: shards === 1 ? 1 : BUNDLE_FORMAT_VERSION,
      version,
      created_at: new Date().toISOString(),
      model: { ...input.model, dim },
      metric,
      count: n,
      hnsw: { m: hnsw.m, ef_construction: hnsw.efConstruction, random_seed: hnsw.randomSeed, ...(shards === 1 ? {} : { shards }) },
      labels: labels === null ? null : { names: [...(input.labelNames ?? [])] },
      reference_stats: {
        k,
        loo_mean_knn_quantiles: looMeanQuantiles,
        loo_kth_knn_quantiles: looKthQuantiles,
        loo_relative_density_quantiles: looRelativeQuantiles,
        loo_score_quantiles: looScoreQuantiles,
      },
      scoring: {
        density_weight: input.densityWeight,
        ...(combination === undefined ? {} : { combination }),
        ...(gaussian === undefined
          ? {}
          : {
              gaussian: {
                classes: gaussian.params.classes,
                class_distance_quantiles: [...gaussian.classDistanceQuantiles],
                relative_quantiles: [...gaussian.relativeQuantiles],
                ...(gaussian.crossFitFolds === undefined ? {} : { cross_fit_folds: gaussian.crossFitFolds }),
              },
            }),
      },
      source: union.source,
      files: checksums,
    };
    await writeDurable(join(tmpDir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    checkAborted(opts.signal);
    await rename(tmpDir, finalDir);
    await movePointer(bundleDir, version);
    progress('write', 1, 1);
    return { version, dir: finalDir, manifest };
  } catch (err) {
    await rm(tmpDir, { recursive: true, force: true });
    throw err;
  }
}

