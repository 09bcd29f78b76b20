export type { DensityStats, GaussianParams, GaussianStats, Neighbors, ReferenceStats } from './types.js';
export { IndexSnapshot } from './snapshot.js';
export {
  buildBundle,
  movePointer,
  DEFAULT_HNSW,
  PARALLEL_MIN_REFERENCES,
  STAT_QUANTILES,
  type BuildInput,
  type BuildOptions,
  type BuildPhase,
  type BuildResult,
  type HnswParams,
  type LeaveOneOutView,
  type PreviousBundle,
  type ScoringFit,
} from './builder.js';
export { ReservoirSampler, reservoirSample, stratifiedSample, subsampleRows, DEFAULT_MIN_PER_LABEL, type SubsampleSpec } from './subsample.js';
export { loadBundle, loadCurrentBundle, readPointer, type LoadOptions } from './loader.js';
export { empiricalQuantiles } from './quantiles.js';
export { sha256File } from '../util/sha256.js';
export { BUNDLE_FORMAT_VERSION, SUPPORTED_BUNDLE_FORMATS, MAX_SHARDS, shardFile, POINTER_FILE, MANIFEST_FILE, INDEX_FILE, IDS_FILE, LABELS_FILE, RADII_FILE, KTH_RADII_FILE, GAUSSIAN_FILE, checkManifest, BUNDLE_METRICS, type BundleManifest, type BundleMetric, type Combination } from './manifest.js';
export { SearchThread } from './threaded-search.js';
export { BundleRefresher, type RefreshOutcome, type RefresherOptions } from './refresher.js';
export { pruneBundles } from './retention.js';
export {
  HttpBundleStore,
  LocalBundleStore,
  isVersionName,
  loadCurrentFromStore,
  parseStoreManifest,
  type BundleStore,
  type HttpBundleStoreOptions,
  type StoreEvent,
} from './store.js';
