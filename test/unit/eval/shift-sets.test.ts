import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TEXT_CORRUPTION_NAMES, TEXT_CORRUPTIONS } from '../../../src/eval/corruptions.js';
import { balancedShiftRows, textShiftInput } from '../../../src/eval/shift-sets.js';
import { labelShares } from '../../../src/eval/shifts.js';

/** 1,000 rows stored sorted by label, as the IMDB test split is: 500 of label 0, then 500 of label 1. */
const SORTED = Uint8Array.from({ length: 1000 }, (_, i) => (i < 500 ? 0 : 1));

const countBy = (labels: ArrayLike<number>, rows: ArrayLike<number>): number[] => {
  const c = [0, 0, 0];
  for (let i = 0; i < rows.length; i++) c[labels[rows[i] as number] as number]! += 1;
  return c;
};

test('balancedShiftRows on a set sorted by label: both labels equally, distinct rows, seeded, mixed order', () => {
  const rows = balancedShiftRows(SORTED, 300);
  assert.equal(rows.length, 300);
  assert.equal(new Set(rows).size, 300, 'no row twice');
  for (const r of rows) assert.ok(r >= 0 && r < SORTED.length);
  assert.deepEqual(countBy(SORTED, rows).slice(0, 2), [150, 150]);
  // A prefix would have been one label only (the flaw this replaces).
  assert.deepEqual(countBy(SORTED, Int32Array.from({ length: 300 }, (_, i) => i)).slice(0, 2), [300, 0]);
  assert.deepEqual(balancedShiftRows(SORTED, 300), rows, 'the same seed gives the same rows in the same order');
  assert.notDeepEqual(balancedShiftRows(SORTED, 300, 99), rows, 'another seed gives another pick');
  // Streamed in this order: no label in one block. Each half of the stream holds both labels in about equal numbers.
  for (const half of [rows.subarray(0, 150), rows.subarray(150)]) {
    const [a, b] = countBy(SORTED, half) as [number, number];
    assert.ok(a > 50 && b > 50, `half of the stream: ${a} / ${b}`);
  }
  // Not the first rows of each label: picked at random within it.
  assert.ok(Math.max(...Array.from(rows).filter((r) => r < 500)) > 300);
});

test('balancedShiftRows: odd counts, a label too small to give its share, and a limit beyond the set', () => {
  assert.deepEqual(countBy(SORTED, balancedShiftRows(SORTED, 301)).slice(0, 2).sort(), [150, 151]);
  // 40 of label 2, 460 of label 0, 500 of label 1: label 2 gives all it has, the other two share the rest.
  const uneven = Uint8Array.from({ length: 1000 }, (_, i) => (i < 40 ? 2 : i < 500 ? 0 : 1));
  assert.deepEqual(countBy(uneven, balancedShiftRows(uneven, 300)), [130, 130, 40]);
  const all = balancedShiftRows(SORTED, 5000);
  assert.equal(all.length, 1000);
  assert.deepEqual([...all].sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  assert.notDeepEqual(Array.from(all), Array.from({ length: 1000 }, (_, i) => i), 'every row, but in a mixed order');
  assert.throws(() => balancedShiftRows(SORTED, 0), /limit must be a positive integer, got 0/);
  assert.throws(() => balancedShiftRows(SORTED, 2.5), /limit must be a positive integer/);
});

test('textShiftInput: every family and severity is a copy of the same balanced rows, in the rows order', async () => {
  const texts = Array.from(SORTED, (l, i) => `r${i} label${l} ${'word '.repeat(20)}`);
  const seen: { what: string; texts: string[] }[] = [];
  const input = await textShiftInput(texts, SORTED, 200, (batch, what) => {
    seen.push({ what, texts: batch });
    return Promise.resolve(new Float32Array(batch.length * 2));
  });
  assert.equal(input.kind, 'text');
  assert.equal(input.pick, '200 test rows balanced by label, seeded (seed 4), in a seeded order');
  assert.deepEqual(Array.from(input.rows), Array.from(balancedShiftRows(SORTED, 200)));
  const levels = TEXT_CORRUPTION_NAMES.reduce((n, f) => n + TEXT_CORRUPTIONS[f].levels.length, 0);
  assert.equal(input.sets.length, levels);
  assert.equal(seen.length, levels);
  // Word dropout keeps each text's first word: the row id, so each batch follows the rows.
  const dropout = seen.filter((s) => s.what.startsWith('word_dropout'));
  assert.ok(dropout.length > 0);
  for (const s of dropout) assert.deepEqual(s.texts.map((t) => t.split(' ')[0]), Array.from(input.rows, (r) => `r${r}`));
  await assert.rejects(
    textShiftInput(texts.slice(1), SORTED, 200, () => Promise.resolve(new Float32Array(0))),
    /1000 labels for 999 texts/,
  );
});

test('labelShares: share per label, NaN for no rows, out-of-range values not counted', () => {
  assert.deepEqual(labelShares([0, 1, 1, 1], 2), [0.25, 0.75]);
  assert.deepEqual(labelShares([2, 2, 0, 5], 3), [0.25, 0, 0.5]);
  assert.ok(labelShares([], 2).every((v) => Number.isNaN(v)));
});
