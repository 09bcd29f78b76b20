import type { InputEncoder } from '../encoder/index.js';

/** What the scorer needs of an encoder (OnnxEncoder in production). */
export interface Embedder extends InputEncoder {
  readonly manifest: { readonly name: string; readonly version: string };
  /** sha256 of the model file; review records name it beside the embedding they carry. */
  readonly sha256: string;
}
