import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { ErrorCodes, QualmError } from '../../errors.js';
import type { InRecord, ReadToEndOptions } from '../types.js';

/** A kafkajs message as qualm's record. */
export function inRecord(m: KafkaMessage): InRecord {
  return { key: m.key, value: m.value, headers: m.headers ?? {}, offset: m.offset, timestamp: m.timestamp };
}

/**
 * Reads a topic from its beginning up to the end it had when the call started, in offset
 * order per partition, without joining the worker's group or committing anything: a
 * throw-away consumer group, deleted afterwards. For offline jobs (build-index --labels).
 * Returns the number of messages read; an absent topic reads as empty.
 */
export async function readTopicToEnd(
  kafka: Kafka,
  topic: string,
  /** A returned promise holds the batch until it settles (backpressure for a slow reader). */
  onMessage: (record: InRecord, partition: number) => void | Promise<void>,
  opts: ReadToEndOptions = {},
): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `qualm-read-${randomUUID()}`;
  try {
    if (!(await admin.listTopics()).includes(topic)) return 0;
    // The end to read to: each partition's high watermark now.
    const ends = new Map<number, bigint>();
    for (const p of await admin.fetchTopicOffsets(topic)) {
      if (BigInt(p.high) > BigInt(p.low)) ends.set(p.partition, BigInt(p.high));
    }
    if (ends.size === 0) return 0;
    const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
    let read = 0;
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const remaining = new Set(ends.keys());
        const timer = setTimeout(
          () => reject(new QualmError(ErrorCodes.ABORTED, `reading ${topic} to its end took longer than ${opts.timeoutMs ?? 120_000} ms`)),
          opts.timeoutMs ?? 120_000,
        );
        const abort = (): void => {
          clearTimeout(timer);
          reject(new QualmError(ErrorCodes.ABORTED, `reading ${topic} cancelled`));
        };
        opts.signal?.addEventListener('abort', abort, { once: true });
        const done = (): void => {
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', abort);
          resolve();
        };
        consumer
          .run({
            autoCommit: false,
            eachBatch: async (payload) => {
              const { batch } = payload;
              const end = ends.get(batch.partition);
              if (end === undefined) return;
              for (const m of batch.messages) {
                if (BigInt(m.offset) >= end) break;
                const pending = onMessage(inRecord(m), batch.partition);
                read++;
                if (pending !== undefined) {
                  await pending;
                  await payload.heartbeat();
                }
              }
              // The batch ends at or beyond the partition's end, or at its last offset before it.
              if (BigInt(batch.lastOffset()) + 1n >= end) {
                remaining.delete(batch.partition);
                if (remaining.size === 0) done();
              }
              await Promise.resolve();
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
    }
    return read;
  } finally {
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}
