import { IMAGE_CORRUPTIONS, IMAGE_CORRUPTION_NAMES, TEXT_CORRUPTIONS, TEXT_CORRUPTION_NAMES, corruptImages, corruptTexts } from './corruptions.js';
import type { ShiftInput, ShiftedSet } from './shifts.js';

/** Test rows per shifted set by default (evaluate --shift-limit). */
export const DEFAULT_SHIFT_ROWS = 2000;

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
  return { kind: 'image', rows: Int32Array.from({ length: m }, (_, i) => i), sets };
}

/** Every text family at every severity, over the first `limit` test texts, each embedded by `embed`. */
export async function textShiftInput(texts: readonly string[], limit: number, embed: (texts: string[], what: string) => Promise<Float32Array>): Promise<ShiftInput> {
  const m = Math.min(texts.length, limit);
  const base = texts.slice(0, m);
  const sets: ShiftedSet[] = [];
  for (const [f, family] of TEXT_CORRUPTION_NAMES.entries()) {
    const spec = TEXT_CORRUPTIONS[family];
    for (const [s, level] of spec.levels.entries()) {
      sets.push({ family, severity: s + 1, level: `${spec.unit} ${level}`, embeddings: await embed(corruptTexts(base, family, s + 1, 2000 + 10 * f + s), `${family} ${s + 1}`) });
    }
  }
  return { kind: 'text', rows: Int32Array.from({ length: m }, (_, i) => i), sets };
}
