import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IMAGE_CORRUPTIONS, IMAGE_CORRUPTION_NAMES, TEXT_CORRUPTION_NAMES, corruptImages, corruptTexts, corruptionFamilies } from '../../../src/eval/corruptions.js';
import { seededRandom } from '../../../src/util/random.js';

const SIDE = 6;
/** Two 6 x 6 images: a bright bar in column 1, and a seeded random one. */
function images(): Float32Array {
  const x = new Float32Array(2 * SIDE * SIDE);
  for (let y = 0; y < SIDE; y++) x[y * SIDE + 1] = 1;
  const rnd = seededRandom(9);
  for (let j = 0; j < SIDE * SIDE; j++) x[SIDE * SIDE + j] = rnd();
  return x;
}
const px = (x: Float32Array, i: number, y: number, c: number): number => x[i * SIDE * SIDE + y * SIDE + c] as number;
const meanAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((s, v, j) => s + Math.abs(v - (b[j] as number)), 0) / a.length;

test('every family at every severity: same shape, values in [0, 1], seeded, and stronger severities move the images further', () => {
  const x = images();
  for (const family of IMAGE_CORRUPTION_NAMES) {
    let prev = 0;
    for (let s = 1; s <= IMAGE_CORRUPTIONS[family].levels.length; s++) {
      const y = corruptImages(x, 2, SIDE, family, s, 5);
      assert.equal(y.length, x.length);
      assert.ok(y.every((v) => v >= 0 && v <= 1), `${family} ${s} leaves [0, 1]`);
      assert.deepEqual(y, corruptImages(x, 2, SIDE, family, s, 5), `${family} ${s} is not seeded`);
      const d = meanAbsDiff(x, y);
      if (family !== 'rotation_90' && family !== 'occlusion') assert.ok(d > prev, `${family}: severity ${s} moves the images ${d}, no more than severity ${s - 1} (${prev})`);
      prev = d;
    }
  }
  assert.throws(() => corruptImages(x, 2, SIDE, 'blur', 4), RangeError);
  assert.throws(() => corruptImages(x, 3, SIDE, 'blur', 1), RangeError);
});

test('the exact corruptions: a quarter turn, full inversion, brightness, contrast, occlusion', () => {
  const x = images();
  const r = corruptImages(x, 2, SIDE, 'rotation_90', 3);
  // Column 1 of the bar image becomes row SIDE-2 after a counter-clockwise quarter turn... every pixel is a pixel of the source.
  const bar = Array.from({ length: SIDE * SIDE }, (_, j) => r[j] as number);
  assert.equal(bar.filter((v) => v === 1).length, SIDE);
  const rows = new Set(bar.flatMap((v, j) => (v === 1 ? [Math.floor(j / SIDE)] : [])));
  assert.equal(rows.size, 1, 'the vertical bar is horizontal');
  const inv = corruptImages(x, 2, SIDE, 'inversion', 3);
  assert.ok(Math.abs(px(inv, 1, 2, 3) - (1 - px(x, 1, 2, 3))) < 1e-6);
  const bright = corruptImages(x, 2, SIDE, 'brightness', 1);
  assert.ok(Math.abs(px(bright, 0, 0, 0) - 0.2) < 1e-6);
  assert.equal(px(bright, 0, 0, 1), 1, 'clipped at 1');
  const flat = corruptImages(x, 2, SIDE, 'contrast', 3);
  const mean = 1 / SIDE;
  assert.ok(Math.abs(px(flat, 0, 0, 0) - mean * (1 - 0.15)) < 1e-6);
  const occ = corruptImages(x, 2, SIDE, 'occlusion', 1);
  assert.equal(Array.from(occ.subarray(0, SIDE * SIDE)).filter((v) => v === 0.5).length, SIDE * SIDE, 'an 8-pixel square covers all of a 6 x 6 image');
  const partial = corruptImages(x, 2, SIDE, 'rotation_90', 1, 3);
  const turned = [0, 1].filter((i) => meanAbsDiff(partial.subarray(i * 36, (i + 1) * 36), x.subarray(i * 36, (i + 1) * 36)) > 0).length;
  assert.ok(turned <= 2);
});

test('text corruptions: word dropout keeps the first word and drops more at higher severity; character noise keeps length and case', () => {
  const texts = Array.from({ length: 50 }, (_, i) => `Review ${i}: the film was long and the acting was wooden but the music was fine`);
  const words = (t: string[]): number => t.reduce((s, x) => s + x.split(' ').length, 0);
  const w1 = corruptTexts(texts, 'word_dropout', 1);
  const w3 = corruptTexts(texts, 'word_dropout', 3);
  assert.ok(words(w3) < words(w1) && words(w1) < words(texts));
  assert.ok(w3.every((t) => t.startsWith('Review')));
  const c = corruptTexts(texts, 'char_noise', 3, 4);
  assert.deepEqual(c, corruptTexts(texts, 'char_noise', 3, 4));
  assert.ok(c.every((t, i) => t.length === (texts[i] as string).length && t[0] === (t[0] as string).toUpperCase()));
  assert.notDeepEqual(c, texts);
  assert.equal(TEXT_CORRUPTION_NAMES.length, 2);
  assert.equal(corruptionFamilies('image').length, IMAGE_CORRUPTION_NAMES.length);
  assert.throws(() => corruptTexts(texts, 'char_noise', 0), RangeError);
});
