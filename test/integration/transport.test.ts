// The transport seam's conformance suite (src/transport/types.ts), on a real Kafka broker.
// Every Transport implementation must pass it; kafkajs's is the one qualm ships.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import kafkajs, { type Kafka } from 'kafkajs';
import { loadConfig } from '../../src/config/index.js';
import { startLocalKafka, type LocalKafka } from '../../src/local-kafka/index.js';
import { createLogger } from '../../src/logging/index.js';
import { KafkajsTransport, type ConsumedBatch, type ConsumerEvent, type GroupConsumer, type InRecord, type Transport } from '../../src/transport/index.js';
import { TopicReader, committedOffset, createTopics, testKafka, uniqueName, waitFor } from '../helpers/kafka.js';

let broker: LocalKafka;
let kafka: Kafka;
let transport: Transport;
const closers: (() => Promise<unknown>)[] = [];

before(async () => {
  broker = await startLocalKafka();
  kafka = testKafka(broker.brokers);
  transport = KafkajsTransport.fromConfig({ ...loadConfig({}), kafkaBrokers: broker.brokers }, createLogger('silent'), '-conformance');
});

after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await broker?.stop();
});

async function publish(topic: string, records: { key: string | null; value: string | Buffer; headers?: Record<string, string | Buffer | (string | Buffer)[]> }[]): Promise<void> {
  const p = transport.publisher();
  await p.connect();
  try {
    await p.publish([{ topic, records }]);
  } finally {
    await p.close();
  }
}

async function readAll(topic: string): Promise<InRecord[]> {
  const out: InRecord[] = [];
  const n = await transport.readToEnd(topic, (r) => void out.push(r));
  assert.equal(n, out.length, 'readToEnd returns the number of records it handed over');
  return out;
}

/** A group member that records its events and batches; `handle` decides what each batch does. */
function member(groupId: string, topic: string, handle: (b: ConsumedBatch) => Promise<void>): { consumer: GroupConsumer; events: ConsumerEvent[]; start: () => Promise<void> } {
  const consumer = transport.groupConsumer({ groupId, topic, fromBeginning: true, sessionTimeoutMs: 6000, heartbeatIntervalMs: 500 });
  const events: ConsumerEvent[] = [];
  consumer.on((e) => events.push(e));
  closers.push(() => consumer.close());
  return { consumer, events, start: () => consumer.run(handle) };
}

test('ensureTopics creates what is missing, and only that', async () => {
  const a = uniqueName('conf-a');
  const b = uniqueName('conf-b');
  await createTopics(kafka, [a]);
  const first = await transport.ensureTopics([a, b, b]);
  assert.deepEqual(first, { created: [b] });
  assert.deepEqual(await transport.ensureTopics([a, b]), { created: [] });
  const admin = kafka.admin();
  await admin.connect();
  try {
    assert.ok((await admin.listTopics()).includes(b));
  } finally {
    await admin.disconnect();
  }
});

test('publish then readToEnd: keys, values and headers byte for byte (a repeated header as an array), in order; an absent topic reads as empty', async () => {
  const topic = uniqueName('conf-rt');
  await createTopics(kafka, [topic]);
  const binary = Buffer.from([0, 255, 10, 13, 128]);
  await publish(topic, [
    { key: 'k1', value: '{"a":1}', headers: { h: 'x' } },
    { key: null, value: binary, headers: { bin: binary, twice: ['one', 'two'] } },
    { key: 'k3', value: 'three' },
  ]);
  const got = await readAll(topic);
  assert.equal(got.length, 3);
  assert.deepEqual(
    got.map((r) => r.offset),
    ['0', '1', '2'],
  );
  assert.equal(got[0]?.key?.toString(), 'k1');
  assert.equal(got[0]?.value?.toString(), '{"a":1}');
  assert.equal(got[0]?.headers.h?.toString(), 'x');
  assert.equal(got[1]?.key, null);
  assert.deepEqual(got[1]?.value, binary);
  assert.deepEqual(got[1]?.headers.bin, binary);
  const twice = got[1]?.headers.twice;
  assert.ok(Array.isArray(twice), 'a header given twice reads back as both values');
  assert.deepEqual(
    twice.map((v) => v.toString()),
    ['one', 'two'],
  );
  assert.ok(Number(got[2]?.timestamp) > Date.now() - 60_000, 'a timestamp in ms since the epoch');
  assert.equal(await transport.readToEnd(uniqueName('conf-absent'), () => undefined), 0);
});

