import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ErrorCodes, QualmError, describeError } from '../errors.js';

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

export async function readModelManifest(path: string): Promise<ModelManifest> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new QualmError(ErrorCodes.MODEL_INVALID, `cannot read model manifest ${path}: ${describeError(err)}`, { cause: err, context: { path } });
  }
  const parsed = modelManifestSchema.safeParse(doc);
  if (!parsed.success) {
    // The fields every kind has first, so that a manifest without a (known) input_kind names all its problems.
    const base = manifestBaseSchema.safeParse(doc);
    const issues = base.success ? parsed.error.issues : base.error.issues;
    const detail = issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new QualmError(ErrorCodes.MODEL_INVALID, `model manifest ${path} is invalid: ${detail}`, { context: { path } });
  }
  return parsed.data;
}
