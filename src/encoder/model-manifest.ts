import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ErrorCodes, QualmError, describeError } from '../errors.js';

/**
 * The closed interval `[low, high]` that a features model's wire values lie in (before its
 * preprocessing): two finite numbers, low below high. A sample with a value outside it goes to
 * the DLQ as QUALM_OUT_OF_RANGE (raw 0..255 pixels sent to a model that takes [0, 1], say).
 */
export const valueRangeSchema = z
  .tuple([z.number(), z.number()])
  .refine(([lo, hi]) => lo < hi, { message: 'expected [low, high] with low below high' })
  .describe('The closed interval [low, high] every wire feature value must lie in, before preprocess (e.g. [0, 1] for pixels already divided by 255); a sample with a value outside goes to the DLQ as QUALM_OUT_OF_RANGE. Absent: any finite value.');

/** A model that takes a fixed-length feature vector (e.g. pixels) and returns the embedding. */
export const featuresManifestSchema = z.object({
  name: z.string().min(1),
  version: z.string().min(1),
  input_kind: z.literal('features'),
  input_name: z.string().min(1),
  input_dim: z.number().int().positive(),
  output_name: z.string().min(1),
  dim: z.number().int().positive(),
  normalized: z.boolean(),
  /** The range of the feature values a sample may carry (format 2's `input.value_range`). */
  value_range: valueRangeSchema.optional(),
});

/**
 * A transformer text encoder (a BERT-style sentence-transformers export): the text is
 * tokenized with a Hugging Face `tokenizer.json`, truncated to `max_tokens` (special tokens
 * included), padded to the longest text of the run, and the token-level output is mean-pooled
 * over the attention mask; the encoder L2-normalises the pooled vector.
 */
export const textManifestSchema = z.object({
  name: z.string().min(1),
  version: z.string().min(1),
  input_kind: z.literal('text'),
  /** The Hugging Face tokenizer.json, relative to the model file's directory (or absolute). */
  tokenizer: z.string().min(1),
  /** Longest token sequence the model sees, special tokens included; longer texts are truncated. */
  max_tokens: z.number().int().min(2).max(8192),
  /** How token vectors become one vector: the attention-mask mean (sentence-transformers). */
  pooling: z.literal('mean'),
  /** The model's int64 [batch, tokens] inputs; token_type_ids only when the model takes them. */
  input_names: z.object({
    input_ids: z.string().min(1),
    attention_mask: z.string().min(1),
    token_type_ids: z.string().min(1).optional(),
  }),
  /** The token-level output [batch, tokens, dim] that is pooled. */
  output_name: z.string().min(1),
  dim: z.number().int().positive(),
});

const manifestBaseSchema = z.object({ name: z.string().min(1), version: z.string().min(1), input_kind: z.enum(['features', 'text']) });

/** The JSON file beside every ONNX model: what it takes and what it returns. */
export const modelManifestSchema = z.discriminatedUnion('input_kind', [featuresManifestSchema, textManifestSchema]);

export type FeaturesManifest = z.infer<typeof featuresManifestSchema>;
export type TextManifest = z.infer<typeof textManifestSchema>;
export type ModelManifest = z.infer<typeof modelManifestSchema>;
export type InputKind = ModelManifest['input_kind'];

/** Refusal of one manifest, every issue as `path: what was expected`. */
function invalid(path: string, issues: readonly { readonly path: readonly PropertyKey[]; readonly message: string }[]): QualmError {
  const detail = issues.map((i) => `${i.path.length === 0 ? '(top level)' : i.path.map(String).join('.')}: ${i.message}`).join('; ');
  return new QualmError(ErrorCodes.MODEL_INVALID, `model manifest ${path} is invalid: ${detail}`, { context: { path } });
}

/** A format 1 document (no format_version) checked by the format 1 schemas. */
function parseFormat1(doc: unknown, path: string): ModelManifest {
  const parsed = modelManifestSchema.safeParse(doc);
  if (!parsed.success) {
    // The fields every kind has first, so that a manifest without a (known) input_kind names all its problems.
    const base = manifestBaseSchema.safeParse(doc);
    throw invalid(path, base.success ? parsed.error.issues : base.error.issues);
  }
  return parsed.data;
}

/**
 * Reads a model manifest of any supported format as the encoder uses it: a file with
 * `format_version: 2` is checked by modelManifestV2Schema, one without is format 1 and is
 * converted by upgradeManifest; any other version is refused, naming those this qualm reads.
 * `where` names the manifest in errors (its path).
 */
