import type { Readable } from 'node:stream';
import { ErrorCodes } from '../errors.js';
import { readLines } from './lines.js';
import { SkipCounter, SourceRecordError } from './skips.js';
import type { Source, SourceOptions, SourceRecord } from './types.js';
import { wireRecord } from './wire-record.js';

/** Only spaces, tabs and carriage returns (most lines stop at their first byte, a `{`). */
function isBlank(line: Buffer): boolean {
  for (const b of line) if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
  return true;
}

/**
 * Lines of the input wire format (README "Message formats") plus an optional top-level
 * `label`, judged by the worker's own parseSample: a file line and a Kafka message pass or
 * fail by the same rules. Lines are read one at a time (readLines); blank lines are skipped.
 * `name` names the file in messages ("refs.jsonl:17: ..."); `open` gives a fresh byte stream.
 */
export function jsonlSource(name: string, open: () => Readable, opts: SourceOptions): Source {
  const skips = new SkipCounter(opts.skipInvalid);
  const maxLineBytes = opts.maxLineBytes ?? opts.spec.maxBytes;
  async function* records(signal?: AbortSignal): AsyncGenerator<SourceRecord> {
    for await (const l of readLines(open(), maxLineBytes, signal)) {
      const where = `${name}:${l.line}`;
      if (l.bytes === undefined) {
        skips.reject(new SourceRecordError(where, ErrorCodes.OVERSIZE, `line is ${l.tooLong} bytes, the limit is ${maxLineBytes}`));
        continue;
      }
      if (isBlank(l.bytes)) continue;
      const record = wireRecord(l.bytes, null, opts.spec, where, skips);
      if (record !== null) yield record;
    }
  }
  return {
    name,
    records,
    get skipped() {
      return skips.report;
    },
  };
}
