import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { parseNpyHeader, splitCsvLine } from '../../../src/sources/index.js';
import { errorOf, npyBytes, readAll, tempDir } from './helpers.js';

const tmp = tempDir();
after(() => tmp.remove());

const ROWS = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0.5, 0.5],
];

function values(r: { input: { kind: string } }): number[] {
  const input = r.input as { kind: 'embedding'; values: Float32Array };
  assert.equal(input.kind, 'embedding');
  return Array.from(input.values);
}

for (const version of [1, 2, 3] as const) {
  test(`a .npy file (format ${version}) with a CSV sidecar gives embedding records with ids and labels`, async () => {
    const npy = tmp.file(`v${version}.npy`, npyBytes(ROWS, { version }));
    const side = tmp.file(`v${version}.csv`, 'id,label,note\na,cat,x\n"b,1",dog,"say ""hi"""\nc,,z\n');
    const { records } = await readAll(npy, { sidecar: side });
    assert.deepEqual(
      records.map((r) => [r.id, r.label, r.where, r.meta]),
      [
        ['a', 'cat', `${side}:2`, { note: 'x' }],
        ['b,1', 'dog', `${side}:3`, { note: 'say "hi"' }],
        ['c', undefined, `${side}:4`, { note: 'z' }],
      ],
    );
    assert.deepEqual(records.map(values), ROWS);
  });
}

test('without a sidecar the ids are row-<i> and there are no labels', async () => {
  const { records } = await readAll(tmp.file('plain.npy', npyBytes(ROWS)));
  assert.deepEqual(
    records.map((r) => [r.id, r.label, r.where]),
    [0, 1, 2].map((i) => [`row-${i}`, undefined, `${tmp.dir}/plain.npy#${i}`]),
  );
});

test('a JSONL sidecar gives ids, numeric labels as strings, and meta', async () => {
  const npy = tmp.file('j.npy', npyBytes(ROWS));
  const side = tmp.file('j.jsonl', `${JSON.stringify({ id: 'a', label: 7 })}\n\n${JSON.stringify({ id: 'b', label: 7, meta: { m: 1 } })}\n${JSON.stringify({ id: 'c', label: 10 })}\n`);
  const { records } = await readAll(npy, { sidecar: side });
  assert.deepEqual(
    records.map((r) => [r.id, r.label, r.meta]),
    [
      ['a', '7', undefined],
      ['b', '7', { m: 1 }],
      ['c', '10', undefined],
    ],
  );
});

test('a sidecar with fewer or more entries than rows is an error naming both counts', async () => {
  const npy = tmp.file('c.npy', npyBytes(ROWS));
  const short = tmp.file('short.csv', 'id\na\nb\n');
  assert.equal(await errorOf(() => readAll(npy, { sidecar: short })), `sidecar ${short} has 2 entries, ${npy} has 3 rows`);
  const long = tmp.file('long.csv', 'id\na\nb\nc\nd\ne\n');
  assert.equal(await errorOf(() => readAll(npy, { sidecar: long })), `sidecar ${long} has 5 entries, ${npy} has 3 rows`);
});

test('bad sidecar lines name the sidecar line; with skipInvalid the row beside it is skipped', async () => {
  const npy = tmp.file('s.npy', npyBytes(ROWS));
  const side = tmp.file('s.jsonl', `${JSON.stringify({ id: 'a' })}\n${JSON.stringify({ label: 'x' })}\n${JSON.stringify({ id: 'c', label: [1] })}\n`);
  assert.equal(await errorOf(() => readAll(npy, { sidecar: side })), `${side}:2: id must be a non-empty string`);
  const { records, skipped } = await readAll(npy, { sidecar: side, skipInvalid: true });
  assert.deepEqual(
    records.map((r) => r.id),
    ['a'],
  );
  assert.deepEqual(skipped.byReason, { QUALM_MISSING_ID: { count: 1, first: [`${side}:2`] }, bad_label: { count: 1, first: [`${side}:3`] } });
  const noHeader = tmp.file('nohead.csv', 'a,b\n');
  assert.match(await errorOf(() => readAll(npy, { sidecar: noHeader })), /nohead\.csv:1: the CSV header must name an id column/);
  const wrongFields = tmp.file('fields.csv', 'id,label\na,x\nb\nc,y\n');
  assert.equal(await errorOf(() => readAll(npy, { sidecar: wrongFields })), `${wrongFields}:3: 1 fields, the header has 2`);
  assert.match(await errorOf(() => readAll(npy, { sidecar: tmp.file('ids.txt', 'id\n') })), /expected a \.csv or \.jsonl file/);
});

