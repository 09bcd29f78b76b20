export { OnnxEncoder, normalizeRows, type EncoderOptions } from './encoder.js';
export { readModelManifest, modelManifestSchema, type ModelManifest } from './model-manifest.js';
