import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InputSpec } from '../../../src/contracts/index.js';
import { openSource, type SkipReport, type SourceOptions, type SourceRecord } from '../../../src/sources/index.js';

/** A features model of 4 inputs and 3-dimensional embeddings. */
export const SPEC: InputSpec = { inputKind: 'features', inputDim: 4, embeddingDim: 3, maxBytes: 10_000 };

export function tempDir(): { dir: string; file: (name: string, body: string | Buffer) => string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'qualm-sources-'));
  return {
    dir,
    file: (name, body) => {
      const p = join(dir, name);
      writeFileSync(p, body);
      return p;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A .npy file (format version `version`) of float32 rows with a custom header dict when given. */
export function npyBytes(rows: readonly (readonly number[])[], opts: { version?: 1 | 2 | 3; header?: string } = {}): Buffer {
  const version = opts.version ?? 1;
  const d = rows[0]?.length ?? 0;
  let dict = opts.header ?? `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows.length}, ${d}), }`;
  const pre = version === 1 ? 10 : 12;
  const pad = 64 - ((pre + dict.length + 1) % 64);
  dict = dict + ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(pre);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(head);
  if (version === 1) head.writeUInt16LE(dict.length, 8);
  else head.writeUInt32LE(dict.length, 8);
  const data = Buffer.alloc(rows.length * d * 4);
  rows.forEach((r, i) => r.forEach((v, j) => data.writeFloatLE(v, (i * d + j) * 4)));
  return Buffer.concat([head, Buffer.from(dict, 'latin1'), data]);
}

export async function readAll(spec: string, opts: Partial<SourceOptions> = {}): Promise<{ records: SourceRecord[]; skipped: SkipReport }> {
  const source = await openSource(spec, { spec: SPEC, skipInvalid: false, ...opts });
  const records: SourceRecord[] = [];
  for await (const r of source.records()) records.push(r);
  return { records, skipped: source.skipped };
}

/** The message of the error `fn` rejects with, which must carry QUALM_SOURCE_INVALID. */
export async function errorOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    const e = err as { code?: string; message: string };
    if (e.code !== 'QUALM_SOURCE_INVALID') throw err;
    return e.message;
  }
  throw new Error('expected a QUALM_SOURCE_INVALID error, got none');
}
