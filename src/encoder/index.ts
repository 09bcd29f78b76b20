export { OnnxEncoder, normalizeRows, TEXT_RUN_TOKENS, TEXT_RUN_ROWS, type EncoderOptions, type TextEmbedOptions } from './encoder.js';
export {
  readModelManifest,
  modelManifestSchema,
  featuresManifestSchema,
  textManifestSchema,
  type ModelManifest,
  type FeaturesManifest,
  type TextManifest,
  type InputKind,
} from './model-manifest.js';
export {
  preprocessImages,
  imageGeometry,
  sniffImageFormat,
  DEFAULT_IMAGE_CONCURRENCY,
  IMAGE_FORMATS,
  type ImagePrepResult,
  type ImagePrepOptions,
  type ImageGeometry,
  type ImageFormat,
} from './image-preprocess.js';
export { makeViews, shiftImage, cropResize, addNoise, viewKind, viewSeed, DEFAULT_VIEW_OPTIONS, VIEW_KINDS, type ViewKind, type ViewOptions } from './views.js';
