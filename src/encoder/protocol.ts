/** Messages between the encoder and its inference thread. */
export interface InitMessage {
  readonly modelPath: string;
  readonly inputName: string;
  readonly outputName: string;
  readonly inputDim: number;
  readonly intraOpThreads: number;
}

export interface EmbedRequest {
  readonly id: number;
  readonly n: number;
  readonly data: Float32Array;
}

export type ThreadReply =
  | { readonly type: 'ready'; readonly inputNames: readonly string[]; readonly outputNames: readonly string[] }
  | { readonly type: 'init-failed'; readonly message: string }
  | { readonly type: 'result'; readonly id: number; readonly data: Float32Array; readonly dims: readonly number[] }
  | { readonly type: 'error'; readonly id: number; readonly message: string };
