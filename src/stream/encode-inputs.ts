import type { InputSpec, SampleInput } from '../contracts/index.js';

/** What a text encoder adds to the scorer's Embedder (OnnxEncoder has both). */
export interface TextEmbedding {
  /** The model's input kind; absent means features. */
  readonly inputKind?: 'features' | 'text' | 'image';
  /** Embeds texts in runs of at most `batch`, calling `between` after each run; rows L2-normalised. */
  embedTexts?(texts: readonly string[], opts: { readonly batch?: number; readonly between?: (done: number) => Promise<void> | void }): Promise<Float32Array>;
}

/** The encoder calls the scorer makes, by input kind. */
export interface InputEncoder extends TextEmbedding {
  readonly dim: number;
  readonly inputDim: number;
  embedAll(features: Float32Array, n: number, batch: number, between?: (done: number) => Promise<void> | void): Promise<Float32Array>;
}

/** What parseSample accepts for this encoder: its input kind (and `embedding` inputs). */
export function inputSpecFor(encoder: InputEncoder, maxBytes: number): InputSpec {
  return encoder.inputKind === 'text'
    ? { inputKind: 'text', embeddingDim: encoder.dim, maxBytes }
    : { inputKind: 'features', inputDim: encoder.inputDim, embeddingDim: encoder.dim, maxBytes };
}

/**
 * One embedding per input, in order: features rows in one embedAll pass, texts in one
 * embedTexts pass, `embedding` inputs as they came (the encoder is skipped). `between` runs
 * after each ONNX run (the consumer heartbeat).
 */
export async function encodeInputs(encoder: InputEncoder, inputs: readonly SampleInput[], batch: number, between: () => Promise<void>): Promise<Float32Array[]> {
  const dim = encoder.dim;
  const features: Float32Array[] = [];
  const texts: string[] = [];
  for (const input of inputs) {
    if (input.kind === 'features') features.push(input.values);
    else if (input.kind === 'text') texts.push(input.text);
  }
  let fromFeatures: Float32Array = new Float32Array(0);
  if (features.length > 0) {
    const rows = new Float32Array(features.length * encoder.inputDim);
    features.forEach((v, i) => rows.set(v, i * encoder.inputDim));
    fromFeatures = await encoder.embedAll(rows, features.length, batch, () => between());
  }
  let fromTexts: Float32Array = new Float32Array(0);
  if (texts.length > 0) {
    // parseSample accepts text only when the encoder's kind is text, so this holds; a plain error otherwise.
    if (encoder.embedTexts === undefined) throw new TypeError('text inputs reached an encoder without embedTexts');
    fromTexts = await encoder.embedTexts(texts, { batch, between: () => between() });
  }
  let f = 0;
  let t = 0;
  return inputs.map((input) => {
    if (input.kind === 'features') return fromFeatures.subarray(f * dim, (f++ + 1) * dim);
    if (input.kind === 'text') return fromTexts.subarray(t * dim, (t++ + 1) * dim);
    if (input.kind === 'image') throw new TypeError('image inputs reached an encoder without an image preprocessor');
    return input.values;
  });
}
