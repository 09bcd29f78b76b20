import type { OutRecord } from './types.js';

/** Largest produce request qualm sends (the broker default message.max.bytes is about 1 MiB). */
export const PRODUCE_CHUNK_BYTES = 512 * 1024;

/** Approximate wire size of a message: key, value and headers. */
export function messageBytes(m: OutRecord): number {
  const len = (v: Buffer | string | null | undefined): number => (v === null || v === undefined ? 0 : Buffer.isBuffer(v) ? v.length : Buffer.byteLength(v));
  let n = len(m.key) + len(m.value) + 16;
  for (const [k, v] of Object.entries(m.headers ?? {})) n += Buffer.byteLength(k) + (Array.isArray(v) ? v.reduce((a: number, x) => a + len(x), 0) : len(v));
  return n;
}

/**
 * Splits messages, in order, into runs of at most `maxBytes` each, so that no produce
 * request exceeds the broker's message.max.bytes. A single larger message gets a run of
 * its own (the broker accepts or refuses it on its own merits).
 */
export function chunkByBytes<M extends OutRecord>(messages: readonly M[], maxBytes: number): M[][] {
  return requestsByBytes([{ topic: '', records: messages }], maxBytes).map((request) => (request[0] as { messages: M[] }).messages);
}

/**
 * Splits records of several topics, in order, into produce requests of at most `maxBytes`
 * each, every request holding records of one or more topics: a job's review, score and DLQ
 * records then go in one round trip instead of one per topic.
 */
export function requestsByBytes<M extends OutRecord>(batches: readonly { readonly topic: string; readonly records: readonly M[] }[], maxBytes: number): { topic: string; messages: M[] }[][] {
  const out: { topic: string; messages: M[] }[][] = [];
  let cur: { topic: string; messages: M[] }[] = [];
  let size = 0;
  for (const { topic, records } of batches) {
    for (const m of records) {
      const b = messageBytes(m);
      if (size > 0 && size + b > maxBytes) {
        out.push(cur);
        cur = [];
        size = 0;
      }
      const last = cur[cur.length - 1];
      if (last?.topic === topic) last.messages.push(m);
      else cur.push({ topic, messages: [m] });
      size += b;
    }
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
