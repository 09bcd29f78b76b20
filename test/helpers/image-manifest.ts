/**
 * The demo encoder fed 28x28 grayscale images: its [-1, 784] input is the flat layout, pixels
 * scaled by 1/255. Written beside a copy of models/fmnist-simclr.onnx, it makes an image model
 * with the same sha256 (and so the same bundles) as the features model.
 */
export const DEMO_IMAGE_MANIFEST = {
  format_version: 2,
  name: 'fmnist-simclr-png',
  version: '1',
  input_kind: 'image',
  input: { name: 'pixels', dtype: 'float32', shape: [-1, 784], layout: 'flat' },
  preprocess: { color: 'grayscale', size: { width: 28, height: 28 }, scale: 1 / 255 },
  output: { name: 'embedding', normalized: true },
  dim: 128,
  metric: 'cosine',
} as const;