export function parseModelManifest(doc: unknown, where: string): ModelSpec {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid(where, [{ path: [], message: 'expected a JSON object' }]);
  const format = (doc as Record<string, unknown>).format_version;
  if (format === undefined) return upgradeManifest(parseFormat1(doc, where));
  if (format !== MODEL_MANIFEST_FORMAT) {
    throw invalid(where, [{ path: ['format_version'], message: `${JSON.stringify(format)} is not a format this qualm reads: 2, or no format_version for format 1` }]);
  }
  const kind = (doc as Record<string, unknown>).input_kind;
  if (typeof kind !== 'string' || !(MODEL_INPUT_KINDS as readonly string[]).includes(kind)) {
    // The fields every kind has too, so that one pass names every problem.
    const base = manifestBaseV2Schema.safeParse(doc);
    throw invalid(where, [
      { path: ['input_kind'], message: `expected one of ${MODEL_INPUT_KINDS.join(', ')}, got ${JSON.stringify(kind)}` },
      ...(base.success ? [] : base.error.issues.filter((i) => i.path[0] !== 'input_kind')),
    ]);
  }
  const parsed = modelManifestV2Schema.safeParse(doc);
  if (!parsed.success) throw invalid(where, parsed.error.issues);
  return parsed.data;
}

/** Reads and checks the manifest at `path` (see parseModelManifest): always a format 2 ModelSpec. */
export async function readModelManifest(path: string): Promise<ModelSpec> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new QualmError(ErrorCodes.MODEL_INVALID, `cannot read model manifest ${path}: ${describeError(err)}`, { cause: err, context: { path } });
  }
  return parseModelManifest(doc, path);
}

/** Values per row of a features or image model's input tensor: the product of the shape after the batch; 0 for text models. */
export function inputTensorDim(spec: ModelSpec): number {
  if (spec.input_kind === 'text') return 0;
  return spec.input.shape.slice(1).reduce((a, b) => a * b, 1);
}

/** The fixed batch size of a features or image model (shape[0] > 0), or null when any batch size runs. */
export function fixedBatch(spec: ModelSpec): number | null {
  if (spec.input_kind === 'text') return null;
  const b = spec.input.shape[0] ?? -1;
  return b > 0 ? b : null;
}

// ---------------------------------------------------------------------------------------------
// Format 2: one manifest shape for any encoder (features, image or text input), with the
// input tensor, the preprocessing, the output and the metric spelled out. A manifest without
// `format_version` is format 1 (the two schemas above) and reads as before: see resolveManifest.
// ---------------------------------------------------------------------------------------------

export const MODEL_MANIFEST_FORMAT = 2;

/** Element type of a features or image input tensor. */
export const TENSOR_DTYPES = ['float32', 'uint8'] as const;
/**
 * How an image tensor is laid out after the batch dimension: NCHW or NHWC (4-d inputs), or flat,
 * a 2-d [batch, C*H*W] input holding the channel-major (CHW) values, for models that flatten
 * their pixels (the demo encoder takes [n, 784]); flat needs `preprocess.size`.
 */
export const IMAGE_LAYOUTS = ['NCHW', 'NHWC', 'flat'] as const;
export const POOLINGS = ['none', 'mean', 'cls'] as const;
export const METRICS = ['cosine', 'l2', 'ip'] as const;
export type Metric = (typeof METRICS)[number];
/** The input kinds a format 2 manifest names. */
export const MODEL_INPUT_KINDS = ['features', 'image', 'text'] as const;

/** A batch dimension (-1, or a fixed positive size) followed by positive dimensions. */
const shapeSchema = z
  .array(z.number().int())
  .min(2)
  .refine((s) => s[0] === -1 || (s[0] ?? 0) > 0, { message: 'the first dimension is the batch: -1 (any) or a positive size' })
  .refine((s) => s.slice(1).every((d) => d > 0), { message: 'dimensions after the batch must be positive integers' });

/** One number for every channel, or one per channel. */
const perChannel = z.union([z.number().finite(), z.array(z.number().finite()).min(1)]);

/** Checks a mean/std pair: one value or `n` of them (`what`: per feature / per channel), std never 0. */
function checkPerValue(ctx: z.RefinementCtx, at: readonly string[], p: { mean: number | number[]; std: number | number[] }, n: number, what: string): void {
  for (const key of ['mean', 'std'] as const) {
    const v = p[key];
    if (Array.isArray(v) && v.length !== n && v.length !== 1) ctx.addIssue({ code: 'custom', path: [...at, key], message: `expected one number or ${n} (one ${what}), got ${v.length}` });
  }
  const std = Array.isArray(p.std) ? p.std : [p.std];
  if (std.some((v) => v === 0)) ctx.addIssue({ code: 'custom', path: [...at, 'std'], message: 'expected non-zero values (the input is divided by them)' });
}

