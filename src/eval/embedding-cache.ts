import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A directory of embeddings computed before, so that an evaluation run again does not embed
 * again. An entry is keyed by everything the vectors depend on: the model file's sha256, the
 * encoder settings that change the output (e.g. `max_tokens=256`), and the sha256 of the
 * inputs themselves. It holds `<key>.f32` (row-major little-endian float32) and `<key>.json`
 * (what the key was made of, the shape, and the sha256 of the .f32, checked on read). A
 * missing, partial or mismatching entry is a miss; entries are written to a temporary name
 * and renamed into place, data first, so a cancelled run leaves no entry that reads as valid.
 */
export interface EmbeddingCacheKey {
  /** sha256 of the model file. */
  readonly modelSha256: string;
  /** Encoder settings that change the vectors, as `name=value` strings. */
  readonly settings: readonly string[];
  /** sha256 of the inputs (see hashTexts). */
  readonly inputsSha256: string;
  /** Which vectors: e.g. `mean-pooled` (before L2 normalisation). */
  readonly what: string;
}

interface EntryMeta {
  readonly format: 1;
  readonly key: EmbeddingCacheKey;
  readonly n: number;
  readonly dim: number;
  readonly data_sha256: string;
  readonly created_at: string;
}

/** sha256 over the texts in order, each length-prefixed so that no two lists collide. */
export function hashTexts(texts: readonly string[]): string {
  const h = createHash('sha256');
  const len = Buffer.alloc(8);
  for (const t of texts) {
    const bytes = Buffer.from(t, 'utf8');
    len.writeBigUInt64LE(BigInt(bytes.length));
    h.update(len);
    h.update(bytes);
  }
  return h.digest('hex');
}

function entryName(key: EmbeddingCacheKey): string {
  return createHash('sha256').update(JSON.stringify([key.modelSha256, key.settings, key.inputsSha256, key.what])).digest('hex').slice(0, 32);
}

function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

export class EmbeddingCache {
  constructor(readonly dir: string) {}

  /** The cached n x dim rows for `key`, or undefined when there are none (or they do not check out). */
  async get(key: EmbeddingCacheKey, n: number, dim: number): Promise<Float32Array | undefined> {
    const base = join(this.dir, entryName(key));
    let meta: EntryMeta;
    let data: Buffer;
    try {
      meta = JSON.parse(await readFile(`${base}.json`, 'utf8')) as EntryMeta;
      data = await readFile(`${base}.f32`);
    } catch {
      return undefined;
    }
    if (meta.format !== 1 || meta.n !== n || meta.dim !== dim || JSON.stringify(meta.key) !== JSON.stringify(key)) return undefined;
    if (data.length !== n * dim * 4 || sha256(data) !== meta.data_sha256) return undefined;
    const out = new Float32Array(n * dim);
    for (let i = 0; i < out.length; i++) out[i] = data.readFloatLE(i * 4);
    return out;
  }

  async put(key: EmbeddingCacheKey, rows: Float32Array, dim: number): Promise<void> {
    if (rows.length % dim !== 0) throw new RangeError(`${rows.length} values are not rows of ${dim}`);
    await mkdir(this.dir, { recursive: true });
    const base = join(this.dir, entryName(key));
    const data = Buffer.alloc(rows.length * 4);
    for (let i = 0; i < rows.length; i++) data.writeFloatLE(rows[i] as number, i * 4);
    const meta: EntryMeta = { format: 1, key, n: rows.length / dim, dim, data_sha256: sha256(data), created_at: new Date().toISOString() };
    const tmp = `${base}.${randomUUID().slice(0, 8)}.tmp`;
    try {
      await writeFile(`${tmp}.f32`, data);
      await rename(`${tmp}.f32`, `${base}.f32`);
      await writeFile(`${tmp}.json`, `${JSON.stringify(meta, null, 2)}\n`);
      await rename(`${tmp}.json`, `${base}.json`);
    } finally {
      await rm(`${tmp}.f32`, { force: true });
      await rm(`${tmp}.json`, { force: true });
    }
  }

  /** The cached rows for `key`, or `compute()`'s, stored for next time; `hit` says which. */
  async getOrCompute(key: EmbeddingCacheKey, n: number, dim: number, compute: () => Promise<Float32Array>): Promise<{ rows: Float32Array; hit: boolean }> {
    const cached = await this.get(key, n, dim);
    if (cached !== undefined) return { rows: cached, hit: true };
    const rows = await compute();
    if (rows.length !== n * dim) throw new RangeError(`computed ${rows.length} values, expected ${n} rows of ${dim}`);
    await this.put(key, rows, dim);
    return { rows, hit: false };
  }
}
