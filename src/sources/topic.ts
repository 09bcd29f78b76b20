import { ErrorCodes, QualmError } from '../errors.js';
import type { InRecord, Transport } from '../transport/index.js';
import { SkipCounter } from './skips.js';
import type { Source, SourceOptions, SourceRecord } from './types.js';
import { wireRecord } from './wire-record.js';

/** Messages held between the consumer and the reader; the consumer's batch waits above it. */
const HIGH_WATER = 1000;
/** The whole read may take as long as the reader needs (setTimeout's largest delay, ~24.8 days). */
const NO_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * `topic:NAME`: the topic from its beginning to the end it had when reading started, in the
 * input wire format plus an optional `label`, judged by parseSample (the Kafka key is the
 * fallback id). Memory stays bounded: at most HIGH_WATER messages wait between the consumer's
 * fetch and the reader; the consumer's batch is held (with heartbeats) until the reader
 * catches up. Order is per partition.
 */
export function topicSource(topic: string, transport: Transport, opts: SourceOptions): Source {
  const skips = new SkipCounter(opts.skipInvalid);
  async function* records(signal?: AbortSignal): AsyncGenerator<SourceRecord> {
    const queue: { m: InRecord; p: number }[] = [];
    let wake: (() => void) | undefined;
    let drained: (() => void) | undefined;
    let finished = false;
    let failure: unknown;
    const stop = new AbortController();
    const both = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal]);
    const reading = transport.readToEnd(
      topic,
      (m, p) => {
        if (stop.signal.aborted) return undefined;
        queue.push({ m, p });
        wake?.();
        return queue.length >= HIGH_WATER ? new Promise<void>((r) => (drained = r)) : undefined;
      },
      { signal: both, timeoutMs: NO_TIMEOUT_MS },
    ).then(
      () => {
        finished = true;
        wake?.();
      },
      (err: unknown) => {
        failure = err;
        finished = true;
        wake?.();
      },
    );
    try {
      for (;;) {
        const item = queue.shift();
        if (item === undefined) {
          if (finished) break;
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
          continue;
        }
        if (queue.length < HIGH_WATER / 2 && drained !== undefined) {
          drained();
          drained = undefined;
        }
        const where = `topic ${topic}/${item.p}@${item.m.offset}`;
        const record = wireRecord(item.m.value, item.m.key, opts.spec, where, skips);
        if (record !== null) yield record;
      }
      if (failure !== undefined) {
        signal?.throwIfAborted();
        throw failure instanceof QualmError ? failure : new QualmError(ErrorCodes.SOURCE_INVALID, `reading topic ${topic}: ${(failure as Error).message}`, { cause: failure, retriable: true, context: { topic } });
      }
    } finally {
      if (!finished) stop.abort();
      drained?.();
      await reading;
    }
  }
  return {
    name: `topic:${topic}`,
    records,
    get skipped() {
      return skips.report;
    },
  };
}
