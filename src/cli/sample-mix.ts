import { row, type ImageSet } from '../datasets/index.js';
import { seededRandom } from '../util/random.js';

export { seededRandom };

export const MALFORMED_KINDS = ['bad_json', 'wrong_length', 'nan', 'missing_id', 'oversize'] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];
export type SampleKind = 'in_dist' | 'ood' | MalformedKind;

export interface MixOptions {
  /** Share of out-of-distribution samples, in [0, 1]. */
  oodShare: number;
  /** Share of malformed messages, in [0, 1]. */
  malformedShare: number;
  seed: number;
  /** Bytes of an oversize message (must exceed the worker's QUALM_MAX_MESSAGE_BYTES). */
  oversizeBytes: number;
  /** Prefix of sample ids, so that runs do not collide. */
  idPrefix: string;
}

export interface MixedMessage {
  readonly kind: SampleKind;
  readonly key: string | null;
  readonly value: string;
}

function features(set: ImageSet, i: number): number[] {
  // Pixel values are k/255; 4 decimals keep the message small and the value exact enough.
  return Array.from(row(set, i), (v) => Math.round(v * 10000) / 10000);
}

/**
 * An endless, reproducible stream of wire messages: in-distribution images, out-of-
 * distribution images and malformed messages of every kind, in the asked proportions.
 * Every good message carries meta.source (the data set) and meta.label.
 */
export function* sampleMix(inDist: ImageSet, ood: ImageSet, opts: MixOptions): Generator<MixedMessage> {
  const rnd = seededRandom(opts.seed);
  let n = 0;
  let iIn = 0;
  let iOod = 0;
  for (;;) {
    n++;
    const id = `${opts.idPrefix}-${n}`;
    const r = rnd();
    if (r < opts.malformedShare) {
      const kind = MALFORMED_KINDS[Math.floor(rnd() * MALFORMED_KINDS.length)] as MalformedKind;
      yield malformed(kind, id, inDist, opts.oversizeBytes);
      continue;
    }
    const isOod = r < opts.malformedShare + opts.oodShare;
    const set = isOod ? ood : inDist;
    const i = isOod ? iOod++ % ood.n : iIn++ % inDist.n;
    const value = JSON.stringify({
      id,
      input: { features: features(set, i) },
      meta: { source: set.name, index: i, label: set.labelNames[set.labels[i] as number] ?? null },
    });
    yield { kind: isOod ? 'ood' : 'in_dist', key: id, value };
  }
}

function malformed(kind: MalformedKind, id: string, set: ImageSet, oversizeBytes: number): MixedMessage {
  const good = features(set, 0);
  switch (kind) {
    case 'bad_json':
      return { kind, key: id, value: `{"id":"${id}","input":{"features":[0.1,0.2` };
    case 'wrong_length':
      return { kind, key: id, value: JSON.stringify({ id, input: { features: good.slice(0, 100) }, meta: { source: 'malformed' } }) };
    case 'nan': {
      // As Python's json.dumps writes a NaN: a bare token that JSON does not allow.
      const text = JSON.stringify({ id, input: { features: good }, meta: { source: 'malformed' } });
      return { kind, key: id, value: text.replace('"features":[', '"features":[NaN,').replace(/,[^,\]]*\]/, ']') };
    }
    case 'missing_id':
      return { kind, key: null, value: JSON.stringify({ input: { features: good }, meta: { source: 'malformed' } }) };
    case 'oversize':
      return { kind, key: id, value: JSON.stringify({ id, input: { features: good }, meta: { source: 'malformed', pad: 'x'.repeat(oversizeBytes) } }) };
  }
}