test('publish splits a large batch into requests the broker accepts (3 MB in one call, message.max.bytes 1 MiB)', async () => {
  const topic = uniqueName('conf-big');
  await createTopics(kafka, [topic]);
  const records = Array.from({ length: 30 }, (_, i) => ({ key: `b${i}`, value: Buffer.alloc(100_000, i) }));
  await publish(topic, records);
  const got = await readAll(topic);
  assert.deepEqual(
    got.map((r) => r.key?.toString()),
    records.map((r) => r.key),
  );
  assert.ok(got.every((r, i) => r.value?.length === 100_000 && r.value[0] === i));
});

test('readToEnd stops at the end the topic had when it began, and holds the reading while a returned promise is pending', async () => {
  const topic = uniqueName('conf-end');
  await createTopics(kafka, [topic]);
  await publish(
    topic,
    Array.from({ length: 10 }, (_, i) => ({ key: `e${i}`, value: String(i) })),
  );
  const seen: string[] = [];
  let publishedLate = false;
  const n = await transport.readToEnd(topic, async (r) => {
    seen.push(r.value?.toString() ?? '');
    if (!publishedLate) {
      publishedLate = true;
      // Records that arrive while reading lie beyond the end: not read.
      await publish(topic, [{ key: 'late', value: 'late' }]);
    }
  });
  assert.equal(n, 10);
  assert.deepEqual(
    seen,
    Array.from({ length: 10 }, (_, i) => String(i)),
  );
});

test('group consumer: a join event with the assignment, batches in offset order, commit() is where the next member starts, fetchedThrough() commits nothing', async () => {
  const topic = uniqueName('conf-group');
  const groupId = uniqueName('conf-g');
  await createTopics(kafka, [topic]);
  await publish(
    topic,
    Array.from({ length: 50 }, (_, i) => ({ key: `g${i}`, value: String(i) })),
  );
  const offsets: string[] = [];
  const first = member(groupId, topic, async (b) => {
    assert.equal(b.topic, topic);
    assert.ok(b.isLive());
    for (const r of b.records) {
      offsets.push(r.offset);
      b.fetchedThrough(r.offset);
    }
    await b.heartbeat();
    assert.equal(b.highWatermark, '50');
    // Committed up to 20 only, though everything was fetched through.
    if (b.records.some((r) => r.offset === '19')) await b.commit('20');
  });
  await first.start();
  await waitFor(() => offsets.length >= 50, 'all 50 consumed');
  assert.deepEqual(
    offsets.slice(0, 50),
    Array.from({ length: 50 }, (_, i) => String(i)),
  );
  const join = first.events.find((e) => e.kind === 'join');
  assert.ok(join?.kind === 'join' && join.assignment[topic]?.includes(0), 'joined with partition 0 of the topic');
  assert.ok(first.events.some((e) => e.kind === 'contact'));
  await first.consumer.close();
  assert.ok(first.events.some((e) => e.kind === 'stop'));
  assert.equal(await committedOffset(kafka, groupId, topic), 20);

  const again: string[] = [];
  const second = member(groupId, topic, (b) => {
    for (const r of b.records) again.push(r.offset);
    return Promise.resolve();
  });
  await second.start();
  await waitFor(() => again.length >= 30, 'the uncommitted 30 again');
  assert.equal(again[0], '20', 'the next member starts at the committed offset');
});

