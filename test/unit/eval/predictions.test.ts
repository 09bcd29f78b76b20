import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { alignPredictions, readPredictions, softmax, splitCsvLine, type PredictionsFile } from '../../../src/eval/index.js';
import { ErrorCodes, QualmError } from '../../../src/errors.js';

const LABELS = ['cat', 'dog', 'bird'] as const;
let dir = '';
let n = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qualm-predictions-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(ext: string, lines: readonly string[]): Promise<string> {
  const path = join(dir, `p${n++}.${ext}`);
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

const read = async (ext: string, lines: readonly string[], skipInvalid = false): Promise<PredictionsFile> =>
  readPredictions(await file(ext, lines), { labelNames: LABELS, skipInvalid });

/** Rejects with QUALM_PREDICTIONS_INVALID and a message matching `pattern` (which names the line). */
async function rejects(ext: string, lines: readonly string[], pattern: RegExp): Promise<void> {
  await assert.rejects(read(ext, lines), (err: unknown) => {
    assert.ok(err instanceof QualmError, String(err));
    assert.equal(err.code, ErrorCodes.PREDICTIONS_INVALID);
    assert.match(err.message, pattern);
    assert.match(err.message, /p\d+\.(jsonl|csv)(:\d+)?: /, 'the message names the file (and line)');
    return true;
  });
}

test('JSONL labels: strings or numbers as the references wrote them, blank lines ignored', async () => {
  const p = await read('jsonl', ['{"id":"a","label":"dog"}', '', '{"id":7,"label":"bird"}']);
  assert.equal(p.form, 'labels');
  assert.equal(p.byId.get('a')?.label, 1);
  assert.equal(p.byId.get('7')?.label, 2);
  assert.equal(p.byId.get('a')?.probs, null);
  assert.match(p.byId.get('7')?.where ?? '', /:3$/);
  const numeric = await readPredictions(await file('jsonl', ['{"id":"x","label":1}']), { labelNames: ['0', '1'] });
  assert.equal(numeric.byId.get('x')?.label, 1);
});

test('JSONL probabilities take the argmax; logits are softmaxed; a label beside them must agree', async () => {
  const p = await read('jsonl', ['{"id":"a","probs":[0.2,0.1,0.7]}', '{"id":"b","logits":[3,1,-2]}', '{"id":"c","probs":[0.1,0.8,0.1],"label":"dog"}']);
  assert.equal(p.form, 'probabilities');
  assert.equal(p.byId.get('a')?.label, 2);
  assert.deepEqual([...(p.byId.get('a')?.probs ?? [])], [0.2, 0.1, 0.7]);
  const b = p.byId.get('b')?.probs ?? new Float64Array(0);
  const z = Math.exp(3) + Math.exp(1) + Math.exp(-2);
  [Math.exp(3) / z, Math.exp(1) / z, Math.exp(-2) / z].forEach((v, c) => assert.ok(Math.abs((b[c] as number) - v) < 1e-12));
  assert.equal(p.byId.get('b')?.label, 0);
  assert.equal(p.byId.get('c')?.label, 1);
  // Huge logits do not overflow.
  assert.deepEqual([...softmax([1000, 0])], [1, 0]);
});

test('CSV: id,label and id,p_<label> columns in any order, quoted fields, other columns ignored', async () => {
  const labels = await read('csv', ['id,label', 'a,cat', '"b,1","dog"']);
  assert.equal(labels.form, 'labels');
  assert.equal(labels.byId.get('b,1')?.label, 1);
  const probs = await read('csv', ['p_bird,id,note,p_cat,p_dog', '0.5,a,x,0.25,0.25', '0,b,"say ""hi""",1,0']);
  assert.equal(probs.form, 'probabilities');
  assert.deepEqual([...(probs.byId.get('a')?.probs ?? [])], [0.25, 0.25, 0.5], 'reordered to the references\' label order');
  assert.equal(probs.byId.get('a')?.label, 2);
  assert.equal(probs.byId.get('b')?.label, 0);
  assert.deepEqual(splitCsvLine('a,"b ""c""",,d'), ['a', 'b "c"', '', 'd']);
});

test('every bad JSONL line is named with its file, line and field', async () => {
  const ok = '{"id":"a","label":"cat"}';
  await rejects('jsonl', [ok, '{"id":"b","label":"fish"}'], /:2: field label: unknown label "fish"; the references' labels are "cat", "dog", "bird"/);
  await rejects('jsonl', ['{"id":"a","probs":[0.5,0.5]}'], /:1: field probs has 2 values; the references have 3 labels/);
  await rejects('jsonl', ['{"id":"a","probs":[0.5,0.4,0.3]}'], /:1: field probs sums to 1\.20000, not 1 ± 0\.001/);
  await rejects('jsonl', ['{"id":"a","probs":[1.5,-0.5,0]}'], /field probs\[0\] is 1\.5, not a probability in \[0, 1\]/);
  await rejects('jsonl', ['{"id":"a","probs":[0.5,"x",0.5]}'], /field probs\[1\] must be a finite number/);
  await rejects('jsonl', ['{"id":"a","logits":[1,2]}'], /field logits has 2 values/);
  await rejects('jsonl', ['{"id":"a","probs":[0.1,0.8,0.1],"label":"cat"}'], /field label "cat" is not the argmax of probs \("dog"\)/);
  await rejects('jsonl', ['{"label":"cat"}'], /:1: field id must be/);
  await rejects('jsonl', ['{"id":"a"}'], /no prediction: give "label", "probs" or "logits"/);
  await rejects('jsonl', [ok, 'not json'], /:2: not JSON/);
  await rejects('jsonl', [ok, ok], /:2: field id "a" repeats .*:1/);
  await rejects('jsonl', [ok, '{"id":"b","probs":[0.2,0.2,0.6]}'], /:2: gives probabilities, the lines before it only labels/);
  await rejects('jsonl', [''], /no predictions/);
});

test('every bad CSV header and row is named', async () => {
  await rejects('csv', ['name,label', 'a,cat'], /:1: the header has no "id" column/);
  await rejects('csv', ['id,p_cat,p_dog,p_fish', 'a,0.2,0.3,0.5'], /:1: header column "p_fish": unknown label "fish"/);
  await rejects('csv', ['id,p_cat,p_dog', 'a,0.5,0.5'], /the header has no probability column for "p_bird"/);
  await rejects('csv', ['id,score', 'a,1'], /the header needs "label" or one "p_<label>" column/);
  await rejects('csv', ['id,label', 'a,fish'], /:2: field label: unknown label "fish"/);
  await rejects('csv', ['id,p_cat,p_dog,p_bird', 'a,0.5,0.5,0.5'], /:2: fields p_\* sum to 1\.50000/);
  await rejects('csv', ['id,p_cat,p_dog,p_bird', 'a,x,0.5,0.5'], /:2: field p_cat must be a finite number/);
  await rejects('csv', ['id,label', 'a,cat,extra'], /:2: 3 fields, the header has 2/);
  await rejects('csv', ['id,label', '"a,cat'], /:2: a quoted field has no closing quote/);
});

test('skipInvalid counts bad lines and keeps the good ones', async () => {
  const p = await read('jsonl', ['{"id":"a","label":"cat"}', '{"id":"b","label":"fish"}', 'oops', '{"id":"c","label":"dog"}'], true);
  assert.equal(p.byId.size, 2);
  assert.equal(p.skipped, 2);
  assert.match(p.skippedReasons[0] ?? '', /:2: field label: unknown label "fish"/);
});

test('alignPredictions: test order, and missing or extra ids named unless skipInvalid drops them', async () => {
  const p = await read('jsonl', ['{"id":"b","probs":[0,1,0]}', '{"id":"a","probs":[1,0,0]}', '{"id":"zz","probs":[0,0,1]}']);
  assert.throws(
    () => alignPredictions(p, ['a', 'b', 'c', 'd'], 3),
    (err: unknown) => err instanceof QualmError && err.code === ErrorCodes.PREDICTIONS_INVALID && /2 of 4 test ids have no prediction: "c", "d"/.test(err.message),
  );
  assert.throws(() => alignPredictions(p, ['a', 'b'], 3), /1 predictions name no test id: "zz", first at .*:3/);
  const a = alignPredictions(p, ['a', 'c', 'b'], 3, { skipInvalid: true });
  assert.deepEqual(a.keep, [0, 2]);
  assert.deepEqual([...a.labels], [0, 1]);
  assert.deepEqual([...(a.probs ?? [])], [1, 0, 0, 0, 1, 0]);
  assert.equal(a.missing, 1);
  assert.equal(a.extra, 1);
  const full = alignPredictions(p, ['zz', 'a', 'b'], 3);
  assert.deepEqual([...full.labels], [2, 0, 1]);
  assert.throws(() => alignPredictions(p, ['q'], 3, { skipInvalid: true }), /no test id has a prediction/);
  const hard = alignPredictions(await read('csv', ['id,label', 'a,bird']), ['a'], 3);
  assert.equal(hard.probs, null);
  assert.deepEqual([...hard.labels], [2]);
});
