import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ErrorCodes, QualmError, describeError } from '../errors.js';

/** The JSON file beside every ONNX model: what it takes and what it returns. */
export const modelManifestSchema = z.object({
  name: z.string().min(1),
  version: z.string().min(1),
  input_kind: z.literal('features'),
  input_name: z.string().min(1),
  input_dim: z.number().int().positive(),
  output_name: z.string().min(1),
  dim: z.number().int().positive(),
  normalized: z.boolean(),
});

export type ModelManifest = z.infer<typeof modelManifestSchema>;

export async function readModelManifest(path: string): Promise<ModelManifest> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new QualmError(ErrorCodes.MODEL_INVALID, `cannot read model manifest ${path}: ${describeError(err)}`, { cause: err, context: { path } });
  }
  const parsed = modelManifestSchema.safeParse(doc);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new QualmError(ErrorCodes.MODEL_INVALID, `model manifest ${path} is invalid: ${detail}`, { context: { path } });
  }
  return parsed.data;
}
