import { IMAGE_CORRUPTIONS, IMAGE_CORRUPTION_NAMES, TEXT_CORRUPTIONS, TEXT_CORRUPTION_NAMES, corruptImages, corruptTexts } from './corruptions.js';
import { balancedPick, seededRandom, shuffleInPlace } from '../util/random.js';
import type { ShiftInput, ShiftedSet } from './shifts.js';

/** Test rows per shifted set by default (evaluate --shift-limit). */
export const DEFAULT_SHIFT_ROWS = 2000;

/** Seed of the text shift rows' pick. */
export const SHIFT_ROWS_SEED = 4;

/**
 * `limit` rows of a test set with these labels, the labels as balanced as the set allows
 * (an equal share each, give or take one; a label with too few rows gives all it has and the
 * others fill up), picked at random within each label from `seed`, and returned in a seeded
 * random order, since each shifted set is streamed in this order and a label should not come
 * in one block. `limit` >= the set's size gives every row. Every family and severity is a copy
 * of the same rows, so the sets differ only by their corruption.
 *
 * A prefix of a test set stored sorted by label (the IMDB test split is) would be one label
 * only: the probe's accuracy on it is its recall on that label, and a corruption that pushes
 * predictions towards that label looks like an improvement.
 */
export function balancedShiftRows(labels: ArrayLike<number>, limit: number, seed = SHIFT_ROWS_SEED): Int32Array {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`shift rows: limit must be a positive integer, got ${limit}`);
  const rnd = seededRandom(seed);
  const picked = balancedPick(labels, Math.min(limit, labels.length), rnd);
  return shuffleInPlace(Int32Array.from(picked), rnd);
}

/** Every image family at every severity, over the first `limit` of `n` test images, each embedded by `embed`. */
export async function imageShiftInput(
  pixels: Float32Array,
  n: number,
  side: number,
  limit: number,
  embed: (pixels: Float32Array, n: number, what: string) => Promise<Float32Array>,
): Promise<ShiftInput> {
  const m = Math.min(n, limit);
  const base = pixels.subarray(0, m * side * side);
  const sets: ShiftedSet[] = [];
  for (const [f, family] of IMAGE_CORRUPTION_NAMES.entries()) {
    const spec = IMAGE_CORRUPTIONS[family];
    for (const [s, level] of spec.levels.entries()) {
      const shifted = corruptImages(base, m, side, family, s + 1, 1000 + 10 * f + s);
      sets.push({ family, severity: s + 1, level: `${spec.unit} ${level}`, embeddings: await embed(shifted, m, `${family} ${s + 1}`) });
    }
  }
  return { kind: 'image', rows: Int32Array.from({ length: m }, (_, i) => i), sets, pick: `the first ${m} test rows` };
}

/** Every text family at every severity, over `limit` label-balanced test texts (balancedShiftRows), each embedded by `embed`. */
export async function textShiftInput(
  texts: readonly string[],
  labels: ArrayLike<number>,
  limit: number,
  embed: (texts: string[], what: string) => Promise<Float32Array>,
): Promise<ShiftInput> {
  if (labels.length !== texts.length) throw new RangeError(`textShiftInput: ${labels.length} labels for ${texts.length} texts`);
  const rows = balancedShiftRows(labels, limit);
  const base = Array.from(rows, (r) => texts[r] as string);
  const sets: ShiftedSet[] = [];
  for (const [f, family] of TEXT_CORRUPTION_NAMES.entries()) {
    const spec = TEXT_CORRUPTIONS[family];
    for (const [s, level] of spec.levels.entries()) {
      sets.push({ family, severity: s + 1, level: `${spec.unit} ${level}`, embeddings: await embed(corruptTexts(base, family, s + 1, 2000 + 10 * f + s), `${family} ${s + 1}`) });
    }
  }
  return { kind: 'text', rows, sets, pick: `${rows.length} test rows balanced by label, seeded (seed ${SHIFT_ROWS_SEED}), in a seeded order` };
}