test('group consumer: seek() rewinds the partition without committing', async () => {
  const topic = uniqueName('conf-seek');
  await createTopics(kafka, [topic]);
  await publish(
    topic,
    Array.from({ length: 10 }, (_, i) => ({ key: `s${i}`, value: String(i) })),
  );
  const seen: string[] = [];
  let rewound = false;
  const m = member(uniqueName('conf-gs'), topic, (b) => {
    for (const r of b.records) {
      seen.push(r.offset);
      b.fetchedThrough(r.offset);
    }
    if (!rewound && seen.includes('9')) {
      rewound = true;
      m.consumer.seek(topic, 0, '5');
    }
    return Promise.resolve();
  });
  await m.start();
  await waitFor(() => seen.length >= 15, 'offsets 5..9 read again');
  assert.deepEqual(seen.slice(10, 15), ['5', '6', '7', '8', '9']);
});

test('group consumer: when kafkajs gives its consumer up because Kafka was out of reach, a new one rejoins and reads on (a crash event with restart true)', async () => {
  const topic = uniqueName('conf-crash');
  await createTopics(kafka, [topic]);
  await publish(
    topic,
    Array.from({ length: 5 }, (_, i) => ({ key: `c${i}`, value: String(i) })),
  );
  const seen: string[] = [];
  let thrown = false;
  const m = member(uniqueName('conf-gc'), topic, (b) => {
    if (!thrown) {
      thrown = true;
      // What kafkajs's retrier rejects with when no broker answered a FindCoordinator: non-retriable, so kafkajs does not restart its consumer.
      // (kafkajs's typings leave out its errors' constructor arguments.)
      const lost = new (kafkajs.KafkaJSGroupCoordinatorNotFound as unknown as new (m: string) => Error)('Failed to find group coordinator');
      throw new (kafkajs.KafkaJSNonRetriableError as unknown as new (e: Error, o: { cause: Error }) => Error)(lost, { cause: lost });
    }
    for (const r of b.records) {
      seen.push(r.offset);
      b.fetchedThrough(r.offset);
    }
    return Promise.resolve();
  });
  await m.start();
  await waitFor(() => seen.length >= 5, 'the records read by the new consumer', 30_000);
  assert.deepEqual(seen, ['0', '1', '2', '3', '4']);
  const crash = m.events.find((e) => e.kind === 'crash');
  assert.ok(crash !== undefined && crash.restart, 'the crash is reported as restarting, so the worker does not exit');
  assert.ok(m.events.filter((e) => e.kind === 'join').length >= 2, 'the new consumer joined the group');
});

test('transactions: committed work is visible to read_committed readers with its offset committed; failed work is aborted, invisible and uncommitted', async () => {
  const input = uniqueName('conf-tin');
  const out = uniqueName('conf-tout');
  const groupId = uniqueName('conf-tg');
  await createTopics(kafka, [input, out]);
  const tx = transport.partitionTransactions({ groupId, idPrefix: 'conf', transactionTimeoutMs: 10_000 });
  closers.push(() => tx.close());
  let produced = 0;
  await tx.commit({ records: [{ topic: out, records: [{ key: 'a', value: 'committed-1' }, { key: 'b', value: 'committed-2' }] }], input: { topic: input, partition: 0, offset: '7' } }, { produced: () => produced++ });
  assert.equal(produced, 1);
  assert.equal(await committedOffset(kafka, groupId, input), 7);
  // The second request goes to a topic that does not exist: the whole transaction fails after
  // its first request (a record big enough to be a request of its own) was written.
  await assert.rejects(
    tx.commit({
      records: [
        { topic: out, records: [{ key: 'c', value: Buffer.alloc(600_000, 'a') }] },
        { topic: uniqueName('conf-missing'), records: [{ key: 'd', value: 'nowhere' }] },
      ],
      input: { topic: input, partition: 0, offset: '9' },
    }),
  );
  assert.equal(await committedOffset(kafka, groupId, input), 7, 'a failed transaction commits no offset');
  // The partition's producer is usable again after a failure.
  await tx.commit({ records: [{ topic: out, records: [{ key: 'e', value: 'committed-3' }] }], input: { topic: input, partition: 0, offset: '12' } });
  assert.equal(await committedOffset(kafka, groupId, input), 12);

  const committed = (await readAll(out)).map((r) => r.value?.toString());
  assert.deepEqual(committed, ['committed-1', 'committed-2', 'committed-3'], 'read_committed sees committed work only');
  const raw = await TopicReader.start(kafka, out, { readUncommitted: true });
  closers.push(() => raw.stop());
  await waitFor(() => raw.messages.some((m) => m.value?.toString() === 'committed-3'), 'read_uncommitted reader caught up');
  assert.ok(
    raw.messages.some((m) => m.key?.toString() === 'c'),
    'the aborted record was written (read_uncommitted sees it), so the test does show the abort',
  );
});

