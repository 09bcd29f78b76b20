import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, QualmError } from '../errors.js';
import { packageRoot } from '../util/package-root.js';
import { readIdxFile } from './idx.js';
import type { ImageSet } from './types.js';

export const FASHION_MNIST_LABELS = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

/** Debian package dataset-fashion-mnist installs the full set here. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
/** The small slice committed with the repository (see data/README.md). */
export const SLICE_FASHION_MNIST_DIR = join(packageRoot(), 'data', 'fashion-mnist');

export type Split = 'train' | 't10k';

/**
 * Directories searched for the IDX files, in order: QUALM_FASHION_MNIST_DIR, the Debian
 * package, the committed slice.
 */
export function fashionMnistDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = [DEBIAN_FASHION_MNIST_DIR, SLICE_FASHION_MNIST_DIR];
  const own = env.QUALM_FASHION_MNIST_DIR;
  return own !== undefined && own !== '' ? [own, ...dirs] : dirs;
}

function findFile(dirs: readonly string[], base: string): string | undefined {
  for (const d of dirs) {
    for (const name of [`${base}.gz`, base]) {
      const p = join(d, name);
      if (existsSync(p)) return p;
    }
  }
  return undefined;
}

/** Loads a Fashion-MNIST split (the first directory that has both its files wins). */
export function loadFashionMnist(split: Split, dirs: readonly string[] = fashionMnistDirs()): ImageSet {
  for (const dir of dirs) {
    const imgPath = findFile([dir], `${split}-images-idx3-ubyte`);
    const lblPath = findFile([dir], `${split}-labels-idx1-ubyte`);
    if (imgPath === undefined || lblPath === undefined) continue;
    const img = readIdxFile(imgPath);
    const lbl = readIdxFile(lblPath);
    const [n, h, w] = img.dims;
    if (img.dims.length !== 3 || n === undefined || h !== 28 || w !== 28) {
      throw new QualmError(ErrorCodes.DATASET_INVALID, `${imgPath}: expected N x 28 x 28 images, got ${img.dims.join('x')}`);
    }
    if (lbl.dims.length !== 1 || lbl.dims[0] !== n) {
      throw new QualmError(ErrorCodes.DATASET_INVALID, `${lblPath}: expected ${n} labels, got ${lbl.dims.join('x')}`);
    }
    const pixels = new Float32Array(img.data.length);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (img.data[i] as number) / 255;
    for (const l of lbl.data) {
      if (l > 9) throw new QualmError(ErrorCodes.DATASET_INVALID, `${lblPath}: label ${l} outside 0..9`);
    }
    return { name: `fashion-mnist/${split}`, n, dim: 784, pixels, labels: Uint8Array.from(lbl.data), labelNames: FASHION_MNIST_LABELS, origin: dir };
  }
  throw new QualmError(
    ErrorCodes.DATASET_INVALID,
    `Fashion-MNIST ${split} files not found in ${dirs.join(', ')} (install Debian package dataset-fashion-mnist, or set QUALM_FASHION_MNIST_DIR)`,
  );
}
