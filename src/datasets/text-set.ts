import { createRequire } from 'node:module';
import { ErrorCodes, QualmError } from '../errors.js';
import { balancedPick, seededRandom } from '../util/random.js';

/** A labelled set of texts, in a fixed order. */
export interface TextSet {
  readonly name: string;
  readonly n: number;
  readonly texts: readonly string[];
  /** A stable id per text (e.g. `imdb/train#12`), usable as a reference id. */
  readonly ids: readonly string[];
  /** Index into labelNames, per text. */
  readonly labels: Uint8Array;
  readonly labelNames: readonly string[];
  /** Where the data was read from. */
  readonly origin: string;
}

/** The texts at `indices`, in that order. */
export function subsetTexts(set: TextSet, indices: readonly number[]): TextSet {
  for (const i of indices) if (!Number.isInteger(i) || i < 0 || i >= set.n) throw new RangeError(`index ${i} is outside ${set.name} (${set.n} texts)`);
  return {
    ...set,
    n: indices.length,
    texts: indices.map((i) => set.texts[i] as string),
    ids: indices.map((i) => set.ids[i] as string),
    labels: Uint8Array.from(indices, (i) => set.labels[i] as number),
  };
}

/**
 * A seeded subsample of `n` indices with the labels as balanced as the set allows: each
 * label gets an equal share (give or take one), and a label with too few items gives all it
 * has while the rest goes to the others. Within a label the pick is a seeded
 * shuffle, so a data set stored sorted by label still yields a mix; the result is sorted by
 * index. The same (labels, n, seed) always gives the same indices, and n >= the set size gives
 * every index.
 */
export function balancedSubsample(labels: ArrayLike<number>, n: number, seed: number): number[] {
  if (n >= labels.length) return Array.from({ length: labels.length }, (_, i) => i);
  return balancedPick(labels, n, seededRandom(seed)).sort((a, b) => a - b);
}

/**
 * `require` for an evaluation data package. They are development dependencies (the worker
 * image does not carry 170 MB of evaluation text), so a missing one gets a clear error.
 */
export function devDataRequire(pkg: string): NodeJS.Require {
  const require = createRequire(import.meta.url);
  try {
    require.resolve(pkg);
  } catch (err) {
    throw new QualmError(ErrorCodes.DATASET_INVALID, `the evaluation data package ${pkg} is not installed (it is a development dependency: run npm ci without --omit=dev)`, { cause: err });
  }
  return require;
}
