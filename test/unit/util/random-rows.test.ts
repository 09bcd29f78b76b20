import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom, shuffleInPlace } from '../../../src/util/random.js';
import { gatherRows } from '../../../src/util/rows.js';

test('shuffleInPlace is a seeded Fisher-Yates permutation, the same for arrays and typed arrays', () => {
  const a = Array.from({ length: 50 }, (_, i) => i);
  const b = Int32Array.from(a);
  assert.equal(shuffleInPlace(a, seededRandom(7)), a);
  shuffleInPlace(b, seededRandom(7));
  assert.deepEqual(Array.from(b), a);
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  assert.notDeepEqual(a, Array.from({ length: 50 }, (_, i) => i));
  // The textbook loop, drawn from the same generator.
  const want = Array.from({ length: 50 }, (_, i) => i);
  const rnd = seededRandom(7);
  for (let i = want.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [want[i], want[j]] = [want[j] as number, want[i] as number];
  }
  assert.deepEqual(a, want);
});

test('gatherRows copies the asked rows in order', () => {
  const m = Float32Array.from({ length: 12 }, (_, i) => i);
  assert.deepEqual(Array.from(gatherRows(m, 3, [3, 0, 3])), [9, 10, 11, 0, 1, 2, 9, 10, 11]);
  assert.equal(gatherRows(m, 3, []).length, 0);
});
