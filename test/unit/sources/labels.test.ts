import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LabelCollector, labelOrder, labelValue } from '../../../src/sources/index.js';

test('labelOrder: numeric when every label is an integer literal, else by code unit, whatever the input order', () => {
  assert.deepEqual(labelOrder(['10', '2', '-1', '2', '0']), ['-1', '0', '2', '10']);
  assert.deepEqual(labelOrder(['b', 'B', 'a', '10', '9']), ['10', '9', 'B', 'a', 'b']);
  assert.deepEqual(labelOrder(['2.5', '10']), ['10', '2.5']);
  assert.deepEqual(labelOrder(['ü', 'z', 'é']), ['z', 'é', 'ü']);
  assert.deepEqual(labelOrder([]), []);
  const labels = ['dog', 'cat', 'emu', 'ant', 'cat'];
  assert.deepEqual(labelOrder(labels), labelOrder([...labels].reverse()));
  assert.deepEqual(labelOrder(['99999999999999999999', '5']), ['5', '99999999999999999999']);
});

test('labelValue keeps strings, writes numbers in decimal, reads null as unlabelled and refuses the rest', () => {
  assert.equal(labelValue('Ankle boot', 'f:1'), 'Ankle boot');
  assert.equal(labelValue(3, 'f:1'), '3');
  assert.equal(labelValue(0.5, 'f:1'), '0.5');
  assert.equal(labelValue(null, 'f:1'), undefined);
  assert.equal(labelValue(undefined, 'f:1'), undefined);
  assert.throws(() => labelValue(true, 'f:7'), /^SourceRecordError: f:7: label must be a string or a number, got boolean$/);
  assert.throws(() => labelValue([1], 'f:7'), /got array/);
  assert.throws(() => labelValue(Number.POSITIVE_INFINITY, 'f:7'), /got Infinity/);
  assert.throws(() => labelValue('  ', 'f:7'), /label is an empty string/);
});

test('LabelCollector maps labels to their sorted order, for a labelled source', () => {
  const c = new LabelCollector();
  for (const [l, i] of [['dog', 1], ['cat', 2], ['dog', 3], ['ant', 4]] as const) c.add(l, `f:${i}`);
  const r = c.finish(false);
  assert.deepEqual(r.labelNames, ['ant', 'cat', 'dog']);
  assert.deepEqual(r.labels, [2, 1, 2, 0]);
  assert.equal(r.keep, null);
  assert.equal(r.skipped.total, 0);
});

test('LabelCollector: a source with no labels is unlabelled', () => {
  const c = new LabelCollector();
  for (let i = 0; i < 3000; i++) c.add(undefined, `f:${i}`);
  assert.deepEqual(c.finish(false), { labels: null, labelNames: null, keep: null, skipped: { total: 0, byReason: {} } });
});

test('LabelCollector: some records unlabelled is an error, or with skipInvalid those rows are dropped and counted', () => {
  const fill = (): LabelCollector => {
    const c = new LabelCollector();
    c.add(undefined, 'f:1');
    c.add('1', 'f:2');
    for (let i = 3; i < 10; i++) c.add(undefined, `f:${i}`);
    c.add('0', 'f:10');
    return c;
  };
  assert.throws(() => fill().finish(false), /^SourceRecordError: f:1: record has no label, but others do \(first at f:2\): label every record or none \(or pass --skip-invalid to drop the 8 unlabelled\)$/);
  const r = fill().finish(true);
  assert.deepEqual(r.labelNames, ['0', '1']);
  assert.deepEqual(r.labels, [1, 0]);
  assert.deepEqual(Array.from(r.keep ?? []), [0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
  assert.deepEqual(r.skipped, { total: 8, byReason: { unlabelled: { count: 8, first: ['f:1', 'f:3', 'f:4', 'f:5', 'f:6'] } } });
});

test('LabelCollector with declared names keeps their order and refuses a label outside them', () => {
  const c = new LabelCollector(['neg', 'pos']);
  c.add('pos', 'a');
  c.add('neg', 'b');
  assert.deepEqual(c.finish(false), { labels: [1, 0], labelNames: ['neg', 'pos'], keep: null, skipped: { total: 0, byReason: {} } });
  assert.throws(() => new LabelCollector(['neg', 'pos']).add('meh', 'x#3'), /x#3: label "meh" is not one of the source's labels \(neg, pos\)/);
});
