import { z } from 'zod';

export const BUNDLE_FORMAT_VERSION = 1;
export const POINTER_FILE = 'CURRENT';
export const INDEX_FILE = 'index.hnsw';
export const IDS_FILE = 'ids.json';
export const LABELS_FILE = 'labels.json';
/** Each reference's leave-one-out mean kNN distance, little-endian float32, in row order. */
export const RADII_FILE = 'loo-radii.f32';
export const MANIFEST_FILE = 'manifest.json';

const sortedNumbers = z
  .array(z.number().finite().nonnegative())
  .min(2)
  .refine((a) => a.every((v, i) => i === 0 || (a[i - 1] as number) <= v), 'must be ascending');

export const bundleManifestSchema = z.object({
  format_version: z.literal(BUNDLE_FORMAT_VERSION),
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
});

export type BundleManifest = z.infer<typeof bundleManifestSchema>;
