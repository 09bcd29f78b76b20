import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { ErrorCodes, QualmError } from '../errors.js';
import { readSidecar, type SidecarEntry, type SidecarProblem } from './sidecar.js';
import { SkipCounter, SourceRecordError } from './skips.js';
import type { Source, SourceOptions, SourceRecord } from './types.js';

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

/** The layout of a `.npy` file qualm reads: little-endian float32, C order, two dimensions. */
export interface NpyLayout {
  readonly rows: number;
  readonly cols: number;
  /** Byte offset of the first value. */
  readonly dataOffset: number;
}

function npyError(path: string, detail: string): QualmError {
  return new QualmError(ErrorCodes.SOURCE_INVALID, `${path}: ${detail}`, { context: { path } });
}

/**
 * Reads a `.npy` header (format versions 1, 2 and 3) from the file's first bytes and accepts
 * only `descr '<f4'`, `fortran_order False` and a shape `(N, D)`; anything else is refused
 * with what was found.
 */
export function parseNpyHeader(head: Buffer, path: string): NpyLayout {
  if (head.length < 10 || !head.subarray(0, 6).equals(NPY_MAGIC)) throw npyError(path, 'not a .npy file (no \\x93NUMPY magic)');
  const major = head[6] as number;
  if (major < 1 || major > 3) throw npyError(path, `.npy format version ${major}.${head[7] as number} is not supported (1, 2 or 3)`);
  const lenBytes = major === 1 ? 2 : 4;
  const start = 8 + lenBytes;
  if (head.length < start) throw npyError(path, 'the .npy header is truncated');
  const len = major === 1 ? head.readUInt16LE(8) : head.readUInt32LE(8);
  if (head.length < start + len) throw npyError(path, `the .npy header is truncated (it declares ${len} bytes)`);
  const text = head.subarray(start, start + len).toString(major === 3 ? 'utf8' : 'latin1');
  const field = (key: string): string | undefined => new RegExp(`['"]${key}['"]\\s*:\\s*('[^']*'|"[^"]*"|True|False|\\([^)]*\\))`).exec(text)?.[1];
  const descr = field('descr');
  if (descr === undefined) throw npyError(path, `the .npy header has no descr: ${text.trim()}`);
  const d = descr.slice(1, -1);
  if (d !== '<f4' && d !== '=f4' && !(d === '|f4')) throw npyError(path, `dtype ${descr} is not supported: qualm reads little-endian float32 ('<f4'); convert with arr.astype('<f4')`);
  const fortran = field('fortran_order');
  if (fortran !== 'False') throw npyError(path, `fortran_order ${fortran ?? '(missing)'} is not supported: save a C-ordered array (np.ascontiguousarray)`);
  const shape = field('shape');
  const m = shape === undefined ? null : /^\(\s*(\d+)\s*,\s*(\d+)\s*,?\s*\)$/.exec(shape);
  if (m === null) throw npyError(path, `shape ${shape ?? '(missing)'} is not supported: qualm reads a two-dimensional (N, D) array`);
  const rows = Number(m[1]);
  const cols = Number(m[2]);
  if (cols < 1) throw npyError(path, `shape ${shape as string} has no columns`);
  return { rows, cols, dataOffset: start + len };
}

async function readNpyLayout(path: string): Promise<NpyLayout> {
  const fh = await open(path, 'r');
  try {
    const first = Buffer.alloc(12);
    const { bytesRead } = await fh.read(first, 0, 12, 0);
    const head0 = first.subarray(0, bytesRead);
    if (bytesRead < 10 || !head0.subarray(0, 6).equals(NPY_MAGIC)) return parseNpyHeader(head0, path);
    const major = head0[6] as number;
    const len = major === 1 ? head0.readUInt16LE(8) : bytesRead >= 12 ? head0.readUInt32LE(8) : 0;
    const total = Math.min((major === 1 ? 10 : 12) + len, 1 << 20);
    const head = Buffer.alloc(total);
    const got = await fh.read(head, 0, total, 0);
    return parseNpyHeader(head.subarray(0, got.bytesRead), path);
  } finally {
    await fh.close();
  }
}

