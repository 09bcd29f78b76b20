import assert from 'node:assert/strict';
import { test } from 'node:test';
import { balancedSubsample, subsetTexts, type TextSet } from '../../../src/datasets/index.js';

/** Labels sorted like the IMDB package: 60 of label 0, then 40 of label 1. */
const sorted = Uint8Array.from({ length: 100 }, (_, i) => (i < 60 ? 0 : 1));

test('balancedSubsample: equal shares per label, seeded, sorted, reproducible', () => {
  const a = balancedSubsample(sorted, 20, 7);
  assert.equal(a.length, 20);
  assert.deepEqual(a, [...a].sort((x, y) => x - y));
  assert.equal(new Set(a).size, 20);
  assert.equal(a.filter((i) => sorted[i] === 0).length, 10);
  assert.deepEqual(balancedSubsample(sorted, 20, 7), a, 'same seed, same pick');
  assert.notDeepEqual(balancedSubsample(sorted, 20, 8), a, 'another seed, another pick');
  // Not a prefix of each label.
  assert.notDeepEqual(a.filter((i) => i < 60), Array.from({ length: 10 }, (_, i) => i));
});

test('balancedSubsample: odd counts, a short label, and n beyond the set', () => {
  const odd = balancedSubsample(sorted, 5, 1);
  const zeros = odd.filter((i) => sorted[i] === 0).length;
  assert.ok(zeros === 2 || zeros === 3);
  // Label 1 has 40 items: asked 90, it gives all 40 and label 0 gives 50.
  const short = balancedSubsample(sorted, 90, 1);
  assert.equal(short.length, 90);
  assert.equal(short.filter((i) => sorted[i] === 1).length, 40);
  assert.deepEqual(balancedSubsample(sorted, 100, 1), Array.from({ length: 100 }, (_, i) => i));
  assert.deepEqual(balancedSubsample(sorted, 500, 1), Array.from({ length: 100 }, (_, i) => i));
  assert.deepEqual(balancedSubsample(sorted, 0, 1), []);
  // Three labels, one of them tiny.
  const three = Uint8Array.from([...new Array<number>(50).fill(0), ...new Array<number>(50).fill(1), 2, 2]);
  const pick = balancedSubsample(three, 30, 3);
  assert.deepEqual([0, 1, 2].map((l) => pick.filter((i) => three[i] === l).length), [14, 14, 2]);
});

test('subsetTexts keeps texts, ids and labels aligned, and refuses bad indices', () => {
  const set: TextSet = { name: 's', n: 3, texts: ['a', 'b', 'c'], ids: ['s#0', 's#1', 's#2'], labels: Uint8Array.from([0, 1, 0]), labelNames: ['x', 'y'], origin: 'test' };
  const sub = subsetTexts(set, [2, 0]);
  assert.deepEqual({ n: sub.n, texts: sub.texts, ids: sub.ids, labels: Array.from(sub.labels) }, { n: 2, texts: ['c', 'a'], ids: ['s#2', 's#0'], labels: [0, 0] });
  assert.equal(sub.labelNames, set.labelNames);
  assert.throws(() => subsetTexts(set, [3]), RangeError);
});
