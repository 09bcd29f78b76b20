/** Messages between the encoder and its inference thread. */
export type InitMessage =
  | {
      readonly kind: 'features';
      readonly modelPath: string;
      readonly inputName: string;
      readonly outputName: string;
      readonly inputDim: number;
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
      /** The token-level output [batch, tokens, dim], mean-pooled over the mask on the thread. */
      readonly outputName: string;
      readonly intraOpThreads: number;
    };

/** n rows of input_dim features (features models). */
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
  | { readonly type: 'ready'; readonly inputNames: readonly string[]; readonly outputNames: readonly string[] }
  | { readonly type: 'init-failed'; readonly message: string }
  /** The model output [n, dim] (features), or the mask-mean-pooled output [n, dim] (text), before the encoder's L2 normalisation. */
  | { readonly type: 'result'; readonly id: number; readonly data: Float32Array; readonly dims: readonly number[] }
  | { readonly type: 'error'; readonly id: number; readonly message: string };