/** Streams rows of `cols` little-endian float32 values starting at `offset`, one Float32Array each. */
async function* readRows(path: string, offset: number, cols: number, signal?: AbortSignal): AsyncGenerator<Float32Array> {
  const rowBytes = cols * 4;
  let carry = Buffer.alloc(0);
  for await (const raw of createReadStream(path, { start: offset, highWaterMark: Math.max(1 << 16, rowBytes) })) {
    signal?.throwIfAborted();
    let chunk = raw as Buffer;
    if (carry.length > 0) {
      chunk = Buffer.concat([carry, chunk]);
      carry = Buffer.alloc(0);
    }
    let at = 0;
    for (; at + rowBytes <= chunk.length; at += rowBytes) {
      const row = new Float32Array(cols);
      for (let j = 0; j < cols; j++) row[j] = chunk.readFloatLE(at + j * 4);
      yield row;
    }
    if (at < chunk.length) carry = Buffer.from(chunk.subarray(at));
  }
}

/**
 * Precomputed embeddings: a `.npy` float32 (N, D) file or a raw little-endian `.f32` file
 * with `dim` values per row, as `embedding` records. Ids and labels come from the sidecar
 * (line i for row i; a different count is an error), else ids are `row-<i>` and there are no
 * labels. D must be the model's embedding dimension.
 */
export async function vectorSource(path: string, format: 'npy' | 'f32', opts: SourceOptions): Promise<Source> {
  let layout: NpyLayout;
  const size = (await stat(path)).size;
  if (format === 'npy') {
    layout = await readNpyLayout(path);
    const expected = layout.dataOffset + layout.rows * layout.cols * 4;
    if (size !== expected) throw npyError(path, `the header declares ${layout.rows} x ${layout.cols} float32 values (${expected} bytes with the header), the file has ${size} bytes`);
  } else {
    if (opts.dim === undefined) throw npyError(path, 'a raw .f32 file needs --dim D (values per row)');
    const rowBytes = opts.dim * 4;
    if (size % rowBytes !== 0) throw npyError(path, `${size} bytes is not a whole number of rows of ${opts.dim} float32 values (${rowBytes} bytes each)`);
    layout = { rows: size / rowBytes, cols: opts.dim, dataOffset: 0 };
  }
  const want = opts.spec.embeddingDim;
  if (layout.cols !== want) throw npyError(path, `rows have ${layout.cols} values, the model's embeddings have ${want}`);
  const skips = new SkipCounter(opts.skipInvalid);
  const sidecar = opts.sidecar;
  if (sidecar !== undefined) {
    try {
      await stat(sidecar);
    } catch (err) {
      throw new QualmError(ErrorCodes.SOURCE_INVALID, `sidecar ${sidecar}: cannot read: ${(err as Error).message}`, { cause: err, context: { path: sidecar } });
    }
  }

  async function* records(signal?: AbortSignal): AsyncGenerator<SourceRecord> {
    const side: AsyncGenerator<SidecarEntry | SidecarProblem> | undefined = sidecar === undefined ? undefined : readSidecar(sidecar, signal);
    let i = 0;
    try {
      for await (const values of readRows(path, layout.dataOffset, layout.cols, signal)) {
        const where = `${path}#${i}`;
        let entry: SidecarEntry | undefined;
        let problem: SourceRecordError | undefined;
        if (side !== undefined) {
          const next = await side.next();
          if (next.done === true) throw new QualmError(ErrorCodes.SOURCE_INVALID, `sidecar ${sidecar as string} has ${i} entries, ${path} has ${layout.rows} rows`, { context: { path: sidecar as string } });
          if ('error' in next.value) problem = next.value.error;
          else entry = next.value;
        }
        i++;
        if (problem !== undefined) {
          skips.reject(problem);
          continue;
        }
        const bad = values.findIndex((v) => !Number.isFinite(v));
        const at = entry?.where ?? where;
        if (bad >= 0) {
          skips.reject(new SourceRecordError(`${where}${entry === undefined ? '' : ` (${at})`}`, ErrorCodes.NON_FINITE, `embedding[${bad}] is not a finite number`));
          continue;
        }
        const id = entry?.id ?? `row-${i - 1}`;
        yield {
          id,
          input: { kind: 'embedding', values },
          where: at,
          ...(entry?.label === undefined ? {} : { label: entry.label }),
          ...(entry?.meta === undefined ? {} : { meta: entry.meta }),
        };
      }
      if (side !== undefined) {
        let extra = 0;
        for (let n = await side.next(); n.done !== true; n = await side.next()) extra++;
        if (extra > 0) throw new QualmError(ErrorCodes.SOURCE_INVALID, `sidecar ${sidecar as string} has ${i + extra} entries, ${path} has ${layout.rows} rows`, { context: { path: sidecar as string } });
      }
    } finally {
      await side?.return(undefined);
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
