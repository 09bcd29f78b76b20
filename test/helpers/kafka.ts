import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type KafkaMessage, type Message } from 'kafkajs';
import { PRODUCE_CHUNK_BYTES, chunkByBytes } from '../../src/transport/index.js';

/** A quiet kafkajs client for test code (the worker under test logs for itself). */
export function testKafka(brokers: string[]): Kafka {
  return new Kafka({ clientId: `qualm-test-${randomUUID().slice(0, 8)}`, brokers, logLevel: logLevel.NOTHING });
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}

/** A worker's topics and consumer group, uniquely named for one test. */
export interface WorkerTopics {
  input: string;
  review: string;
  scores: string;
  dlq: string;
  group: string;
}

export function uniqueWorkerTopics(): WorkerTopics {
  return { input: uniqueName('in'), review: uniqueName('review'), scores: uniqueName('scores'), dlq: uniqueName('dlq'), group: uniqueName('group') };
}

/** The environment that points a worker at `brokers`, these topics and this group. */
export function workerTopicEnv(brokers: readonly string[], t: WorkerTopics): Record<string, string> {
  return {
    KAFKA_BROKERS: brokers.join(','),
    QUALM_INPUT_TOPIC: t.input,
    QUALM_REVIEW_TOPIC: t.review,
    QUALM_SCORES_TOPIC: t.scores,
    QUALM_DLQ_TOPIC: t.dlq,
    QUALM_GROUP_ID: t.group,
  };
}

export async function createTopics(kafka: Kafka, topics: string[], numPartitions = 1): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions })), waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

export async function produce(kafka: Kafka, topic: string, messages: Message[]): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (const chunk of chunkByBytes(messages, PRODUCE_CHUNK_BYTES)) await producer.send({ topic, messages: chunk, acks: -1 });
  } finally {
    await producer.disconnect();
  }
}

/** Polls `check` until it returns true, with backoff; throws with `what` on timeout. */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(500, delay * 2);
  }
}

/** Everything on a topic, read from the beginning by a fresh consumer group, as it arrives. */
export class TopicReader {
  readonly messages: KafkaMessage[] = [];
  private readonly consumer;

  private constructor(kafka: Kafka, readUncommitted: boolean) {
    this.consumer = kafka.consumer({ groupId: uniqueName('reader'), sessionTimeout: 10_000, heartbeatInterval: 1000, readUncommitted });
  }

  /** A reader with isolation.level read_committed (kafkajs's default), or read_uncommitted when asked. */
  static async start(kafka: Kafka, topic: string, opts: { readUncommitted?: boolean } = {}): Promise<TopicReader> {
    const r = new TopicReader(kafka, opts.readUncommitted ?? false);
    await r.consumer.connect();
    await r.consumer.subscribe({ topics: [topic], fromBeginning: true });
    await r.consumer.run({
      eachMessage: ({ message }) => {
        r.messages.push(message);
        return Promise.resolve();
      },
    });
    return r;
  }

  async waitForCount(n: number, what: string, timeoutMs = 60_000): Promise<KafkaMessage[]> {
    await waitFor(() => this.messages.length >= n, `${n} ${what} (have ${this.messages.length})`, timeoutMs);
    return this.messages;
  }

  json<T>(): T[] {
    return this.messages.map((m) => JSON.parse(m.value?.toString('utf8') ?? 'null') as T);
  }

  stop(): Promise<void> {
    return this.consumer.disconnect();
  }
}

/** The committed offset of a group on partition 0 of a topic, as a number (-1 when none). */
export async function committedOffset(kafka: Kafka, groupId: string, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const res = await admin.fetchOffsets({ groupId, topics: [topic] });
    const p = res[0]?.partitions.find((x) => x.partition === 0);
    return p === undefined ? -1 : Number(p.offset);
  } finally {
    await admin.disconnect();
  }
}
