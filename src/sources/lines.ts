import type { Readable } from 'node:stream';

export type Line =
  /** One line's bytes, without its `\n` (or `\r\n`); `line` counts from 1. */
  | { readonly line: number; readonly bytes: Buffer; readonly tooLong?: undefined }
  /** A line longer than the limit: its bytes were dropped as they came, only its length is known. */
  | { readonly line: number; readonly bytes?: undefined; readonly tooLong: number };

const NEWLINE = 0x0a;

/**
 * The lines of a byte stream, one at a time, holding at most one line (up to `maxLineBytes`)
 * and one chunk in memory: a longer line is dropped as it streams past and reported by its
 * length, so a runaway line cannot exhaust the heap. The last line needs no newline.
 */
export async function* readLines(stream: Readable, maxLineBytes: number, signal?: AbortSignal): AsyncGenerator<Line> {
  let parts: Buffer[] = [];
  let held = 0;
  let overflow = 0;
  let line = 0;
  const emit = (tail: Buffer): Line => {
    line++;
    if (overflow > 0) {
      const length = overflow + tail.length;
      overflow = 0;
      parts = [];
      held = 0;
      return { line, tooLong: length };
    }
    let bytes = parts.length === 0 ? tail : Buffer.concat([...parts, tail]);
    parts = [];
    held = 0;
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length > maxLineBytes) return { line, tooLong: bytes.length };
    return { line, bytes };
  };
  for await (const raw of stream) {
    signal?.throwIfAborted();
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : (raw as Buffer);
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE, start); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      yield emit(chunk.subarray(start, nl));
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (overflow > 0 || held + rest.length > maxLineBytes + 1) {
        overflow += held + rest.length;
        parts = [];
        held = 0;
      } else {
        // Copy: the rest of a chunk would otherwise keep the whole chunk alive.
        parts.push(Buffer.from(rest));
        held += rest.length;
      }
    }
  }
  if (overflow > 0 || held > 0) yield emit(Buffer.alloc(0));
}
