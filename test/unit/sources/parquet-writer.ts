// A minimal Parquet writer for the tests (no writer is installed): REQUIRED flat columns and
// REQUIRED list<float> columns (the three-level LIST layout, levels RLE-encoded), PLAIN
// encoding, uncompressed, one data page per column chunk, the footer in Thrift's compact
// protocol. Enough to give hyparquet real files with several row groups.

export type Column = { readonly name: string } & (
  | { readonly type: 'string'; readonly values: readonly string[] }
  | { readonly type: 'binary'; readonly values: readonly Buffer[] }
  | { readonly type: 'int32'; readonly values: readonly number[] }
  /** list<float>, every list non-empty. */
  | { readonly type: 'floats'; readonly values: readonly (readonly number[])[] }
);

const I32 = 5;
const I64 = 6;
const BINARY = 8;
const LIST = 9;
const STRUCT = 12;

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    out.push(b);
  } while (v > 0);
  return out;
}
const zigzag = (n: number): number[] => varint(n >= 0 ? n * 2 : -n * 2 - 1);

/** A Thrift compact struct: fields as [id, type, value] in ascending id order. */
type Field = [number, number, unknown];
function struct(fields: readonly Field[]): number[] {
  const out: number[] = [];
  let last = 0;
  for (const [id, type, value] of fields) {
    out.push(((id - last) << 4) | type);
    last = id;
    out.push(...encode(type, value));
  }
  out.push(0);
  return out;
}
function encode(type: number, value: unknown): number[] {
  if (type === I32 || type === I64) return zigzag(value as number);
  if (type === BINARY) {
    const b = Buffer.from(value as string);
    return [...varint(b.length), ...b];
  }
  if (type === STRUCT) return struct(value as Field[]);
  if (type === LIST) {
    const [elemType, items] = value as [number, unknown[]];
    const head = items.length < 15 ? [(items.length << 4) | elemType] : [0xf0 | elemType, ...varint(items.length)];
    return [...head, ...items.flatMap((i) => encode(elemType, i))];
  }
  throw new Error(`type ${type}`);
}

/** One RLE run of the hybrid level encoding (bit width 1): `count` times `value`. */
function run(count: number, value: number): number[] {
  return [...varint(count << 1), value];
}

/** Repetition then definition levels (each with its 4-byte length) and the PLAIN floats of rows [from, to). */
function listPage(values: readonly (readonly number[])[], from: number, to: number): { data: Buffer; count: number } {
  const rep: number[] = [];
  const floats: number[] = [];
  for (let i = from; i < to; i++) {
    const row = values[i] as readonly number[];
    rep.push(...run(1, 0), ...(row.length > 1 ? run(row.length - 1, 1) : []));
    floats.push(...row);
  }
  const def = run(floats.length, 1);
  const len = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const data = Buffer.alloc(floats.length * 4);
  floats.forEach((v, j) => data.writeFloatLE(v, j * 4));
  return { data: Buffer.concat([len(rep.length), Buffer.from(rep), len(def.length), Buffer.from(def), data]), count: floats.length };
}

function plain(c: Column, from: number, to: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = from; i < to; i++) {
    if (c.type === 'floats') throw new Error('list columns are written by listPage');
    if (c.type === 'int32') {
      const b = Buffer.alloc(4);
      b.writeInt32LE(c.values[i] as number);
      parts.push(b);
    } else {
      const v = c.type === 'string' ? Buffer.from(c.values[i] as string) : (c.values[i] as Buffer);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(v.length);
      parts.push(len, v);
    }
  }
  return Buffer.concat(parts);
}

const physical = (c: Column): number => (c.type === 'int32' ? 1 : c.type === 'floats' ? 4 : 6);

/** A Parquet file of `columns` (all of the same length) in row groups of `rowGroupSize`. */
export function parquetFile(columns: readonly Column[], rowGroupSize: number): Buffer {
  const n = columns[0]?.values.length ?? 0;
  const chunks: Buffer[] = [Buffer.from('PAR1')];
  let offset = 4;
  const groups: Field[][] = [];
  for (let start = 0; start < n; start += rowGroupSize) {
    const end = Math.min(n, start + rowGroupSize);
    const cols: Field[][] = [];
    let total = 0;
    for (const c of columns) {
      const page = c.type === 'floats' ? listPage(c.values, start, end) : { data: plain(c, start, end), count: end - start };
      const data = page.data;
      const header = Buffer.from(
        struct([
          [1, I32, 0],
          [2, I32, data.length],
          [3, I32, data.length],
          [5, STRUCT, [[1, I32, page.count], [2, I32, 0], [3, I32, 3], [4, I32, 3]] as Field[]],
        ]),
      );
      const pageOffset = offset;
      chunks.push(header, data);
      offset += header.length + data.length;
      total += header.length + data.length;
      cols.push([
        [2, I64, pageOffset],
        [
          3,
          STRUCT,
          [
            [1, I32, physical(c)],
            [2, LIST, [I32, [0]]],
            [3, LIST, [BINARY, c.type === 'floats' ? [c.name, 'list', 'element'] : [c.name]]],
            [4, I32, 0],
            [5, I64, page.count],
            [6, I64, header.length + data.length],
            [7, I64, header.length + data.length],
            [9, I64, pageOffset],
          ] as Field[],
        ],
      ]);
    }
    groups.push([
      [1, LIST, [STRUCT, cols]],
      [2, I64, total],
      [3, I64, end - start],
    ]);
  }
  const schema: Field[][] = [
    [
      [4, BINARY, 'schema'],
      [5, I32, columns.length],
    ],
    ...columns.flatMap((c): Field[][] =>
      c.type === 'floats'
        ? [
            [
              [3, I32, 0],
              [4, BINARY, c.name],
              [5, I32, 1],
              [6, I32, 3],
            ],
            [
              [3, I32, 2],
              [4, BINARY, 'list'],
              [5, I32, 1],
            ],
            [
              [1, I32, 4],
              [3, I32, 0],
              [4, BINARY, 'element'],
            ],
          ]
        : [[[1, I32, physical(c)], [3, I32, 0], [4, BINARY, c.name], ...(c.type === 'string' ? ([[6, I32, 0]] as Field[]) : [])]],
    ),
  ];
  const footer = Buffer.from(
    struct([
      [1, I32, 1],
      [2, LIST, [STRUCT, schema]],
      [3, I64, n],
      [4, LIST, [STRUCT, groups]],
    ]),
  );
  const len = Buffer.alloc(4);
  len.writeUInt32LE(footer.length);
  chunks.push(footer, len, Buffer.from('PAR1'));
  return Buffer.concat(chunks);
}