const outputSchema = z.strictObject({
  name: z.string().min(1).describe('The ONNX output that holds the embedding ([batch, dim], or [batch, tokens, dim] when pooled).'),
  pooling: z.enum(POOLINGS).default('none').describe('none: the output is [batch, dim]; mean / cls: a token output [batch, tokens, dim] pooled to [batch, dim].'),
  normalized: z.boolean().default(false).describe('The model already returns unit-length rows (informative: qualm model check measures it).'),
});

const commonV2 = {
  format_version: z.literal(MODEL_MANIFEST_FORMAT).describe('2 for this format; a manifest without format_version is format 1.'),
  name: z.string().min(1).describe('The model name: bundles and review records name it.'),
  version: z.string().min(1).describe('The model version: review records carry name@version.'),
  output: outputSchema,
  dim: z.number().int().positive().describe('Embedding dimension after pooling.'),
  metric: z.enum(METRICS).default('cosine').describe('The distance the reference bundle uses: cosine (rows are L2-normalised first), l2 (squared Euclidean, as hnswlib reports it) or ip (1 - inner product: rows of norm at most 1). Default cosine.'),
};

export const featuresPreprocessSchema = z.strictObject({
  scale: z.number().finite().default(1).describe('Multiplies every value first (e.g. 1/255 for raw pixels). Default 1.'),
  mean: perChannel.default(0).describe('Subtracted after scaling: one value, or one per feature. Default 0.'),
  std: perChannel.default(1).describe('Divides after the mean: one value, or one per feature (non-zero). Default 1.'),
});

/** A model that takes a fixed-length numeric vector per sample. */
export const featuresManifestV2Schema = z
  .object({
    ...commonV2,
    input_kind: z.literal('features'),
    input: z.strictObject({
      name: z.string().min(1).describe('The ONNX input the rows are fed to.'),
      dtype: z.enum(TENSOR_DTYPES).default('float32').describe('Element type of the input tensor; uint8 values are rounded and clamped to 0..255. Default float32.'),
      shape: shapeSchema.describe('e.g. [-1, 784], or [-1, 1, 28, 28] when the model wants the features reshaped.'),
      value_range: valueRangeSchema.optional(),
    }),
    preprocess: featuresPreprocessSchema.default({ scale: 1, mean: 0, std: 1 }).describe('(x * scale - mean) / std per feature, before the run; the wire features are the raw values.'),
  })
  .superRefine((m, ctx) => checkPerValue(ctx, ['preprocess'], m.preprocess, m.input.shape.slice(1).reduce((a, b) => a * b, 1), 'per feature'));

export const imagePreprocessSchema = z.strictObject({
  color: z.enum(['rgb', 'grayscale']).describe('Decoded images are converted to this colour mode (grayscale: one channel; rgb: three).'),
  resize: z.union([z.object({ shortest_edge: z.number().int().positive() }).strict(), z.object({ width: z.number().int().positive(), height: z.number().int().positive() }).strict()]).optional().describe('Resize before the crop: shortest_edge scales the shorter side to that many pixels keeping the aspect ratio (torchvision Resize(int)); width + height resize to exactly that size. Absent: the decoded image must already have the input\'s size after the crop.'),
  size: z.object({ width: z.number().int().positive(), height: z.number().int().positive() }).strict().optional().describe('The height and width the image ends at: required for the flat layout, else taken from the input shape.'),
  center_crop: z.boolean().default(false).describe('Centre crop to the input\'s height and width after the resize.'),
  scale: z.number().finite().default(1 / 255).describe('Pixel values 0..255 are multiplied by this (default 1/255).'),
  mean: perChannel.default(0).describe('Subtracted per channel after scaling (default 0).'),
  std: perChannel.default(1).describe('Divides per channel after the mean (default 1).'),
  max_pixels: z.number().int().positive().default(40_000_000).describe('Images with more pixels than this (width × height, before any resize) are refused. Default 40 megapixels.'),
});

