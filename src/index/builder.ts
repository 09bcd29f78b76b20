import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import { ErrorCodes, QualmError } from '../errors.js';
import { sha256File } from '../util/sha256.js';
import {
  BUNDLE_FORMAT_VERSION,
  IDS_FILE,
  INDEX_FILE,
  LABELS_FILE,
  MANIFEST_FILE,
  RADII_FILE,
  POINTER_FILE,
  type BundleManifest,
} from './manifest.js';
import { empiricalQuantiles } from './quantiles.js';
import { relativeDensity } from '../util/relative-density.js';
import type { DensityStats, Neighbors } from './types.js';

export interface HnswParams {
  /** Graph degree. */
  m: number;
  efConstruction: number;
  randomSeed: number;
}

export const DEFAULT_HNSW: HnswParams = { m: 16, efConstruction: 200, randomSeed: 100 };
/** Number of stored quantiles of the leave-one-out distance distributions. */
export const STAT_QUANTILES = 1001;

export interface BuildInput {
  /** Row-major embeddings, count * dim values, L2-normalised. */
  embeddings: Float32Array;
  dim: number;
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
  hnsw?: HnswParams;
  /** Query ef for the leave-one-out pass. */
  efSearch?: number;
}

export type BuildPhase = 'insert' | 'leave-one-out' | 'calibrate' | 'write';
export interface BuildOptions {
  onProgress?: (phase: BuildPhase, done: number, total: number) => void;
  signal?: AbortSignal;
  /** Version name; defaults to a UTC timestamp plus random suffix. */
  version?: string;
}

export interface BuildResult {
  version: string;
  dir: string;
  manifest: BundleManifest;
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

/**
 * Builds the HNSW index over the references, computes their leave-one-out kNN distance
 * statistics, writes an immutable bundle directory beside the existing ones and moves the
 * CURRENT pointer last. Cancelled through `signal` it leaves no partial bundle behind.
 */
export async function buildBundle(bundleDir: string, input: BuildInput, opts: BuildOptions = {}): Promise<BuildResult> {
  const { embeddings, dim, ids, labels, k } = input;
  const n = ids.length;
  const hnsw = input.hnsw ?? DEFAULT_HNSW;
  if (embeddings.length !== n * dim) throw new RangeError(`embeddings hold ${embeddings.length} values, expected ${n} x ${dim}`);
  if (labels !== null && labels.length !== n) throw new RangeError('labels and ids differ in length');
  if (n <= k) throw new RangeError(`need more than k=${k} references, got ${n}`);
  const progress = opts.onProgress ?? (() => undefined);

  const index = new hnswlib.HierarchicalNSW('cosine', dim);
  index.initIndex(n, hnsw.m, hnsw.efConstruction, hnsw.randomSeed);
  const row = (i: number): number[] => Array.from(embeddings.subarray(i * dim, (i + 1) * dim));
  for (let i = 0; i < n; i++) {
    index.addPoint(row(i), i);
    if (i % 1000 === 999 || i === n - 1) {
      progress('insert', i + 1, n);
      checkAborted(opts.signal);
      await new Promise((r) => setImmediate(r));
    }
  }

  index.setEf(Math.max(input.efSearch ?? 100, k + 1));
  const looMean = new Float64Array(n);
  const looKth = new Float64Array(n);
  // Each reference's k nearest others, kept for the combined-score calibration below.
  const looRows = new Int32Array(n * k);
  const looDist = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    const res = index.searchKnn(row(i), k + 1);
    const pairs = res.neighbors.map((nb, j) => [nb, res.distances[j] as number] as const).filter(([nb]) => nb !== i);
    pairs.sort((a, b) => a[1] - b[1]);
    const kept = pairs.slice(0, k);
    let sum = 0;
    kept.forEach(([nb, d], j) => {
      looRows[i * k + j] = nb;
      looDist[i * k + j] = Math.max(0, d);
    });
    for (const [, d] of kept) sum += Math.max(0, d);
    looMean[i] = sum / kept.length;
    looKth[i] = Math.max(0, kept[kept.length - 1]?.[1] ?? 0);
    if (i % 1000 === 999 || i === n - 1) {
      progress('leave-one-out', i + 1, n);
      checkAborted(opts.signal);
      await new Promise((r) => setImmediate(r));
    }
  }

  // Relative density: a reference's mean kNN distance against its neighbours' own.
  const looRelative = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += looMean[looRows[i * k + j] as number] as number;
    looRelative[i] = relativeDensity(looMean[i] as number, s / k);
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
  let looScoreQuantiles: number[] | null = null;
  if (input.referenceScore !== undefined) {
    const scores = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const rows = Array.from(looRows.subarray(i * k, (i + 1) * k));
      scores[i] = input.referenceScore(
        {
          ids: rows.map((r) => ids[r] as string),
          labels: labels === null ? null : rows.map((r) => labels[r] as number),
          distances: Array.from(looDist.subarray(i * k, (i + 1) * k)),
          radii: rows.map((r) => looMean[r] as number),
        },
        density,
      );
      if (i % 5000 === 4999 || i === n - 1) {
        progress('calibrate', i + 1, n);
        checkAborted(opts.signal);
        await new Promise((r) => setImmediate(r));
      }
    }
    looScoreQuantiles = empiricalQuantiles(scores, STAT_QUANTILES);
  }

  const version = opts.version ?? defaultVersion();
  await mkdir(bundleDir, { recursive: true });
  const finalDir = join(bundleDir, version);
  const tmpDir = join(bundleDir, `.tmp-${version}`);
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir);
  try {
    progress('write', 0, 1);
    await index.writeIndex(join(tmpDir, INDEX_FILE));
    await fsyncFile(join(tmpDir, INDEX_FILE));
    await writeDurable(join(tmpDir, IDS_FILE), JSON.stringify(ids));
    const radii = Buffer.alloc(n * 4);
    for (let i = 0; i < n; i++) radii.writeFloatLE(looMean[i] as number, i * 4);
    await writeDurable(join(tmpDir, RADII_FILE), radii);
    const files = [INDEX_FILE, IDS_FILE, RADII_FILE];
    if (labels !== null) {
      await writeDurable(join(tmpDir, LABELS_FILE), JSON.stringify(labels));
      files.push(LABELS_FILE);
    }
    const checksums: BundleManifest['files'] = {};
    for (const f of files) {
      const p = join(tmpDir, f);
      checksums[f] = { sha256: await sha256File(p), bytes: (await stat(p)).size };
    }
    const manifest: BundleManifest = {
      format_version: BUNDLE_FORMAT_VERSION,
      version,
      created_at: new Date().toISOString(),
      model: { ...input.model, dim },
      metric: 'cosine',
      count: n,
      hnsw: { m: hnsw.m, ef_construction: hnsw.efConstruction, random_seed: hnsw.randomSeed },
      labels: labels === null ? null : { names: [...(input.labelNames ?? [])] },
      reference_stats: {
        k,
        loo_mean_knn_quantiles: looMeanQuantiles,
        loo_kth_knn_quantiles: looKthQuantiles,
        loo_relative_density_quantiles: looRelativeQuantiles,
        loo_score_quantiles: looScoreQuantiles,
      },
      scoring: { density_weight: input.densityWeight },
      source: input.source,
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

