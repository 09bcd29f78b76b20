import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { ErrorCodes, QualmError } from '../errors.js';
import { builtinSource } from './builtin.js';
import { jsonlSource } from './jsonl.js';
import { parquetSource } from './parquet.js';
import { topicSource } from './topic.js';
import type { Source, SourceOptions } from './types.js';
import { vectorSource } from './vectors.js';

/** The forms a source spec takes, for help texts. */
export const SOURCE_SPEC_FORMS = 'PATH (.jsonl, .ndjson, .npy, .f32, .parquet), - (JSONL on stdin), topic:NAME or builtin:NAME[/SPLIT]';

/**
 * Opens a source from its spec: `PATH` by extension (`.jsonl`/`.ndjson`, `.npy`, `.f32`,
 * `.parquet`), `-` for JSONL on stdin, `topic:NAME` (needs opts.transport) or
 * `builtin:NAME[/SPLIT]`. File headers and options are checked here; records are read
 * when iterated.
 */
export async function openSource(spec: string, opts: SourceOptions): Promise<Source> {
  const vectors = /\.(npy|f32)$/i.test(spec);
  if (opts.sidecar !== undefined && !vectors) throw new QualmError(ErrorCodes.SOURCE_INVALID, `${spec}: a sidecar goes with a .npy or .f32 file (other sources carry their own ids and labels)`);
  if (opts.dim !== undefined && !/\.f32$/i.test(spec)) throw new QualmError(ErrorCodes.SOURCE_INVALID, `${spec}: --dim is for raw .f32 files only`);
  if (spec === '-') return jsonlSource('stdin', () => process.stdin, opts);
  if (spec.startsWith('builtin:')) return builtinSource(spec, opts);
  if (spec.startsWith('topic:')) {
    const topic = spec.slice('topic:'.length);
    if (topic === '') throw new QualmError(ErrorCodes.SOURCE_INVALID, 'topic: needs a topic name (topic:NAME)');
    if (opts.transport === undefined) throw new QualmError(ErrorCodes.SOURCE_INVALID, `${spec}: reading a topic needs a Kafka client`);
    return topicSource(topic, opts.transport, opts);
  }
  const ext = extname(spec).toLowerCase();
  const known = ['.jsonl', '.ndjson', '.npy', '.f32', '.parquet'];
  if (!known.includes(ext)) throw new QualmError(ErrorCodes.SOURCE_INVALID, `${spec}: unknown source; expected ${SOURCE_SPEC_FORMS}`);
  try {
    const st = await stat(spec);
    if (!st.isFile()) throw new Error('not a regular file');
  } catch (err) {
    throw new QualmError(ErrorCodes.SOURCE_INVALID, `${spec}: cannot read: ${(err as Error).message}`, { cause: err, context: { path: spec } });
  }
  switch (ext) {
    case '.npy':
      return vectorSource(spec, 'npy', opts);
    case '.f32':
      return vectorSource(spec, 'f32', opts);
    case '.parquet':
      return parquetSource(spec, opts);
    default:
      return jsonlSource(spec, () => createReadStream(spec, { highWaterMark: 1 << 16 }), opts);
  }
}