/** A model that takes images: encoded PNG / JPEG / WebP, decoded and preprocessed per `preprocess`. */
export const imageManifestSchema = z
  .object({
    ...commonV2,
    input_kind: z.literal('image'),
    input: z.strictObject({
      name: z.string().min(1).describe('The ONNX input the rows are fed to.'),
      dtype: z.enum(TENSOR_DTYPES).default('float32').describe('Element type of the input tensor; uint8 values are rounded and clamped to 0..255. Default float32.'),
      shape: shapeSchema.describe('[batch, channels, height, width] for NCHW, [batch, height, width, channels] for NHWC, [batch, C*H*W] for flat.'),
      layout: z.enum(IMAGE_LAYOUTS).default('NCHW').describe('NCHW or NHWC for 4-d inputs; flat for a 2-d [batch, C*H*W] input holding channel-major values (needs preprocess.size). Default NCHW.'),
    }),
    preprocess: imagePreprocessSchema,
  })
  .superRefine((m, ctx) => {
    const dims = m.input.shape.length - 1;
    const channels = m.preprocess.color === 'rgb' ? 3 : 1;
    checkPerValue(ctx, ['preprocess'], m.preprocess, channels, 'per channel');
    if (m.input.layout === 'flat') {
      if (dims !== 1) ctx.addIssue({ code: 'custom', path: ['input', 'shape'], message: 'the flat layout takes a 2-d input [batch, C*H*W]' });
      const size = m.preprocess.size;
      if (size === undefined) ctx.addIssue({ code: 'custom', path: ['preprocess', 'size'], message: 'the flat layout needs the image size {width, height}' });
      else if (dims === 1 && m.input.shape[1] !== channels * size.width * size.height) {
        ctx.addIssue({ code: 'custom', path: ['input', 'shape'], message: `a flat input of ${m.preprocess.color} ${size.width}x${size.height} images has ${channels * size.width * size.height} values, not ${m.input.shape[1]}` });
      }
      return;
    }
    if (dims !== 3) {
      ctx.addIssue({ code: 'custom', path: ['input', 'shape'], message: `an ${m.input.layout} image input has 4 dimensions: batch and three more` });
      return;
    }
    const c = m.input.layout === 'NCHW' ? m.input.shape[1] : m.input.shape[3];
    if (c !== channels) ctx.addIssue({ code: 'custom', path: ['input', 'shape'], message: `${m.preprocess.color} images have ${channels} channel(s), the ${m.input.layout} shape has ${c}` });
  });

/** A transformer text encoder with a Hugging Face tokenizer. */
export const textManifestV2Schema = z.object({
  ...commonV2,
  input_kind: z.literal('text'),
  tokenizer: z.string().min(1).describe('The Hugging Face tokenizer.json, relative to the model file\'s directory (or absolute).'),
  max_tokens: z.number().int().min(2).max(8192).describe('Longest token sequence the model sees, special tokens included; longer texts are truncated.'),
  input_names: z
    .strictObject({
      input_ids: z.string().min(1),
      attention_mask: z.string().min(1),
      token_type_ids: z.string().min(1).optional(),
    })
    .describe("The model's int64 [batch, tokens] inputs; token_type_ids only when the model takes them."),
  prefix: z.string().default('').describe('Put before every text (e5-style models want e.g. "query: " or "passage: "). Default none.'),
});

/** The fields every format 2 manifest has (to name them all when input_kind is missing or unknown). */
const manifestBaseV2Schema = z.object({ ...commonV2, input_kind: z.enum(MODEL_INPUT_KINDS) });

export const modelManifestV2Schema = z.discriminatedUnion('input_kind', [featuresManifestV2Schema, imageManifestSchema, textManifestV2Schema]);
/** A manifest as the encoder uses it: format 2, defaults filled in (format 1 files are converted). */
export type ModelSpec = z.infer<typeof modelManifestV2Schema>;
export type FeaturesSpec = z.infer<typeof featuresManifestV2Schema>;
export type ImageSpec = z.infer<typeof imageManifestSchema>;
export type TextSpec = z.infer<typeof textManifestV2Schema>;
export type ImagePreprocess = z.infer<typeof imagePreprocessSchema>;
export type ModelInputKind = ModelSpec['input_kind'];

/** A format 1 manifest in format 2's terms: what the encoder has always done with it. */
export function upgradeManifest(m: ModelManifest): ModelSpec {
  if (m.input_kind === 'features') {
    return {
      format_version: MODEL_MANIFEST_FORMAT,
      name: m.name,
      version: m.version,
      input_kind: 'features',
      input: { name: m.input_name, dtype: 'float32', shape: [-1, m.input_dim], ...(m.value_range === undefined ? {} : { value_range: m.value_range }) },
      preprocess: { scale: 1, mean: 0, std: 1 },
      output: { name: m.output_name, pooling: 'none', normalized: m.normalized },
      dim: m.dim,
      metric: 'cosine',
    };
  }
  return {
    format_version: MODEL_MANIFEST_FORMAT,
    name: m.name,
    version: m.version,
    input_kind: 'text',
    tokenizer: m.tokenizer,
    max_tokens: m.max_tokens,
    input_names: m.input_names,
    prefix: '',
    output: { name: m.output_name, pooling: m.pooling, normalized: false },
    dim: m.dim,
    metric: 'cosine',
  };
}

