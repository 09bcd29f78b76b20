export type { DensityStats, Neighbors, ReferenceStats } from './types.js';
export { IndexSnapshot } from './snapshot.js';
export { buildBundle, movePointer, DEFAULT_HNSW, STAT_QUANTILES, type BuildInput, type BuildOptions, type BuildPhase, type BuildResult, type HnswParams } from './builder.js';
export { loadBundle, loadCurrentBundle, readPointer, type LoadOptions } from './loader.js';
export { empiricalQuantiles } from './quantiles.js';
export { sha256File } from '../util/sha256.js';
export { BUNDLE_FORMAT_VERSION, POINTER_FILE, MANIFEST_FILE, INDEX_FILE, IDS_FILE, LABELS_FILE, RADII_FILE, type BundleManifest } from './manifest.js';
export { BundleRefresher, type RefreshOutcome, type RefresherOptions } from './refresher.js';
export { pruneBundles } from './retention.js';
