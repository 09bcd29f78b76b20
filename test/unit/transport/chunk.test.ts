import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunkByBytes, messageBytes, requestsByBytes } from '../../../src/transport/chunk.js';

const rec = (key: string, bytes: number): { key: string; value: Buffer } => ({ key, value: Buffer.alloc(bytes) });

test('messageBytes counts key, value and headers (a repeated header by each value)', () => {
  assert.equal(messageBytes({ key: 'ab', value: 'xyz' }), 2 + 3 + 16);
  assert.equal(messageBytes({ key: null, value: null, headers: { h: ['12', Buffer.alloc(3)] } }), 16 + 1 + 5);
});

test('chunkByBytes keeps order, stays under the limit, and gives an oversize record a run of its own', () => {
  const records = [rec('a', 400), rec('b', 400), rec('c', 2000), rec('d', 100)];
  const runs = chunkByBytes(records, 1000);
  assert.deepEqual(
    runs.map((r) => r.map((m) => m.key)),
    [['a', 'b'], ['c'], ['d']],
  );
});

test('requestsByBytes puts several topics in one request, in order, and splits at the limit', () => {
  const requests = requestsByBytes(
    [
      { topic: 'review', records: [rec('r1', 100)] },
      { topic: 'scores', records: [rec('s1', 300), rec('s2', 300)] },
      { topic: 'dlq', records: [rec('d1', 500)] },
    ],
    1000,
  );
  assert.deepEqual(
    requests.map((req) => req.map((t) => `${t.topic}:${t.messages.map((m) => m.key).join(',')}`)),
    [['review:r1', 'scores:s1,s2'], ['dlq:d1']],
  );
  for (const req of requests) assert.ok(req.reduce((n, t) => n + t.messages.reduce((a, m) => a + messageBytes(m), 0), 0) <= 1000);
  assert.deepEqual(requestsByBytes([{ topic: 'x', records: [] }], 1000), []);
});