test('a row holding NaN is refused with its row and sidecar line', async () => {
  const npy = tmp.file('nan.npy', npyBytes([[1, 0, 0], [0, Number.NaN, 0]]));
  const side = tmp.file('nan.csv', 'id\na\nb\n');
  assert.equal(await errorOf(() => readAll(npy, { sidecar: side })), `${npy}#1 (${side}:3): embedding[1] is not a finite number`);
});

const BAD_HEADERS: [string, string, RegExp][] = [
  ['float64', "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), }", /dtype '<f8' is not supported: qualm reads little-endian float32/],
  ['big-endian', "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 3), }", /dtype '>f4' is not supported/],
  ['Fortran order', "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 3), }", /fortran_order True is not supported/],
  ['three dimensions', "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3, 1), }", /shape \(3, 3, 1\) is not supported: qualm reads a two-dimensional/],
  ['one dimension', "{'descr': '<f4', 'fortran_order': False, 'shape': (9,), }", /shape \(9,\) is not supported/],
  ['no descr', "{'fortran_order': False, 'shape': (3, 3), }", /has no descr/],
];

for (const [what, header, message] of BAD_HEADERS) {
  test(`a .npy header with ${what} is refused`, async () => {
    const path = tmp.file(`h-${what.replace(/ /g, '-')}.npy`, npyBytes(ROWS, { header }));
    const msg = await errorOf(() => readAll(path));
    assert.ok(msg.startsWith(`${path}: `), msg);
    assert.match(msg, message);
  });
}

test('not a .npy file, an unknown version, a truncated file or the wrong D are refused', async () => {
  assert.match(await errorOf(() => readAll(tmp.file('x.npy', 'hello world, not numpy'))), /x\.npy: not a \.npy file/);
  const v9 = npyBytes(ROWS);
  v9[6] = 9;
  assert.match(await errorOf(() => readAll(tmp.file('v9.npy', v9))), /format version 9\.0 is not supported/);
  const full = npyBytes(ROWS);
  const cut = tmp.file('cut.npy', full.subarray(0, full.length - 4));
  assert.match(await errorOf(() => readAll(cut)), /declares 3 x 3 float32 values \(\d+ bytes with the header\), the file has \d+ bytes/);
  assert.match(await errorOf(() => readAll(tmp.file('d4.npy', npyBytes([[1, 2, 3, 4]])))), /rows have 4 values, the model's embeddings have 3/);
  assert.throws(() => parseNpyHeader(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 200, 0]), 'h.npy'), /header is truncated \(it declares 200 bytes\)/);
});

test('a raw .f32 file needs --dim, a whole number of rows, and the model dimension', async () => {
  const data = Buffer.alloc(ROWS.length * 12);
  ROWS.flat().forEach((v, i) => data.writeFloatLE(v, i * 4));
  const f32 = tmp.file('e.f32', data);
  const { records } = await readAll(f32, { dim: 3 });
  assert.deepEqual(records.map(values), ROWS);
  assert.match(await errorOf(() => readAll(f32)), /needs --dim D/);
  assert.match(await errorOf(() => readAll(tmp.file('odd.f32', data.subarray(0, 20)), { dim: 3 })), /20 bytes is not a whole number of rows of 3 float32 values \(12 bytes each\)/);
  assert.match(await errorOf(() => readAll(tmp.file('e4.f32', data.subarray(0, 32)), { dim: 4 })), /rows have 4 values, the model's embeddings have 3/);
  assert.match(await errorOf(() => readAll(tmp.file('n.npy', npyBytes(ROWS)), { dim: 3 })), /--dim is for raw \.f32 files only/);
});

test('many rows across read chunks come back exactly, in order', async () => {
  const n = 20_000;
  const rows = Array.from({ length: n }, (_, i) => [i, -i, i / 7]);
  const { records } = await readAll(tmp.file('many.npy', npyBytes(rows)));
  assert.equal(records.length, n);
  assert.deepEqual(values(records[12_345] as never), Array.from(Float32Array.from(rows[12_345] as number[])));
  assert.equal(records[n - 1]?.id, `row-${n - 1}`);
});

test('splitCsvLine handles quotes, doubled quotes, empty fields and refuses an open quote', () => {
  assert.deepEqual(splitCsvLine('a,"b,c",,"d""e"', 'f:1'), ['a', 'b,c', '', 'd"e']);
  assert.deepEqual(splitCsvLine('', 'f:1'), ['']);
  assert.throws(() => splitCsvLine('a,"b', 'f:2'), /f:2: a quoted field has no closing quote/);
});
