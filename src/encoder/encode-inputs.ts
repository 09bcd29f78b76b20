import type { InputSpec, SampleInput } from '../contracts/index.js';
import { preprocessImages } from './image-preprocess.js';
import type { ImageSpec } from './model-manifest.js';
import type { ErrorCode } from '../errors.js';

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
  /** Values per features or image row (an image model: the product of its input shape after the batch). */
  readonly inputDim: number;
  /** An image model's manifest, which says how its images are decoded and preprocessed (OnnxEncoder has it). */
  readonly imageSpec?: ImageSpec | undefined;
  embedAll(features: Float32Array, n: number, batch: number, between?: (done: number) => Promise<void> | void): Promise<Float32Array>;
}

/** An input the encoder stage refused (an undecodable image, say): its DLQ code and a readable message. */
export interface RejectedInput {
  readonly code: ErrorCode;
  readonly message: string;
}

/** What encodeInputs gives per input: its embedding, or why it was refused. */
export type EncodedInput = Float32Array | RejectedInput;

export interface EncodeOptions {
  /** Images decoded at once (default: the image preprocessor's, DEFAULT_IMAGE_CONCURRENCY). */
  readonly imageConcurrency?: number;
  /** Stops the image preprocessing between images. */
  readonly signal?: AbortSignal;
}

/** What parseSample accepts for this encoder: its input kind (and `embedding` inputs). */
export function inputSpecFor(encoder: InputEncoder, maxBytes: number): InputSpec {
  if (encoder.inputKind === 'text') return { inputKind: 'text', embeddingDim: encoder.dim, maxBytes };
  if (encoder.inputKind === 'image') return { inputKind: 'image', embeddingDim: encoder.dim, maxBytes };
  return { inputKind: 'features', inputDim: encoder.inputDim, embeddingDim: encoder.dim, maxBytes };
}

/**
 * One result per input, in order: features rows and preprocessed images in one embedAll
 * pass, texts in one embedTexts pass, `embedding` inputs as they came (the encoder is
 * skipped). An image that cannot be decoded or preprocessed is a RejectedInput with its
 * QUALM_IMAGE_* code; the other inputs are embedded all the same. `between` runs after the
 * image preprocessing and after each ONNX run (the consumer heartbeat).
 */
export async function encodeInputs(
  encoder: InputEncoder,
  inputs: readonly SampleInput[],
  batch: number,
  between: () => Promise<void>,
  opts: EncodeOptions = {},
): Promise<EncodedInput[]> {
  const dim = encoder.dim;
  const inputDim = encoder.inputDim;
  const texts: string[] = [];
  const images: Buffer[] = [];
  for (const input of inputs) {
    if (input.kind === 'text') texts.push(input.text);
    else if (input.kind === 'image') images.push(input.bytes);
  }

  let prepared: readonly (Float32Array | RejectedInput)[] = [];
  if (images.length > 0) {
    // parseSample accepts images only when the encoder's kind is image, so this holds; a plain error otherwise.
    const spec = encoder.imageSpec;
    if (spec === undefined) throw new TypeError('image inputs reached an encoder without an image spec');
    const results = await preprocessImages(spec, images, {
      ...(opts.imageConcurrency === undefined ? {} : { concurrency: opts.imageConcurrency }),
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    });
    prepared = results.map((r) => (r.ok ? r.values : { code: r.code, message: r.message }));
    await between();
  }

  // Row r of the one embedAll pass, per input (features, or an image that was preprocessed); -1 otherwise.
  const rowOf = new Int32Array(inputs.length).fill(-1);
  const rows: Float32Array[] = [];
  let img = 0;
  inputs.forEach((input, i) => {
    let row: Float32Array | undefined;
    if (input.kind === 'features') row = input.values;
    else if (input.kind === 'image') {
      const p = prepared[img++];
      if (p instanceof Float32Array) row = p;
    }
    if (row === undefined) return;
    if (row.length !== inputDim) throw new TypeError(`an input row has ${row.length} values, the encoder takes ${inputDim}`);
    rowOf[i] = rows.length;
    rows.push(row);
  });
  let fromRows: Float32Array = new Float32Array(0);
  if (rows.length > 0) {
    const flat = new Float32Array(rows.length * inputDim);
    rows.forEach((v, r) => flat.set(v, r * inputDim));
    fromRows = await encoder.embedAll(flat, rows.length, batch, () => between());
  }
  let fromTexts: Float32Array = new Float32Array(0);
  if (texts.length > 0) {
    // parseSample accepts text only when the encoder's kind is text, so this holds; a plain error otherwise.
    if (encoder.embedTexts === undefined) throw new TypeError('text inputs reached an encoder without embedTexts');
    fromTexts = await encoder.embedTexts(texts, { batch, between: () => between() });
  }

  let t = 0;
  img = 0;
  return inputs.map((input, i): EncodedInput => {
    const r = rowOf[i] as number;
    if (r >= 0) {
      if (input.kind === 'image') img++;
      return fromRows.subarray(r * dim, (r + 1) * dim);
    }
    if (input.kind === 'text') return fromTexts.subarray(t * dim, (t++ + 1) * dim);
    if (input.kind === 'image') return prepared[img++] as RejectedInput;
    if (input.kind === 'features') throw new TypeError('a features row was not embedded');
    return input.values;
  });
}
