/** Messages between the encoder and its inference thread. */

/** What the model itself declares about one input or output (onnxruntime's value metadata). */
export interface TensorInfo {
  readonly name: string;
  /** Element type (float32, int64, uint8, ...); null for a non-tensor value. */
  readonly type: string | null;
  /** Dimensions: a number where the model fixes it, a name where it is symbolic; empty when unknown. */
  readonly shape: readonly (number | string)[];
}

/** Per-feature preprocessing (x * scale - mean) / std, one value or one per feature; null when it is the identity. */
export interface ThreadPreprocess {
  readonly scale: number;
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

export type Pooling = 'none' | 'mean' | 'cls';

export type InitMessage =
  | {
      /** A features or image model: rows of inputDim numbers, reshaped to [n, ...dims]. */
      readonly kind: 'tensor';
      readonly modelPath: string;
      readonly inputName: string;
      readonly outputName: string;
      /** The input shape after the batch dimension; its product is the row length. */
      readonly dims: readonly number[];
      readonly dtype: 'float32' | 'uint8';
      /** A model with a fixed batch size runs exactly this many rows (the last run padded); null: any. */
      readonly fixedBatch: number | null;
      readonly preprocess: ThreadPreprocess | null;
      /** none: the output is [n, dim]; mean (plain token mean) / cls (token 0): it is [n, tokens, dim]. */
      readonly pooling: Pooling;
      readonly intraOpThreads: number;
    }
  | {
      readonly kind: 'text';
      readonly modelPath: string;
      /** Absolute path of the tokenizer.json. */
      readonly tokenizerPath: string;
      readonly maxTokens: number;
      readonly inputIds: string;
      readonly attentionMask: string;
      readonly tokenTypeIds: string | null;
      /** Put before every text before tokenizing. */
      readonly prefix: string;
      /** The output: [batch, tokens, dim] pooled (mean: over the attention mask; cls: token 0), or [batch, dim] with none. */
      readonly outputName: string;
      readonly pooling: Pooling;
      readonly intraOpThreads: number;
    };

/** n rows of input_dim values (features and image models). */
export interface EmbedRequest {
  readonly type: 'features';
  readonly id: number;
  readonly n: number;
  readonly data: Float32Array;
}

/** Texts to tokenize, pad to the longest and embed in one run (text models). */
export interface EmbedTextRequest {
  readonly type: 'text';
  readonly id: number;
  readonly texts: readonly string[];
}

export type ThreadRequest = EmbedRequest | EmbedTextRequest;

export type ThreadReply =
  | {
      readonly type: 'ready';
      readonly inputNames: readonly string[];
      readonly outputNames: readonly string[];
      /** The model's declared inputs and outputs; empty when this onnxruntime does not report them. */
      readonly inputs: readonly TensorInfo[];
      readonly outputs: readonly TensorInfo[];
    }
  | { readonly type: 'init-failed'; readonly message: string }
  /** The pooled output [n, dim], before the encoder's L2 normalisation (cosine models). */
  | { readonly type: 'result'; readonly id: number; readonly data: Float32Array; readonly dims: readonly number[] }
  | { readonly type: 'error'; readonly id: number; readonly message: string };
