import type { InputSpec, SampleInput, ValueRange } from '../contracts/index.js';
import { preprocessImages } from './image-preprocess.js';
import type { ImageSpec } from './model-manifest.js';
import { ErrorCodes, describeError, type ErrorCode } from '../errors.js';

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
  /** True when a failed run may belong to its inputs rather than to the encoder (OnnxEncoder has it); absent: never. */
  isInputFailure?(err: unknown): boolean;
  /** True once the encoder has embedded anything (a model that never ran is not judged by its inputs). */
  readonly hasEmbedded?: boolean;
  /** The distance its embeddings are compared by (OnnxEncoder has it; absent: cosine). */
  readonly metric?: 'cosine' | 'l2' | 'ip';
  /** A features model's declared range of wire values (the manifest's value_range; OnnxEncoder has it); absent: any finite value. */
  readonly valueRange?: ValueRange | undefined;
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

/**
 * Embeds items `0..n-1` with `run` (which embeds the items it is given, in order, dim values
 * each). When a run fails for its inputs (`isInputFailure`), it is split in halves until each
 * failing item stands alone: that item becomes a RejectedInput (QUALM_INFERENCE_FAILED) and
 * every other item is embedded as usual, provided the model has embedded something by then
 * (`hasEmbedded`: the other half, or any earlier run); a model that refuses everything fails
 * the whole call instead, as a failure of the encoder. Any other failure is thrown as it is.
 * A batch without a bad input costs exactly the one run it always did.
 */
async function embedIsolating(
  n: number,
  dim: number,
  run: (items: readonly number[]) => Promise<Float32Array>,
  isInputFailure: (err: unknown) => boolean,
  hasEmbedded: () => boolean,
): Promise<(Float32Array | RejectedInput)[]> {
  if (n === 0) return [];
  const out = new Array<Float32Array | RejectedInput>(n);
  const alone: { readonly item: number; readonly err: unknown }[] = [];
  const embed = async (items: readonly number[]): Promise<void> => {
    try {
      const z = await run(items);
      items.forEach((item, r) => (out[item] = z.subarray(r * dim, (r + 1) * dim)));
    } catch (err) {
      if (!isInputFailure(err)) throw err;
      if (items.length === 1) {
        alone.push({ item: items[0] as number, err });
        return;
      }
      const mid = items.length >> 1;
      await embed(items.slice(0, mid));
      await embed(items.slice(mid));
    }
  };
  await embed(Array.from({ length: n }, (_, i) => i));
  // Judged once every other item has had its run: a model that embedded nothing at all is broken, not its inputs.
  if (alone.length > 0 && !hasEmbedded()) throw (alone[0] as { err: unknown }).err;
  for (const { item, err } of alone) out[item] = { code: ErrorCodes.INFERENCE_FAILED, message: `the model cannot embed this input: ${describeError(err)}` };
  return out;
}

/** What parseSample accepts for this encoder: its input kind (and `embedding` inputs), and a features model's value range. */
export function inputSpecFor(encoder: InputEncoder, maxBytes: number): InputSpec {
  const metric = encoder.metric ?? 'cosine';
  if (encoder.inputKind === 'text') return { inputKind: 'text', embeddingDim: encoder.dim, maxBytes, metric };
  if (encoder.inputKind === 'image') return { inputKind: 'image', embeddingDim: encoder.dim, maxBytes, metric };
  const range = encoder.valueRange;
  return { inputKind: 'features', inputDim: encoder.inputDim, embeddingDim: encoder.dim, maxBytes, metric, ...(range === undefined ? {} : { valueRange: range }) };
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
  const isInputFailure = (err: unknown): boolean => encoder.isInputFailure?.(err) === true;
  const hasEmbedded = (): boolean => encoder.hasEmbedded === true;
  const fromRows = await embedIsolating(
    rows.length,
    dim,
    (items) => {
      const flat = new Float32Array(items.length * inputDim);
      items.forEach((r, j) => flat.set(rows[r] as Float32Array, j * inputDim));
      return encoder.embedAll(flat, items.length, batch, () => between());
    },
    isInputFailure,
    hasEmbedded,
  );
  let fromTexts: (Float32Array | RejectedInput)[] = [];
  if (texts.length > 0) {
    // parseSample accepts text only when the encoder's kind is text, so this holds; a plain error otherwise.
    const embedTexts = encoder.embedTexts?.bind(encoder);
    if (embedTexts === undefined) throw new TypeError('text inputs reached an encoder without embedTexts');
    fromTexts = await embedIsolating(texts.length, dim, (items) => embedTexts(items.map((t) => texts[t] as string), { batch, between: () => between() }), isInputFailure, hasEmbedded);
  }

  let t = 0;
  img = 0;
  return inputs.map((input, i): EncodedInput => {
    const r = rowOf[i] as number;
    if (r >= 0) {
      if (input.kind === 'image') img++;
      return fromRows[r] as EncodedInput;
    }
    if (input.kind === 'text') return fromTexts[t++] as EncodedInput;
    if (input.kind === 'image') return prepared[img++] as RejectedInput;
    if (input.kind === 'features') throw new TypeError('a features row was not embedded');
    return input.values;
  });
}
