import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import { ErrorCodes, QualmError, describeError } from '../errors.js';
import { sha256File } from '../util/sha256.js';
import { BUNDLE_FORMAT_VERSION, IDS_FILE, INDEX_FILE, LABELS_FILE, MANIFEST_FILE, POINTER_FILE, RADII_FILE, bundleManifestSchema, type BundleManifest } from './manifest.js';
import { IndexSnapshot } from './snapshot.js';

export interface LoadOptions {
  /** HNSW ef at query time. */
  efSearch: number;
  /** When set, the bundle must have been built with this model (sha256 of the ONNX file). */
  expectModelSha256?: string;
  /** Number of references checked by the sanity queries after load. */
  sanityQueries?: number;
}

function invalid(version: string, message: string, cause?: unknown): QualmError {
  return new QualmError(ErrorCodes.BUNDLE_INVALID, `bundle ${version}: ${message}`, {
    context: { bundleVersion: version },
    ...(cause === undefined ? {} : { cause }),
  });
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

async function readJson(path: string, version: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw invalid(version, `cannot read ${path}: ${describeError(err)}`, err);
  }
}

/**
 * Loads one bundle version and verifies it before anyone searches it: manifest schema,
 * every file's size and sha256, the model it was built with, the index's count and
 * dimension, ids and labels, then sanity queries (a stored reference must find itself).
 * Any failure throws QUALM_BUNDLE_INVALID and nothing is returned.
 */
export async function loadBundle(bundleDir: string, version: string, opts: LoadOptions): Promise<IndexSnapshot> {
  const dir = join(bundleDir, version);
  const doc = await readJson(join(dir, MANIFEST_FILE), version);
  const format = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>).format_version : undefined;
  if (format !== BUNDLE_FORMAT_VERSION) {
    throw invalid(version, `bundle format version ${JSON.stringify(format)} is not supported: this qualm reads format ${BUNDLE_FORMAT_VERSION}`);
  }
  const parsed = bundleManifestSchema.safeParse(doc);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw invalid(version, `manifest.json is invalid: ${detail}`);
  }
  const manifest: BundleManifest = parsed.data;
  if (manifest.version !== version) throw invalid(version, `manifest names version ${manifest.version}`);
  if (opts.expectModelSha256 !== undefined && manifest.model.sha256 !== opts.expectModelSha256) {
    throw invalid(version, `built with model sha256 ${manifest.model.sha256}, but the worker runs ${opts.expectModelSha256}`);
  }
  const required = [INDEX_FILE, IDS_FILE, RADII_FILE, ...(manifest.labels === null ? [] : [LABELS_FILE])];
  for (const f of required) {
    if (manifest.files[f] === undefined) throw invalid(version, `manifest lists no checksum for ${f}`);
  }
  for (const [f, expect] of Object.entries(manifest.files)) {
    const p = join(dir, f);
    let size: number;
    try {
      size = (await stat(p)).size;
    } catch (err) {
      throw invalid(version, `missing file ${f}`, err);
    }
    if (size !== expect.bytes) throw invalid(version, `${f} is ${size} bytes, manifest says ${expect.bytes}`);
    const sum = await sha256File(p);
    if (sum !== expect.sha256) throw invalid(version, `${f} checksum mismatch (sha256 ${sum}, manifest says ${expect.sha256})`);
  }

  const ids = await readJson(join(dir, IDS_FILE), version);
  if (!Array.isArray(ids) || ids.length !== manifest.count || !ids.every((x) => typeof x === 'string')) {
    throw invalid(version, `${IDS_FILE} must be an array of ${manifest.count} strings`);
  }
  let labels: number[] | null = null;
  if (manifest.labels !== null) {
    const numLabels = manifest.labels.names.length;
    const raw = await readJson(join(dir, LABELS_FILE), version);
    if (!Array.isArray(raw) || raw.length !== manifest.count || !raw.every((x) => Number.isInteger(x) && x >= -1 && x < numLabels)) {
      throw invalid(version, `${LABELS_FILE} must be an array of ${manifest.count} label indexes in [-1, ${numLabels})`);
    }
    labels = raw as number[];
  }

  const rawRadii = await readFile(join(dir, RADII_FILE));
  if (rawRadii.length !== manifest.count * 4) throw invalid(version, `${RADII_FILE} holds ${rawRadii.length} bytes, expected ${manifest.count * 4}`);
  const radii = new Float32Array(manifest.count);
  for (let i = 0; i < manifest.count; i++) {
    const r = rawRadii.readFloatLE(i * 4);
    if (!Number.isFinite(r) || r < 0) throw invalid(version, `${RADII_FILE} row ${i} is ${r}, not a distance`);
    radii[i] = r;
  }

  const index = new hnswlib.HierarchicalNSW('cosine', manifest.model.dim);
  try {
    await index.readIndex(join(dir, INDEX_FILE));
  } catch (err) {
    throw invalid(version, `cannot read ${INDEX_FILE}: ${describeError(err)}`, err);
  }
  if (index.getNumDimensions() !== manifest.model.dim) {
    throw invalid(version, `index has dimension ${index.getNumDimensions()}, manifest says ${manifest.model.dim}`);
  }
  if (index.getCurrentCount() !== manifest.count) {
    throw invalid(version, `index holds ${index.getCurrentCount()} vectors, manifest says ${manifest.count}`);
  }

  const snapshot = new IndexSnapshot(manifest, index, ids, labels, radii, opts.efSearch);
  const probes = Math.min(opts.sanityQueries ?? 8, manifest.count);
  for (let j = 0; j < probes; j++) {
    const row = Math.floor((j * manifest.count) / probes);
    const hit = snapshot.search(snapshot.vectorOf(row), 1);
    if ((hit.distances[0] ?? 1) > 1e-3) {
      throw invalid(version, `sanity query failed: reference ${String(ids[row])} is ${hit.distances[0]} from its own nearest neighbour`);
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
