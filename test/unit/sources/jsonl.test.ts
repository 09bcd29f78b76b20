import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { basename } from 'node:path';
import { errorOf, readAll, tempDir } from './helpers.js';

const tmp = tempDir();
after(() => tmp.remove());

const good = (id: string, extra: Record<string, unknown> = {}): string => JSON.stringify({ id, input: { features: [0.1, 0.2, 0.3, 0.4] }, ...extra });

test('a JSONL file gives one record per line with its label as a string, meta, and file:line', async () => {
  const path = tmp.file(
    'refs.jsonl',
    [good('a', { label: 'cat' }), '', ' \t'.repeat(50), good('b', { label: 3, meta: { k: 1 } }), JSON.stringify({ id: 'c', input: { embedding: [1, 0, 0] }, label: 2.5 })].join('\n') + '\n',
  );
  const { records, skipped } = await readAll(path);
  assert.deepEqual(
    records.map((r) => [r.id, r.input.kind, r.label, r.where]),
    [
      ['a', 'features', 'cat', `${path}:1`],
      ['b', 'features', '3', `${path}:4`],
      ['c', 'embedding', '2.5', `${path}:5`],
    ],
  );
  assert.deepEqual(records[1]?.meta, { k: 1 });
  assert.equal(records[0]?.meta, undefined);
  const f = records[0]?.input;
  assert.ok(f?.kind === 'features');
  assert.deepEqual(Array.from(f.values), Array.from(Float32Array.from([0.1, 0.2, 0.3, 0.4])));
  assert.equal(skipped.total, 0);
});

test('CRLF line ends and a last line without a newline are read', async () => {
  const path = tmp.file('crlf.jsonl', `${good('a')}\r\n${good('b')}`);
  const { records } = await readAll(path);
  assert.deepEqual(
    records.map((r) => r.id),
    ['a', 'b'],
  );
});

const BAD_LINES: [string, string, string][] = [
  ['bad JSON', '{"id": "x", "input": ', 'value is not valid UTF-8 JSON'],
  ['missing id', JSON.stringify({ input: { features: [1, 2, 3, 4] } }), 'message has no id'],
  ['wrong length', JSON.stringify({ id: 'x', input: { features: [1, 2, 3] } }), 'input.features has 3 values, the model expects 4'],
  ['wrong embedding length', JSON.stringify({ id: 'x', input: { embedding: [1, 2] } }), 'input.embedding has 2 values, the model expects 3'],
  ['wrong input kind', JSON.stringify({ id: 'x', input: { text: 'hello' } }), 'input kind text is not accepted'],
  ['boolean label', good('x', { label: true }), 'label must be a string or a number, got boolean'],
  ['object label', good('x', { label: { a: 1 } }), 'label must be a string or a number, got object'],
  ['empty label', good('x', { label: '' }), 'label is an empty string'],
  ['NaN', '{"id":"x","input":{"features":[1,NaN,3,4]}}', 'NaN or Infinity'],
];

for (const [what, line, message] of BAD_LINES) {
  test(`a line with ${what} fails naming file:line and the field`, async () => {
    const path = tmp.file(`bad-${what.replace(/ /g, '-')}.jsonl`, `${good('ok')}\n\n${line}\n${good('ok2')}\n`);
    const msg = await errorOf(() => readAll(path));
    assert.ok(msg.startsWith(`${path}:3: `), msg);
    assert.ok(msg.includes(message), msg);
  });
}