test('transactions: settle says where a partition resumes (null before any commit, then the committed offset) and fences the last producer of it', async () => {
  const input = uniqueName('conf-sin');
  const out = uniqueName('conf-sout');
  const groupId = uniqueName('conf-sg');
  await createTopics(kafka, [input, out]);
  const opts = { groupId, idPrefix: 'conf', transactionTimeoutMs: 10_000 };
  const owner = transport.partitionTransactions(opts);
  const next = transport.partitionTransactions(opts);
  closers.push(() => owner.close(), () => next.close());
  assert.equal(await owner.settle(input, 0), null);
  await owner.commit({ records: [{ topic: out, records: [{ key: 's', value: 'settled-1' }] }], input: { topic: input, partition: 0, offset: '5' } });
  assert.equal(await next.settle(input, 0), '5');
  await assert.rejects(owner.commit({ records: [{ topic: out, records: [{ key: 's', value: 'fenced' }] }], input: { topic: input, partition: 0, offset: '6' } }));
  assert.equal(await next.settle(input, 0), '5');
  assert.deepEqual(
    (await readAll(out)).map((r) => r.value?.toString()),
    ['settled-1'],
  );
});

test("transactions: a partition's new owner fences its old one", async () => {
  const input = uniqueName('conf-fin');
  const out = uniqueName('conf-fout');
  const groupId = uniqueName('conf-fg');
  await createTopics(kafka, [input, out]);
  const opts = { groupId, idPrefix: 'conf', transactionTimeoutMs: 10_000 };
  const oldOwner = transport.partitionTransactions(opts);
  const newOwner = transport.partitionTransactions(opts);
  closers.push(() => oldOwner.close(), () => newOwner.close());
  await oldOwner.commit({ records: [{ topic: out, records: [{ key: 'o', value: 'old-1' }] }], input: { topic: input, partition: 0, offset: '1' } });
  await newOwner.commit({ records: [{ topic: out, records: [{ key: 'n', value: 'new-1' }] }], input: { topic: input, partition: 0, offset: '2' } });
  await assert.rejects(oldOwner.commit({ records: [{ topic: out, records: [{ key: 'o', value: 'old-2' }] }], input: { topic: input, partition: 0, offset: '3' } }));
  assert.equal(await committedOffset(kafka, groupId, input), 2);
  assert.deepEqual(
    (await readAll(out)).map((r) => r.value?.toString()),
    ['old-1', 'new-1'],
  );
});

test('follow: records of several topics, those published before and after it started, until stopped', async () => {
  const a = uniqueName('conf-fa');
  const b = uniqueName('conf-fb');
  await createTopics(kafka, [a, b]);
  await publish(a, [{ key: '1', value: 'a-before' }]);
  const seen: string[] = [];
  const f = await transport.follow([a, b], (r, at) => seen.push(`${at.topic === a ? 'a' : 'b'}:${r.value?.toString() ?? ''}`));
  closers.push(() => f.stop());
  await publish(b, [{ key: '2', value: 'b-after' }]);
  await waitFor(() => seen.length >= 2, 'both records');
  assert.deepEqual(seen.sort(), ['a:a-before', 'b:b-after']);
  await f.stop();
});

test('isRebalance: the group-rebalancing errors, nothing else', () => {
  for (const type of ['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'NOT_COORDINATOR']) assert.ok(transport.isRebalance(Object.assign(new Error(type), { type })), type);
  assert.equal(transport.isRebalance(Object.assign(new Error('x'), { type: 'MESSAGE_TOO_LARGE' })), false);
  assert.equal(transport.isRebalance(new Error('boom')), false);
  assert.equal(transport.isRebalance(null), false);
});
