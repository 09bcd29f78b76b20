import { createReadStream } from 'node:fs';
import { extname } from 'node:path';
import { ErrorCodes, QualmError } from '../errors.js';
import { labelValue } from './labels.js';
import { readLines } from './lines.js';
import { SourceRecordError } from './skips.js';
import { CsvLineError, splitCsvLine as splitCsv } from '../util/csv.js';

/** One sidecar line: the id (and label, meta) of the vector in the same position. */
export interface SidecarEntry {
  readonly id: string;
  readonly label?: string;
  readonly meta?: Readonly<Record<string, unknown>>;
  readonly where: string;
}

/** A sidecar line that could not be read: the vector beside it is skipped with it (or the read fails). */
export interface SidecarProblem {
  readonly error: SourceRecordError;
}

const MAX_SIDECAR_LINE = 1 << 20;
const MAX_ID_LENGTH = 512;

/** One CSV line of a sidecar, its errors named by file and line. */
export function splitCsvLine(line: string, where: string): string[] {
  try {
    return splitCsv(line);
  } catch (err) {
    if (err instanceof CsvLineError) throw new SourceRecordError(where, 'bad_csv', err.message);
    throw err;
  }
}

function checkId(raw: unknown, where: string, field: string): string {
  if (typeof raw === 'number' && Number.isFinite(raw)) return String(raw);
  if (typeof raw !== 'string' || raw.trim() === '') throw new SourceRecordError(where, ErrorCodes.MISSING_ID, `${field} must be a non-empty string`);
  if (raw.length > MAX_ID_LENGTH) throw new SourceRecordError(where, ErrorCodes.BAD_SCHEMA, `${field} is longer than ${MAX_ID_LENGTH} characters`);
  return raw;
}

/**
 * The entries of a sidecar file in order, one per non-blank line: JSONL `{id, label?, meta?}`
 * or CSV with a header naming `id` and optionally `label` (other columns go to meta as
 * strings). A bad line is yielded as a problem, so the caller skips the vector beside it.
 */
export async function* readSidecar(path: string, signal?: AbortSignal): AsyncGenerator<SidecarEntry | SidecarProblem> {
  const ext = extname(path).toLowerCase();
  const csv = ext === '.csv';
  if (!csv && ext !== '.jsonl' && ext !== '.ndjson') {
    throw new QualmError(ErrorCodes.SOURCE_INVALID, `sidecar ${path}: expected a .csv or .jsonl file`, { context: { path } });
  }
  let header: string[] | undefined;
  for await (const l of readLines(createReadStream(path), MAX_SIDECAR_LINE, signal)) {
    const where = `${path}:${l.line}`;
    if (l.bytes === undefined) {
      yield { error: new SourceRecordError(where, ErrorCodes.OVERSIZE, `line is ${l.tooLong} bytes, the limit is ${MAX_SIDECAR_LINE}`) };
      continue;
    }
    const text = l.bytes.toString('utf8');
    if (text.trim() === '') continue;
    try {
      if (csv) {
        const fields = splitCsvLine(text, where);
        if (header === undefined) {
          header = fields.map((f) => f.trim());
          if (!header.includes('id')) throw new QualmError(ErrorCodes.SOURCE_INVALID, `${where}: the CSV header must name an id column (and optionally label), got ${text}`, { context: { path } });
          continue;
        }
        if (fields.length !== header.length) throw new SourceRecordError(where, 'bad_csv', `${fields.length} fields, the header has ${header.length}`);
        let id: string | undefined;
        let label: string | undefined;
        const meta: Record<string, unknown> = {};
        header.forEach((h, i) => {
          const v = fields[i] as string;
          if (h === 'id') id = checkId(v, where, 'id');
          else if (h === 'label') label = v === '' ? undefined : labelValue(v, where);
          else meta[h] = v;
        });
        yield { id: id as string, where, ...(label === undefined ? {} : { label }), ...(Object.keys(meta).length === 0 ? {} : { meta }) };
      } else {
        let doc: unknown;
        try {
          doc = JSON.parse(text);
        } catch (err) {
          throw new SourceRecordError(where, ErrorCodes.BAD_JSON, `not valid JSON: ${(err as Error).message}`);
        }
        if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new SourceRecordError(where, ErrorCodes.BAD_SCHEMA, 'a sidecar line must be a JSON object {id, label?, meta?}');
        const o = doc as Record<string, unknown>;
        const id = checkId(o.id, where, 'id');
        const label = labelValue(o.label, where);
        if (o.meta !== undefined && o.meta !== null && (typeof o.meta !== 'object' || Array.isArray(o.meta))) throw new SourceRecordError(where, ErrorCodes.BAD_SCHEMA, 'meta must be a JSON object');
        const meta = o.meta === undefined || o.meta === null ? undefined : (o.meta as Record<string, unknown>);
        yield { id, where, ...(label === undefined ? {} : { label }), ...(meta === undefined ? {} : { meta }) };
      }
    } catch (err) {
      if (err instanceof SourceRecordError) yield { error: err };
      else throw err;
    }
  }
  if (csv && header === undefined) throw new QualmError(ErrorCodes.SOURCE_INVALID, `sidecar ${path} is empty: a CSV sidecar needs a header line (id[,label])`, { context: { path } });
}
