import { z } from 'zod';
import { ErrorCodes, QualmError } from '../errors.js';

/**
 * The newest bundle format this qualm writes and reads. Format 1 is a single `index.hnsw`;
 * format 2 adds `hnsw.shards` and one `index-<s>.hnsw` per shard. A single-shard build is
 * still written as format 1, so that older workers read it.
 */
export const BUNDLE_FORMAT_VERSION = 2;
/** Every format this qualm reads. */
export const SUPPORTED_BUNDLE_FORMATS: readonly number[] = [1, 2];
/** Most shards a bundle may have (shard numbers are stored in a byte per reference). */
export const MAX_SHARDS = 64;
export const POINTER_FILE = 'CURRENT';
export const INDEX_FILE = 'index.hnsw';
export const IDS_FILE = 'ids.json';
export const LABELS_FILE = 'labels.json';
/** Each reference's leave-one-out mean kNN distance, little-endian float32, in row order. */
export const RADII_FILE = 'loo-radii.f32';
export const MANIFEST_FILE = 'manifest.json';

/** The HNSW file of shard `s` of a bundle with `shards` shards (`index.hnsw` when unsharded). */
export function shardFile(s: number, shards: number): string {
  return shards === 1 ? INDEX_FILE : `index-${s}.hnsw`;
}

const sortedNumbers = z
  .array(z.number().finite().nonnegative())
  .min(2)
  .refine((a) => a.every((v, i) => i === 0 || (a[i - 1] as number) <= v), 'must be ascending');

export const bundleManifestSchema = z.object({
  format_version: z.union([z.literal(1), z.literal(2)]),
  version: z.string().regex(/^[A-Za-z0-9._-]+$/),
  created_at: z.string(),
  model: z.object({
    name: z.string(),
    version: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    dim: z.number().int().positive(),
  }),
  metric: z.literal('cosine'),
  count: z.number().int().positive(),
  hnsw: z.object({
    m: z.number().int().positive(),
    ef_construction: z.number().int().positive(),
    random_seed: z.number().int().nonnegative(),
    /** Independent HNSW indexes over disjoint rows (labels are global rows); absent means 1. */
    shards: z.number().int().min(1).max(MAX_SHARDS).optional(),
  }),
  labels: z.object({ names: z.array(z.string()) }).nullable(),
  reference_stats: z.object({
    k: z.number().int().positive(),
    loo_mean_knn_quantiles: sortedNumbers,
    loo_kth_knn_quantiles: sortedNumbers,
    loo_relative_density_quantiles: sortedNumbers,
    loo_score_quantiles: sortedNumbers.nullable(),
  }),
  /** Parameters of the scoring the score quantiles were computed with; workers use them. */
  scoring: z.object({ density_weight: z.number().min(0).max(1) }),
  source: z.record(z.string(), z.unknown()),
  files: z.record(z.string(), z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().nonnegative() })),
}).refine((m) => m.format_version === 2 || (m.hnsw.shards ?? 1) === 1, { message: 'a format 1 bundle has a single shard', path: ['hnsw', 'shards'] });

export type BundleManifest = z.infer<typeof bundleManifestSchema>;

/** QUALM_BUNDLE_INVALID about one bundle version. */
export function bundleInvalid(version: string, message: string, cause?: unknown): QualmError {
  return new QualmError(ErrorCodes.BUNDLE_INVALID, `bundle ${version}: ${message}`, {
    context: { bundleVersion: version },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * A parsed manifest.json of bundle `version`, checked: the format version first (a clear
 * message for an unknown one), then the schema, then that it names `version`.
 */
export function checkManifest(version: string, doc: unknown): BundleManifest {
  const format = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>).format_version : undefined;
  if (typeof format !== 'number' || !SUPPORTED_BUNDLE_FORMATS.includes(format)) {
    throw bundleInvalid(version, `bundle format version ${JSON.stringify(format)} is not supported: this qualm reads formats ${SUPPORTED_BUNDLE_FORMATS.join(', ')}`);
  }
  const parsed = bundleManifestSchema.safeParse(doc);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw bundleInvalid(version, `manifest.json is invalid: ${detail}`);
  }
  if (parsed.data.version !== version) throw bundleInvalid(version, `manifest names version ${parsed.data.version}`);
  return parsed.data;
}
