/**
 * Writes the committed Fashion-MNIST slice (data/fashion-mnist) from the full Debian set:
 * the first TRAIN_N training and TEST_N test images with their labels, as gzipped IDX.
 * Run: node --import tsx scripts/make-data-slice.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DEBIAN_FASHION_MNIST_DIR, SLICE_FASHION_MNIST_DIR, encodeIdx, readIdxFile } from '../src/datasets/index.js';

const TRAIN_N = 6000;
const TEST_N = 2000;

function slice(split: 'train' | 't10k', n: number): void {
  const img = readIdxFile(join(DEBIAN_FASHION_MNIST_DIR, `${split}-images-idx3-ubyte.gz`));
  const lbl = readIdxFile(join(DEBIAN_FASHION_MNIST_DIR, `${split}-labels-idx1-ubyte.gz`));
  const imgOut = encodeIdx([n, 28, 28], img.data.subarray(0, n * 784));
  const lblOut = encodeIdx([n], lbl.data.subarray(0, n));
  // mtime 0 in the gzip header keeps the output byte-identical across runs.
  writeFileSync(join(SLICE_FASHION_MNIST_DIR, `${split}-images-idx3-ubyte.gz`), gzipSync(imgOut, { level: 9 }));
  writeFileSync(join(SLICE_FASHION_MNIST_DIR, `${split}-labels-idx1-ubyte.gz`), gzipSync(lblOut, { level: 9 }));
  console.log(`${split}: ${n} images`);
}

mkdirSync(SLICE_FASHION_MNIST_DIR, { recursive: true });
slice('train', TRAIN_N);
slice('t10k', TEST_N);
