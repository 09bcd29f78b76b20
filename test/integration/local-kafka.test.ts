// Real Apache Kafka broker round trip: topic, idempotent producer, consumer
// group with explicit commits, committed offsets read back via admin.
//
//   node --import tsx --test test/integration/local-kafka.test.ts
//
// Needs Java 17+ and (on first run) Maven to fetch the broker jars.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Kafka, Partitioners, logLevel, type Admin, type Consumer, type LogEntry, type Producer } from 'kafkajs';

import { KAFKA_VERSION, startLocalKafka, type LocalKafka } from '../../src/local-kafka/index.js';

let broker: LocalKafka | undefined;
const brokerLines: string[] = [];

/** PIDs of processes whose command line mentions this broker's server.properties. */
function brokerPids(dataDir: string): number[] {
  try {
    const out = execFileSync('pgrep', ['-f', join(dataDir, 'server.properties')], { encoding: 'utf8' });
    return out.split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

before(async () => {
  const t0 = Date.now();
  broker = await startLocalKafka({ log: (line) => brokerLines.push(line) });
  console.log(`kafka broker ${broker.version} on ${broker.brokers.join(',')} (started in ${Date.now() - t0} ms)`);
});

after(async () => {
  if (!broker) return;
  const { dataDir } = broker;
  assert.ok(brokerPids(dataDir).length > 0, 'broker JVM should be running before stop()');
  await broker.stop();
  await broker.stop(); // idempotent
  assert.deepEqual(brokerPids(dataDir), [], 'no broker JVM may survive stop()');
  assert.equal(existsSync(dataDir), false, 'temp data dir should be removed');
});

test('broker reports the pinned version', () => {
  assert.ok(broker);
  assert.equal(broker.version, KAFKA_VERSION);
  assert.match(broker.brokers[0] ?? '', /^127\.0\.0\.1:\d+$/);
});

test('produce, consume in a group, commit explicitly, read committed offsets', { timeout: 45_000 }, async () => {
  assert.ok(broker);
  // kafkajs logs retriable errors (e.g. "group coordinator is not available"
  // while __consumer_offsets is being created) at ERROR level; keep them and
  // show them only if the test fails.
  const clientLog: string[] = [];
  const kafka = new Kafka({
    clientId: 'qualm-local-kafka-test',
    brokers: broker.brokers,
    logLevel: logLevel.INFO,
    logCreator:
      () =>
      ({ namespace, label, log }: LogEntry) => {
        clientLog.push(`${label} [${namespace}] ${log.message} ${'error' in log ? String(log['error']) : ''}`);
      },
  });
  const topic = `t-${randomUUID()}`;
  const groupId = `g-${randomUUID()}`;
  const total = 10;

  let admin: Admin | undefined;
  let producer: Producer | undefined;
  let consumer: Consumer | undefined;
  try {
    admin = kafka.admin();
    await admin.connect();
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: 2, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    assert.equal(created, true);

    producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      messages: Array.from({ length: total }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: i % 2 })),
    });

    consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });

    const seen = new Set<string>();
    const c = consumer;
    const allCommitted = new Promise<void>((resolve, reject) => {
      c.run({
        autoCommit: false,
        eachMessage: async ({ topic: t, partition, message }) => {
          seen.add(message.value?.toString() ?? '');
          await c.commitOffsets([{ topic: t, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
          if (seen.size === total) resolve();
        },
      }).catch(reject);
    });
    await withTimeout(allCommitted, 30_000, `consume ${total} messages (saw ${seen.size})`);
    assert.deepEqual([...seen].sort(), Array.from({ length: total }, (_, i) => `v${i}`).sort());

    await consumer.stop();
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
    const partitions = offsets.flatMap((o) => o.partitions);
    assert.equal(partitions.length, 2);
    const sum = partitions.reduce((acc, p) => acc + Number(p.offset), 0);
    assert.equal(sum, total, `committed offsets ${JSON.stringify(partitions)}`);
  } catch (err) {
    console.log(`kafkajs log:\n${clientLog.slice(-50).join('\n')}`);
    console.log(`broker harness log:\n${brokerLines.slice(-20).join('\n')}`);
    throw err;
  } finally {
    await consumer?.disconnect().catch(() => undefined);
    await producer?.disconnect().catch(() => undefined);
    await admin?.disconnect().catch(() => undefined);
  }
});
