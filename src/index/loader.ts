import { readFile, stat } from 'node:fs/promises';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { join, resolve } from 'node:path';
import hnswlib from 'hnswlib-node';
import { ErrorCodes, QualmError, describeError } from '../errors.js';
import { parseJsonYielding } from '../util/json-yielding.js';
import { sha256File } from '../util/sha256.js';
import {
  IDS_FILE,
  LABELS_FILE,
  MANIFEST_FILE,
  POINTER_FILE,
  RADII_FILE,
  KTH_RADII_FILE,
  GAUSSIAN_FILE,
  bundleInvalid,
  checkManifest,
  shardFile,
  type BundleManifest,
  type BundleMetric,
} from './manifest.js';
import { decodeGaussian } from './gaussian-file.js';
import { IndexSnapshot } from './snapshot.js';
import type { GaussianStats } from './types.js';

export interface LoadOptions {
  /** HNSW ef at query time. */
  efSearch: number;
  /** When set, the bundle must have been built with this model (sha256 of the ONNX file). */
  expectModelSha256?: string;
  /** When set, the bundle must use this distance (the encoder's metric). */
  expectMetric?: BundleMetric;
  /** Number of references checked by the sanity queries after load. */
  sanityQueries?: number;
  /**
   * Checks the manifest beyond its schema (e.g. that the worker computes every feature of
   * its fitted combination); a throw refuses the bundle with its message.
   */
  checkScoring?: (manifest: BundleManifest) => void;
}

