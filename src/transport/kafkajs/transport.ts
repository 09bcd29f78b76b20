import { randomUUID } from 'node:crypto';
import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { Config } from '../../config/index.js';
import type { Logger } from '../../logging/index.js';
import { PRODUCE_CHUNK_BYTES, requestsByBytes } from '../chunk.js';
import type {
  ConsumedBatch,
  ConsumerEvent,
  Follower,
  GroupConsumer,
  GroupConsumerOptions,
  InRecord,
  PartitionTransactions,
  PartitionTransactionsOptions,
  Publisher,
  ReadToEndOptions,
  TopicRecords,
  Transport,
} from '../types.js';
import { createKafka, PRODUCER_RETRY } from './client.js';
import { inRecord, readTopicToEnd } from './read-to-end.js';
import { KafkajsPartitionTransactions } from './transactions.js';

/** A batch as qualm's ConsumedBatch: kafkajs's payload behind it. */
function consumedBatch(payload: EachBatchPayload): ConsumedBatch {
  const { batch } = payload;
  return {
    topic: batch.topic,
    partition: batch.partition,
    highWatermark: batch.highWatermark,
    records: batch.messages.map(inRecord),
    heartbeat: () => payload.heartbeat(),
    isLive: () => payload.isRunning() && !payload.isStale(),
    fetchedThrough: (offset) => payload.resolveOffset(offset),
    // Through the batch payload, not consumer.commitOffsets(): the latter silently skips the
    // commit once stop() has begun, which would drop the commit of a job being drained.
    commit: (next) => payload.commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }] }),
  };
}

class KafkajsGroupConsumer implements GroupConsumer {
  private readonly consumer: Consumer;

  constructor(
    kafka: Kafka,
    private readonly o: GroupConsumerOptions,
  ) {
    this.consumer = kafka.consumer({
      groupId: o.groupId,
      sessionTimeout: o.sessionTimeoutMs,
      heartbeatInterval: o.heartbeatIntervalMs,
      maxBytesPerPartition: 1024 * 1024,
      // Reconnect attempts at most 2 s apart (plus kafkajs's 20% jitter), so that the stream
      // resumes within a few seconds of the broker answering again.
      retry: { retries: 30, initialRetryTime: 300, maxRetryTime: 2000 },
    });
  }

  on(listener: (e: ConsumerEvent) => void): void {
    const { events } = this.consumer;
    this.consumer.on(events.GROUP_JOIN, (e) => {
      listener({ kind: 'join', memberId: e.payload.memberId, assignment: e.payload.memberAssignment });
      listener({ kind: 'contact' });
    });
    this.consumer.on(events.HEARTBEAT, () => listener({ kind: 'contact' }));
    this.consumer.on(events.FETCH, () => listener({ kind: 'contact' }));
    this.consumer.on(events.CRASH, (e) => listener({ kind: 'crash', error: e.payload.error, restart: e.payload.restart }));
    this.consumer.on(events.STOP, () => listener({ kind: 'stop' }));
  }

  async run(onBatch: (batch: ConsumedBatch) => Promise<void>): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.o.topic], fromBeginning: this.o.fromBeginning });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => onBatch(consumedBatch(payload)),
    });
  }

  seek(topic: string, partition: number, offset: string): void {
    this.consumer.seek({ topic, partition, offset });
  }

  pause(topic: string): void {
    this.consumer.pause([{ topic }]);
  }

  close(): Promise<void> {
    return this.consumer.disconnect();
  }
}

class KafkajsPublisher implements Publisher {
  private readonly producer: Producer;

  constructor(kafka: Kafka) {
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, retry: PRODUCER_RETRY });
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  async publish(batches: readonly TopicRecords[]): Promise<void> {
    // Requests of every topic at once, each under the broker's message.max.bytes; all are
    // acknowledged (acks=all) before this resolves.
    for (const topicMessages of requestsByBytes(batches, PRODUCE_CHUNK_BYTES)) await this.producer.sendBatch({ topicMessages, acks: -1 });
  }

  close(): Promise<void> {
    return this.producer.disconnect();
  }
}

/** kafkajs error types that mean the group is rebalancing. */
const REBALANCE_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'NOT_COORDINATOR', 'NOT_COORDINATOR_FOR_GROUP']);

/** qualm's Transport on kafkajs: every Kafka client the project makes comes from here. */
export class KafkajsTransport implements Transport {
  private constructor(
    private readonly kafka: Kafka,
    private readonly logger: Logger,
  ) {}

  /** From configuration: brokers, client id (+ `clientSuffix`), TLS and SASL (see client.ts). */
  static fromConfig(c: Config, logger: Logger, clientSuffix = ''): KafkajsTransport {
    return new KafkajsTransport(createKafka(c, logger, clientSuffix), logger);
  }

  groupConsumer(o: GroupConsumerOptions): GroupConsumer {
    return new KafkajsGroupConsumer(this.kafka, o);
  }

  publisher(): Publisher {
    return new KafkajsPublisher(this.kafka);
  }

  partitionTransactions(o: PartitionTransactionsOptions): PartitionTransactions {
    return new KafkajsPartitionTransactions(this.kafka, o, this.logger);
  }

  readToEnd(topic: string, onRecord: (r: InRecord, partition: number) => void | Promise<void>, opts: ReadToEndOptions = {}): Promise<number> {
    return readTopicToEnd(this.kafka, topic, onRecord, opts);
  }

  async follow(topics: readonly string[], onRecord: (r: InRecord, at: { readonly topic: string; readonly partition: number }) => void): Promise<Follower> {
    const groupId = `qualm-follow-${randomUUID()}`;
    const consumer = this.kafka.consumer({ groupId, allowAutoTopicCreation: false });
    await consumer.connect();
    await consumer.subscribe({ topics: [...topics], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        for (const m of batch.messages) onRecord(inRecord(m), { topic: batch.topic, partition: batch.partition });
        return Promise.resolve();
      },
    });
    return {
      stop: async () => {
        await consumer.disconnect();
        const admin = this.kafka.admin();
        try {
          await admin.connect();
          await admin.deleteGroups([groupId]);
        } catch {
          // A throw-away group the broker forgets on its own; nothing depends on deleting it.
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      },
    };
  }

  async ensureTopics(topics: readonly string[]): Promise<{ created: string[]; failed?: { topics: string[]; error: unknown } }> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const missing = [...new Set(topics)].filter((t) => !existing.has(t));
      if (missing.length === 0) return { created: [] };
      try {
        await admin.createTopics({ topics: missing.map((topic) => ({ topic })), waitForLeaders: true });
        return { created: missing };
      } catch (error) {
        // The cluster may forbid creation; consuming and producing then fail with their own clear errors.
        return { created: [], failed: { topics: missing, error } };
      }
    } finally {
      await admin.disconnect();
    }
  }

  isRebalance(err: unknown): boolean {
    const type = (err as { type?: unknown } | null)?.type;
    return typeof type === 'string' && REBALANCE_ERRORS.has(type);
  }
}