/** What a model declares about one of its inputs or outputs (see onnx-thread: onnxruntime's value metadata). */
export interface DeclaredTensor {
  readonly name: string;
  /** Element type; null for a non-tensor value. */
  readonly type: string | null;
  /** A number where the model fixes the dimension, a name where it is symbolic; empty when unknown. */
  readonly shape: readonly (number | string)[];
}

const showShape = (s: readonly (number | string)[]): string => `[${s.map((d) => (typeof d === 'number' ? String(d) : JSON.stringify(d))).join(', ')}]`;

/**
 * Where a manifest disagrees with the model it describes, one `field: problem` per mismatch
 * (empty when they agree): the names it gives must exist, and where the model fixes a
 * dimension or an element type, the manifest must say the same. Inputs and outputs the model
 * does not describe (older onnxruntime builds) are checked by name only.
 */
export function manifestMismatches(spec: ModelSpec, inputs: readonly DeclaredTensor[], outputs: readonly DeclaredTensor[]): string[] {
  const problems: string[] = [];
  const byName = (list: readonly DeclaredTensor[], name: string): DeclaredTensor | undefined => list.find((t) => t.name === name);
  const names = (list: readonly DeclaredTensor[]): string => list.map((t) => t.name).join(', ');
  const wantInput = (field: string, name: string, dtype: string, rank: number | null, shape: readonly number[] | null): void => {
    const t = byName(inputs, name);
    if (t === undefined) {
      problems.push(`${field}: the model has no input ${JSON.stringify(name)} (its inputs: ${names(inputs)})`);
      return;
    }
    if (t.type !== null && t.type !== dtype) problems.push(`${field}: the model's input ${JSON.stringify(name)} is ${t.type}, the manifest expects ${dtype}`);
    if (t.shape.length === 0) return;
    if (rank !== null && t.shape.length !== rank) {
      problems.push(`${shape === null ? field : field.replace(/\.name$/, '.shape')}: the model's input ${JSON.stringify(name)} has shape ${showShape(t.shape)} (${t.shape.length}-d), the manifest ${shape === null ? `expects ${rank}-d` : `says ${showShape(shape)}`}`);
      return;
    }
    if (shape === null) return;
    // Every dimension the model fixes, the batch included, must be the manifest's; symbolic ones take any size.
    if (t.shape.some((d, i) => typeof d === 'number' && d > 0 && shape[i] !== d)) {
      problems.push(`${field.replace(/\.name$/, '.shape')}: the model's input ${JSON.stringify(name)} has shape ${showShape(t.shape)}, the manifest says ${showShape(shape)}`);
    }
  };
  if (spec.input_kind === 'text') {
    const n = spec.input_names;
    wantInput('input_names.input_ids', n.input_ids, 'int64', 2, null);
    wantInput('input_names.attention_mask', n.attention_mask, 'int64', 2, null);
    if (n.token_type_ids !== undefined) wantInput('input_names.token_type_ids', n.token_type_ids, 'int64', 2, null);
  } else {
    wantInput('input.name', spec.input.name, spec.input.dtype, spec.input.shape.length, spec.input.shape);
  }
  const out = byName(outputs, spec.output.name);
  if (out === undefined) {
    problems.push(`output.name: the model has no output ${JSON.stringify(spec.output.name)} (its outputs: ${names(outputs)})`);
  } else if (out.shape.length > 0) {
    const rank = spec.output.pooling === 'none' ? 2 : 3;
    if (out.shape.length !== rank) {
      problems.push(`output.pooling: the model's output ${JSON.stringify(out.name)} has shape ${showShape(out.shape)}; pooling ${spec.output.pooling} expects ${rank === 2 ? '[batch, dim]' : '[batch, tokens, dim]'}`);
    } else {
      const last = out.shape[rank - 1];
      if (typeof last === 'number' && last > 0 && last !== spec.dim) problems.push(`dim: the model's output ${JSON.stringify(out.name)} has ${last} values per row (shape ${showShape(out.shape)}), the manifest says ${spec.dim}`);
    }
    if (out.type !== null && out.type !== 'float32') problems.push(`output.name: the model's output ${JSON.stringify(out.name)} is ${out.type}; qualm reads float32 embeddings`);
  }
  return problems;
}
