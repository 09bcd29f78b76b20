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
/**
 * Each reference's leave-one-out distance to its k-th nearest other reference (its k-NN
 * radius), little-endian float32, in row order. Optional: bundles written before it lack it,
 * and then the reverse-neighbour signal is absent.
 */
export const KTH_RADII_FILE = 'loo-kth.f32';
export const MANIFEST_FILE = 'manifest.json';
/**
 * The class-conditional Gaussian, float64 LE: the within-class Cholesky factor (dim²), the
 * whitened class means (classes × dim), the global factor (dim²), the whitened global mean (dim).
 */
export const GAUSSIAN_FILE = 'gaussian.f64';

/**
 * The HNSW distance of a bundle, as hnswlib computes it: cosine (1 - cosine similarity), l2
 * (squared Euclidean) or ip (1 - inner product). It must be the encoder's metric (the model
 * manifest's); bundles written before it was stored are cosine.
 */
export const BUNDLE_METRICS = ['cosine', 'l2', 'ip'] as const;
export type BundleMetric = (typeof BUNDLE_METRICS)[number];

/** The HNSW file of shard `s` of a bundle with `shards` shards (`index.hnsw` when unsharded). */
export function shardFile(s: number, shards: number): string {
  return shards === 1 ? INDEX_FILE : `index-${s}.hnsw`;
}

const sortedNumbers = z
  .array(z.number().finite().nonnegative())
  .min(2)
  .refine((a) => a.every((v, i) => i === 0 || (a[i - 1] as number) <= v), 'must be ascending');

const finite = z.number().finite();
const sortedFinite = z
  .array(finite)
  .min(2)
  .refine((a) => a.every((v, i) => i === 0 || (a[i - 1] as number) <= v), 'must be ascending');

/** A logistic model over named features, standardised, with an isotonic map to predicted accuracy. */
const logisticFields = {
  features: z.array(z.string().min(1)).min(1),
  mean: z.array(finite),
  scale: z.array(finite.positive()),
  weights: z.array(finite),
  bias: finite,
  /** Predicted accuracy at ascending raw scores, interpolated linearly between knots. */
  isotonic: z.object({ x: z.array(finite).min(1), y: z.array(z.number().min(0).max(1)).min(1) }),
  /** How the fit went, for people: split sizes, the probe's held-out accuracy, ... */
  fit: z.record(z.string(), z.unknown()),
};

/**
 * A combination of the signals fitted at build time on a held-out labelled split of the
 * references: a logistic regression of the downstream probe's error on standardised
 * features, and an isotonic map from its output to the predicted accuracy.
 */
export const combinationSchema = z
  .object({
    kind: z.literal('logistic'),
    ...logisticFields,
    /**
     * The combination with the downstream model's signals beside these (scoring/model-signals.ts),
     * for samples that carry a `prediction`; the one above scores the others. Its uncertainty is
     * the raw score's rank among `score_quantiles`, the held-out references' own raw scores.
     * Optional: bundles without it, and loaders before it (which drop it), score as before.
     */
    with_model: z
      .object({ ...logisticFields, score_quantiles: sortedFinite })
      .refine((c) => c.mean.length === c.features.length && c.scale.length === c.features.length && c.weights.length === c.features.length, {
        message: 'with_model: mean, scale and weights need one value per feature',
      })
      .optional(),
  })
  .refine((c) => c.mean.length === c.features.length && c.scale.length === c.features.length && c.weights.length === c.features.length, {
    message: 'mean, scale and weights need one value per feature',
  })
  .refine((c) => c.isotonic.x.length === c.isotonic.y.length && c.isotonic.x.every((v, i) => i === 0 || (c.isotonic.x[i - 1] as number) <= v), {
    message: 'isotonic needs ascending x and one y per x',
  });

export type Combination = z.infer<typeof combinationSchema>;

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
  /** Absent in bundles written before other metrics existed: those are cosine. */
  metric: z.enum(BUNDLE_METRICS).default('cosine'),
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
  scoring: z.object({
    density_weight: z.number().min(0).max(1),
    /** The fitted combination (see scoring/combine.ts); absent: the label-free fallback. */
    combination: combinationSchema.optional(),
    /** The class-conditional Gaussian in GAUSSIAN_FILE and the references' own distances under it. */
    gaussian: z
      .object({
        classes: z.number().int().min(2),
        class_distance_quantiles: sortedFinite,
        relative_quantiles: sortedFinite,
        /**
         * Folds the two quantile lists were cross-fitted over; absent (bundles written before
         * it): in-sample, which puts the out-of-distribution cut too low. Readers that do not
         * know the key ignore it, so the format version stays.
         */
        cross_fit_folds: z.number().int().min(2).optional(),
      })
      .optional(),
  }),
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
