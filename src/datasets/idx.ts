import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { ErrorCodes, QualmError } from '../errors.js';

/** An IDX file's payload (unsigned bytes only, as used by MNIST-style data sets). */
export interface IdxArray {
  readonly dims: readonly number[];
  readonly data: Uint8Array;
}

function bad(path: string, message: string): QualmError {
  return new QualmError(ErrorCodes.DATASET_INVALID, `${path}: ${message}`, { context: { path } });
}

/** Parses an IDX buffer (magic 0x00 0x00 0x08 ndim, big-endian dims, then ubyte data). */
export function parseIdx(buf: Uint8Array, path = '<buffer>'): IdxArray {
  if (buf.length < 4) throw bad(path, 'too short for an IDX header');
  if (buf[0] !== 0 || buf[1] !== 0) throw bad(path, 'not an IDX file (bad magic)');
  if (buf[2] !== 0x08) throw bad(path, `IDX element type 0x${(buf[2] ?? 0).toString(16)} is not unsigned byte`);
  const ndim = buf[3] as number;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const header = 4 + 4 * ndim;
  if (buf.length < header) throw bad(path, 'truncated IDX header');
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const size = dims.reduce((a, b) => a * b, 1);
  if (buf.length !== header + size) throw bad(path, `expected ${header + size} bytes for dims ${dims.join('x')}, got ${buf.length}`);
  return { dims, data: buf.subarray(header) };
}

/** Reads an IDX file, gunzipping it when the name ends in .gz. */
export function readIdxFile(path: string): IdxArray {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (err) {
    throw new QualmError(ErrorCodes.DATASET_INVALID, `cannot read ${path}: ${(err as Error).message}`, { cause: err, context: { path } });
  }
  return parseIdx(path.endsWith('.gz') ? gunzipSync(raw) : raw, path);
}

/** Serialises ubyte data as IDX (used to write the committed data slice). */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}