test('--skip-invalid counts bad lines by reason and keeps the first five locations', async () => {
  const lines = [good('a')];
  for (let i = 0; i < 7; i++) lines.push(JSON.stringify({ id: `w${i}`, input: { features: [1] } }));
  lines.push('not json', good('b', { label: false }), good('c'));
  const path = tmp.file('skip.jsonl', lines.join('\n'));
  const { records, skipped } = await readAll(path, { skipInvalid: true });
  assert.deepEqual(
    records.map((r) => r.id),
    ['a', 'c'],
  );
  assert.equal(skipped.total, 9);
  assert.deepEqual(Object.keys(skipped.byReason), ['QUALM_BAD_JSON', 'QUALM_WRONG_LENGTH', 'bad_label']);
  assert.deepEqual(skipped.byReason.QUALM_WRONG_LENGTH, { count: 7, first: [2, 3, 4, 5, 6].map((l) => `${path}:${l}`) });
  assert.deepEqual(skipped.byReason.QUALM_BAD_JSON, { count: 1, first: [`${path}:9`] });
  assert.deepEqual(skipped.byReason.bad_label, { count: 1, first: [`${path}:10`] });
});

test('a line longer than maxLineBytes is refused by its length without being held', async () => {
  const long = JSON.stringify({ id: 'big', input: { features: [1, 2, 3, 4] }, meta: { pad: 'x'.repeat(300_000) } });
  const path = tmp.file('long.jsonl', `${good('a')}\n${long}\n${good('b')}\n`);
  const msg = await errorOf(() => readAll(path, { maxLineBytes: 1000 }));
  assert.equal(msg, `${path}:2: line is ${long.length} bytes, the limit is 1000`);
  const { records, skipped } = await readAll(path, { maxLineBytes: 1000, skipInvalid: true });
  assert.deepEqual(
    records.map((r) => r.id),
    ['a', 'b'],
  );
  assert.deepEqual(skipped.byReason.QUALM_OVERSIZE?.first, [`${path}:2`]);
});

test('an unknown extension or a missing file is refused before reading', async () => {
  assert.match(await errorOf(() => readAll(tmp.file('refs.txt', 'x'))), /refs\.txt: unknown source; expected PATH/);
  assert.match(await errorOf(() => readAll(`${tmp.dir}/absent.jsonl`)), /absent\.jsonl: cannot read/);
  assert.match(await errorOf(() => readAll(tmp.file('s.jsonl', good('a')), { sidecar: 'ids.csv' })), /a sidecar goes with a \.npy or \.f32 file/);
  assert.match(await errorOf(() => readAll('-', { sidecar: 'ids.csv' })), /^-: a sidecar goes with a \.npy or \.f32 file/);
  assert.match(await errorOf(() => readAll('builtin:mnist', { dim: 3 })), /^builtin:mnist: --dim is for raw \.f32 files only/);
  assert.match(await errorOf(() => readAll('topic:')), /topic: needs a topic name/);
  assert.match(await errorOf(() => readAll('topic:refs')), /topic:refs: reading a topic needs a Kafka client/);
  assert.equal(basename(tmp.dir).startsWith('qualm-sources-'), true);
});

test('a features value outside the model\'s value_range fails naming file:line, index, value and range; --skip-invalid counts it as QUALM_OUT_OF_RANGE', async () => {
  const spec = { inputKind: 'features', inputDim: 4, embeddingDim: 3, maxBytes: 10_000, valueRange: [0, 1] } as const;
  const pixels = JSON.stringify({ id: 'raw', input: { features: [0, 128, 255, 3] } });
  const path = tmp.file('range.jsonl', `${good('a')}\n${pixels}\n${good('b')}\n`);
  assert.equal(await errorOf(() => readAll(path, { spec })), `${path}:2: input.features[1] is 128, outside the model's value range [0, 1]; the values run 0..255, like raw 0..255 pixels: divide them by 255 before sending`);
  const { records, skipped } = await readAll(path, { spec, skipInvalid: true });
  assert.deepEqual(
    records.map((r) => r.id),
    ['a', 'b'],
  );
  assert.deepEqual(skipped.byReason, { QUALM_OUT_OF_RANGE: { count: 1, first: [`${path}:2`] } });
  // Without a declared range the same file reads whole.
  assert.equal((await readAll(path)).records.length, 3);
});
