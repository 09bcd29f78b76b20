import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { parseSample } from '../contracts/index.js';
import { ErrorCodes, QualmError } from '../errors.js';
import { labelValue } from './labels.js';
import { SkipCounter, SourceRecordError } from './skips.js';
import type { Source, SourceOptions, SourceRecord } from './types.js';

/** Input columns a Parquet file may hold (exactly one), and the wire-format field each becomes. */
const INPUT_COLUMNS = { features: 'features', text: 'text', embedding: 'embedding', image: 'image_b64' } as const;

function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : String(v);
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

/**
 * A Parquet file read with hyparquet (pure JavaScript, no native code), one row group at a
 * time: columns `id`, one input column (`features` list<float>, `text` string, `embedding`
 * list<float>, `image` binary) and an optional `label` (string or number). Each row is judged
 * by parseSample exactly as the JSON line `{id, input: {...}}` would be.
 */
export async function parquetSource(path: string, opts: SourceOptions): Promise<Source> {
  const file = await asyncBufferFromFile(path);
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (err) {
    throw new QualmError(ErrorCodes.SOURCE_INVALID, `${path}: not a readable Parquet file: ${(err as Error).message}`, { cause: err, context: { path } });
  }
  // Top-level columns: the children of the schema root.
  const names = new Set(metadata.schema.slice(1).map((e) => e.name));
  if (!names.has('id')) throw new QualmError(ErrorCodes.SOURCE_INVALID, `${path}: no id column (columns: ${[...names].join(', ')})`, { context: { path } });
  const inputs = Object.keys(INPUT_COLUMNS).filter((c) => names.has(c)) as (keyof typeof INPUT_COLUMNS)[];
  if (inputs.length !== 1) {
    throw new QualmError(ErrorCodes.SOURCE_INVALID, `${path}: expected exactly one input column of ${Object.keys(INPUT_COLUMNS).join(', ')}, got ${inputs.length === 0 ? 'none' : inputs.join(', ')}`, { context: { path } });
  }
  const inputColumn = inputs[0] as keyof typeof INPUT_COLUMNS;
  const hasLabel = names.has('label');
  const columns = ['id', inputColumn, ...(hasLabel ? ['label'] : [])];
  const skips = new SkipCounter(opts.skipInvalid);

  async function* records(signal?: AbortSignal): AsyncGenerator<SourceRecord> {
    let rowStart = 0;
    for (const group of metadata.row_groups) {
      signal?.throwIfAborted();
      const rowEnd = rowStart + Number(group.num_rows);
      const rows = (await parquetReadObjects({ file, metadata, columns, rowStart, rowEnd, utf8: false })) as Record<string, unknown>[];
      for (let r = 0; r < rows.length; r++) {
        const row = rows[r] as Record<string, unknown>;
        const where = `${path}#${rowStart + r}`;
        let value = plain(row[inputColumn]);
        if (inputColumn === 'image' && value instanceof Array) value = Buffer.from(value as number[]).toString('base64');
        const doc = { id: plain(row.id), input: { [INPUT_COLUMNS[inputColumn]]: value } };
        const parsed = parseSample(Buffer.from(JSON.stringify(doc)), null, opts.spec);
        if (!parsed.ok) {
          skips.reject(new SourceRecordError(where, parsed.code, parsed.message));
          continue;
        }
        let label: string | undefined;
        try {
          label = hasLabel ? labelValue(plain(row.label), where) : undefined;
        } catch (err) {
          if (!(err instanceof SourceRecordError)) throw err;
          skips.reject(err);
          continue;
        }
        yield { id: parsed.sample.id, input: parsed.sample.input, where, ...(label === undefined ? {} : { label }) };
      }
      rowStart = rowEnd;
    }
  }
  return {
    name: path,
    records,
    get skipped() {
      return skips.report;
    },
  };
}
