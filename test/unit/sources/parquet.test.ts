import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { InputSpec } from '../../../src/contracts/index.js';
import { openSource, type SourceRecord } from '../../../src/sources/index.js';
import { errorOf, tempDir } from './helpers.js';
import { parquetFile } from './parquet-writer.js';

const tmp = tempDir();
after(() => tmp.remove());
const TEXT: InputSpec = { inputKind: 'text', embeddingDim: 3, maxBytes: 10_000 };

async function readAll(path: string, spec: InputSpec, skipInvalid = false): Promise<{ records: SourceRecord[]; total: number; byReason: object }> {
  const source = await openSource(path, { spec, skipInvalid });
  const records: SourceRecord[] = [];
  for await (const r of source.records()) records.push(r);
  return { records, total: source.skipped.total, byReason: source.skipped.byReason };
}

test('a Parquet file of id, text and label columns is read across its row groups', async () => {
  const n = 25;
  const path = tmp.file(
    'texts.parquet',
    parquetFile(
      [
        { name: 'id', type: 'string', values: Array.from({ length: n }, (_, i) => `t${i}`) },
        { name: 'text', type: 'string', values: Array.from({ length: n }, (_, i) => `review number ${i}`) },
        { name: 'label', type: 'int32', values: Array.from({ length: n }, (_, i) => i % 3) },
      ],
      10,
    ),
  );
  const { records } = await readAll(path, TEXT);
  assert.equal(records.length, n);
  assert.deepEqual(
    records.slice(9, 12).map((r) => [r.id, r.input.kind === 'text' ? r.input.text : null, r.label, r.where]),
    [9, 10, 11].map((i) => [`t${i}`, `review number ${i}`, String(i % 3), `${path}#${i}`]),
  );
});

test('list<float> columns give features and embedding inputs, each row judged by length', async () => {
  const spec: InputSpec = { inputKind: 'features', inputDim: 4, embeddingDim: 3, maxBytes: 10_000 };
  const rows = [
    [0.5, 0.25, 0, 1],
    [1, 2, 3, 4],
    [0, 0, 0],
  ];
  const path = tmp.file(
    'features.parquet',
    parquetFile(
      [
        { name: 'id', type: 'string', values: ['f0', 'f1', 'f2'] },
        { name: 'features', type: 'floats', values: rows },
        { name: 'label', type: 'string', values: ['a', 'b', 'c'] },
      ],
      2,
    ),
  );
  assert.equal(await errorOf(() => readAll(path, spec)), `${path}#2: input.features has 3 values, the model expects 4`);
  const { records } = await readAll(path, spec, true);
  assert.deepEqual(
    records.map((r) => [r.id, r.input.kind, Array.from((r.input as { values: Float32Array }).values), r.label]),
    [
      ['f0', 'features', rows[0], 'a'],
      ['f1', 'features', rows[1], 'b'],
    ],
  );
  const emb = tmp.file(
    'emb.parquet',
    parquetFile(
      [
        { name: 'id', type: 'int32', values: [7, 8] },
        { name: 'embedding', type: 'floats', values: [[1, 0, 0], [0, 0.5, 0.5]] },
      ],
      1,
    ),
  );
  const e = await readAll(emb, spec);
  assert.deepEqual(
    e.records.map((r) => [r.id, r.input.kind, Array.from((r.input as { values: Float32Array }).values), r.label]),
    [
      ['7', 'embedding', [1, 0, 0], undefined],
      ['8', 'embedding', [0, 0.5, 0.5], undefined],
    ],
  );
});

test('Parquet rows are judged by parseSample: a bad row names its row and the field', async () => {
  const path = tmp.file(
    'bad.parquet',
    parquetFile(
      [
        { name: 'id', type: 'string', values: ['a', 'b', 'c'] },
        { name: 'text', type: 'string', values: ['fine', '   ', 'also fine'] },
      ],
      2,
    ),
  );
  assert.equal(await errorOf(() => readAll(path, TEXT)), `${path}#1: input.text is only whitespace`);
  const { records, total, byReason } = await readAll(path, TEXT, true);
  assert.deepEqual(
    records.map((r) => r.id),
    ['a', 'c'],
  );
  assert.equal(total, 1);
  assert.deepEqual(byReason, { QUALM_EMPTY_TEXT: { count: 1, first: [`${path}#1`] } });
});

test('an image binary column becomes image inputs (the bytes as given)', async () => {
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
  const path = tmp.file(
    'images.parquet',
    parquetFile(
      [
        { name: 'id', type: 'string', values: ['i0'] },
        { name: 'image', type: 'binary', values: [png] },
        { name: 'label', type: 'string', values: ['cat'] },
      ],
      10,
    ),
  );
  const { records } = await readAll(path, { inputKind: 'image', embeddingDim: 3, maxBytes: 10_000 });
  const input = records[0]?.input;
  assert.ok(input?.kind === 'image');
  assert.deepEqual(input.bytes, png);
  assert.equal(records[0]?.label, 'cat');
});

test('a Parquet file without id, with no or two input columns, or not Parquet at all is refused', async () => {
  const ids = { name: 'id', type: 'string', values: ['a'] } as const;
  const text = { name: 'text', type: 'string', values: ['x'] } as const;
  assert.match(await errorOf(() => readAll(tmp.file('noid.parquet', parquetFile([text], 5)), TEXT)), /noid\.parquet: no id column \(columns: text\)/);
  assert.match(await errorOf(() => readAll(tmp.file('noinput.parquet', parquetFile([ids], 5)), TEXT)), /expected exactly one input column of features, text, embedding, image, got none/);
  assert.match(
    await errorOf(() => readAll(tmp.file('two.parquet', parquetFile([ids, text, { name: 'image', type: 'binary', values: [Buffer.from('x')] }], 5)), TEXT)),
    /got text, image/,
  );
  assert.match(await errorOf(() => readAll(tmp.file('junk.parquet', 'definitely not parquet'), TEXT)), /junk\.parquet: not a readable Parquet file/);
});

test('a Parquet features row outside the model\'s value_range is refused naming its row (QUALM_OUT_OF_RANGE)', async () => {
  const spec: InputSpec = { inputKind: 'features', inputDim: 4, embeddingDim: 3, maxBytes: 10_000, valueRange: [0, 1] };
  const path = tmp.file(
    'range.parquet',
    parquetFile(
      [
        { name: 'id', type: 'string', values: ['f0', 'f1'] },
        { name: 'features', type: 'floats', values: [[0.5, 0.25, 0, 1], [0.5, 1.5, 0, 1]] },
      ],
      1,
    ),
  );
  assert.equal(await errorOf(() => readAll(path, spec)), `${path}#1: input.features[1] is 1.5, outside the model's value range [0, 1]`, 'no pixel hint: 1.5 is not a whole 0..255 value');
  const { records, byReason } = await readAll(path, spec, true);
  assert.deepEqual(records.map((r) => r.id), ['f0']);
  assert.deepEqual(byReason, { QUALM_OUT_OF_RANGE: { count: 1, first: [`${path}#1`] } });
});