/** Reads the version named by `bundleDir/CURRENT`; undefined when there is no pointer yet. */
export async function readPointer(bundleDir: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(join(bundleDir, POINTER_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const version = text.trim();
  if (!/^[A-Za-z0-9._-]+$/.test(version)) {
    throw new QualmError(ErrorCodes.BUNDLE_INVALID, `${join(bundleDir, POINTER_FILE)} does not name a bundle version`, {
      context: { path: join(bundleDir, POINTER_FILE) },
    });
  }
  return version;
}

async function readJson(path: string, version: string, parse: (text: string) => unknown = JSON.parse): Promise<unknown> {
  try {
    return await parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw bundleInvalid(version, `cannot read ${path}: ${describeError(err)}`, err);
  }
}

/** A per-reference float32 distance file of `count` rows, each finite and non-negative. */
async function readDistances(dir: string, version: string, file: string, count: number): Promise<Float32Array> {
  const raw = await readFile(join(dir, file));
  if (raw.length !== count * 4) throw bundleInvalid(version, `${file} holds ${raw.length} bytes, expected ${count * 4}`);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const r = raw.readFloatLE(i * 4);
    if (!Number.isFinite(r) || r < 0) throw bundleInvalid(version, `${file} row ${i} is ${r}, not a distance`);
    out[i] = r;
  }
  return out;
}

/** The class-conditional Gaussian of a bundle: sizes from the manifest, every value finite, positive factor diagonals. */
async function readGaussian(dir: string, version: string, manifest: BundleManifest): Promise<GaussianStats> {
  const meta = manifest.scoring.gaussian;
  if (meta === undefined) throw bundleInvalid(version, 'no gaussian in the manifest');
  if (manifest.files[GAUSSIAN_FILE] === undefined) throw bundleInvalid(version, `manifest lists no checksum for ${GAUSSIAN_FILE}`);
  const dim = manifest.model.dim;
  const classes = meta.classes;
  if (manifest.labels === null || manifest.labels.names.length !== classes) throw bundleInvalid(version, `the gaussian has ${classes} classes, the bundle ${manifest.labels?.names.length ?? 0} labels`);
  const params = decodeGaussian(await readFile(join(dir, GAUSSIAN_FILE)), dim, classes);
  if (typeof params === 'string') throw bundleInvalid(version, `${GAUSSIAN_FILE} ${params}`);
  return {
    params,
    classDistanceQuantiles: meta.class_distance_quantiles,
    relativeQuantiles: meta.relative_quantiles,
    ...(meta.cross_fit_folds === undefined ? {} : { crossFitFolds: meta.cross_fit_folds }),
  };
}

/**
 * Loads one bundle version and verifies it before anyone searches it: manifest schema,
 * every file's size and sha256, the model it was built with, the index's count and
 * dimension, ids and labels, then sanity queries (a stored reference must find itself).
 * Any failure throws QUALM_BUNDLE_INVALID and nothing is returned.
 */
export async function loadBundle(bundleDir: string, version: string, opts: LoadOptions): Promise<IndexSnapshot> {
  const dir = join(bundleDir, version);
  const manifest = checkManifest(version, await readJson(join(dir, MANIFEST_FILE), version));
  if (opts.expectModelSha256 !== undefined && manifest.model.sha256 !== opts.expectModelSha256) {
    throw bundleInvalid(version, `built with model sha256 ${manifest.model.sha256}, but the worker runs ${opts.expectModelSha256}`);
  }
  if (opts.expectMetric !== undefined && manifest.metric !== opts.expectMetric) {
    throw bundleInvalid(version, `uses the ${manifest.metric} metric, but the encoder's manifest says ${opts.expectMetric}`);
  }
  try {
    opts.checkScoring?.(manifest);
  } catch (err) {
    throw bundleInvalid(version, describeError(err), err);
  }
  const shards = manifest.hnsw.shards ?? 1;
  const indexFiles = Array.from({ length: shards }, (_, s) => shardFile(s, shards));
  const required = [...indexFiles, IDS_FILE, RADII_FILE, ...(manifest.labels === null ? [] : [LABELS_FILE])];
  for (const f of required) {
    if (manifest.files[f] === undefined) throw bundleInvalid(version, `manifest lists no checksum for ${f}`);
  }
  for (const [f, expect] of Object.entries(manifest.files)) {
    const p = join(dir, f);
    let size: number;
    try {
      size = (await stat(p)).size;
    } catch (err) {
      throw bundleInvalid(version, `missing file ${f}`, err);
    }
    if (size !== expect.bytes) throw bundleInvalid(version, `${f} is ${size} bytes, manifest says ${expect.bytes}`);
    const sum = await sha256File(p);
    if (sum !== expect.sha256) throw bundleInvalid(version, `${f} checksum mismatch (sha256 ${sum}, manifest says ${expect.sha256})`);
  }

  // Parsed in slices: a refresh must not hold the event loop (a 200k-id file is ~100 ms in one JSON.parse).
  const ids = await readJson(join(dir, IDS_FILE), version, parseJsonYielding);
  if (!Array.isArray(ids) || ids.length !== manifest.count || !ids.every((x) => typeof x === 'string')) {
    throw bundleInvalid(version, `${IDS_FILE} must be an array of ${manifest.count} strings`);
  }
  let labels: number[] | null = null;
  if (manifest.labels !== null) {
    const numLabels = manifest.labels.names.length;
    const raw = await readJson(join(dir, LABELS_FILE), version);
    if (!Array.isArray(raw) || raw.length !== manifest.count || !raw.every((x) => Number.isInteger(x) && x >= -1 && x < numLabels)) {
      throw bundleInvalid(version, `${LABELS_FILE} must be an array of ${manifest.count} label indexes in [-1, ${numLabels})`);
    }
    labels = raw as number[];
  }

  const radii = await readDistances(dir, version, RADII_FILE, manifest.count);
  const kthRadii = manifest.files[KTH_RADII_FILE] === undefined ? null : await readDistances(dir, version, KTH_RADII_FILE, manifest.count);
  if (manifest.scoring.combination !== undefined && kthRadii === null) throw bundleInvalid(version, `a fitted combination needs ${KTH_RADII_FILE}`);
  const gaussian = manifest.scoring.gaussian === undefined ? undefined : await readGaussian(dir, version, manifest);

  // Every shard: readable, of the right dimension; together they hold each row exactly once.
  const indexes: hnswlib.HierarchicalNSW[] = [];
  const shardOf = shards > 1 ? new Uint8Array(manifest.count) : null;
  const seen = new Uint8Array(manifest.count);
  /** The rows each shard holds, for the sanity queries. */
  const shardRows: { size: number; row: (i: number) => number }[] = [];
  for (const [s, f] of indexFiles.entries()) {
    const index = new hnswlib.HierarchicalNSW(manifest.metric, manifest.model.dim);
    try {
      await index.readIndex(join(dir, f));
    } catch (err) {
      throw bundleInvalid(version, `cannot read ${f}: ${describeError(err)}`, err);
    }
    if (index.getNumDimensions() !== manifest.model.dim) {
      throw bundleInvalid(version, `${f} has dimension ${index.getNumDimensions()}, manifest says ${manifest.model.dim}`);
    }
    indexes.push(index);
    if (shards === 1) {
      // One index holds rows 0..count-1 as its labels (the builder's layout): the count is
      // checked here and the labels by the sanity queries below, without listing a large
      // index's ids on the event loop.
      shardRows.push({ size: index.getCurrentCount(), row: (i) => i });
      continue;
    }
    const rows = index.getIdsList();
    for (const r of rows) {
      if (!Number.isInteger(r) || r < 0 || r >= manifest.count || seen[r] === 1) {
        throw bundleInvalid(version, `${f} holds row ${r}, which is out of range or already in another shard`);
      }
      seen[r] = 1;
      if (shardOf !== null) shardOf[r] = s;
    }
    shardRows.push({ size: rows.length, row: (i) => rows[i] as number });
    await yieldToEventLoop();
  }
  const total = shardRows.reduce((a, r) => a + r.size, 0);
  if (total !== manifest.count) {
    throw bundleInvalid(version, `index holds ${total} vectors, manifest says ${manifest.count}`);
  }

  const snapshot = new IndexSnapshot(manifest, indexes, shardOf, ids, labels, radii, kthRadii, gaussian, opts.efSearch, indexFiles.map((f) => resolve(dir, f)));
  // Sanity queries on every shard: a stored reference must find itself through the merged search.
  const probes = opts.sanityQueries ?? 8;
  for (const rows of shardRows) {
    const m = Math.min(probes, rows.size);
    for (let j = 0; j < m; j++) {
      const row = rows.row(Math.floor((j * rows.size) / m));
      await yieldToEventLoop(); // each query can take milliseconds on a large index
      let hit: ReturnType<IndexSnapshot['search']>;
      try {
        hit = snapshot.search(snapshot.vectorOf(row), 1);
      } catch (err) {
        throw bundleInvalid(version, `sanity query failed: reference row ${row} cannot be read back from the index: ${describeError(err)}`, err);
      }
      // Distance, not id: a training set may hold exact duplicates, and either copy is right.
      // Under ip a row is 1 - |x|² from itself, and a longer neighbour may be nearer still.
      const self = manifest.metric === 'ip' ? Math.max(0, 1 - snapshot.vectorOf(row).reduce((s, v) => s + v * v, 0)) : 0;
      if ((hit.distances[0] ?? Infinity) > self + 1e-3) {
        throw bundleInvalid(version, `sanity query failed: reference ${String(ids[row])} is ${hit.distances[0]} from its own nearest neighbour`);
      }
    }
  }
  return snapshot;
}

/** Loads the bundle named by the CURRENT pointer. */
export async function loadCurrentBundle(bundleDir: string, opts: LoadOptions): Promise<IndexSnapshot> {
  const version = await readPointer(bundleDir);
  if (version === undefined) {
    throw new QualmError(ErrorCodes.BUNDLE_MISSING, `no bundle in ${bundleDir} (no ${POINTER_FILE} pointer): run qualm build-index first`, {
      context: { path: bundleDir },
    });
  }
  return loadBundle(bundleDir, version, opts);
}
