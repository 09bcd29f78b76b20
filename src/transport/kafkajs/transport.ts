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

/**
 * kafkajs errors that mean Kafka could not be reached. kafkajs does not restart its consumer
 * after some of them (a group coordinator it found on no broker is "non-retriable"), which
 * would leave a worker whose broker restarted without a consumer; qualm restarts it instead.
 */
const UNREACHABLE_ERRORS = new Set([
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNumberOfRetriesExceeded',
]);

/** True when `err`, or an error it wraps (kafkajs's `cause`), is one of UNREACHABLE_ERRORS. */
export function isUnreachable(err: unknown): boolean {
  for (let e = err as { name?: unknown; cause?: unknown } | null | undefined, depth = 0; e != null && depth < 10; e = e.cause as typeof e, depth++) {
    if (typeof e.name === 'string' && UNREACHABLE_ERRORS.has(e.name)) return true;
  }
  return false;
}

/** First wait before restarting a crashed consumer; doubled per failed restart, capped. */
const RESTART_BASE_MS = 1000;
const RESTART_CAP_MS = 10_000;

class KafkajsGroupConsumer implements GroupConsumer {
  private consumer: Consumer;
  private readonly listeners: ((e: ConsumerEvent) => void)[] = [];
  private onBatch: ((batch: ConsumedBatch) => Promise<void>) | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private restarts = 0;
  private closed = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly o: GroupConsumerOptions,
    private readonly log: Logger,
  ) {
    this.consumer = this.create();
  }

  /** A kafkajs consumer of the group, its events handed to the listeners. */
  private create(): Consumer {
    const consumer = this.kafka.consumer({
      groupId: this.o.groupId,
      sessionTimeout: this.o.sessionTimeoutMs,
      heartbeatInterval: this.o.heartbeatIntervalMs,
      maxBytesPerPartition: 1024 * 1024,
      // Reconnect attempts at most 2 s apart (plus kafkajs's 20% jitter), so that the stream
      // resumes within a few seconds of the broker answering again.
      retry: { retries: 30, initialRetryTime: 300, maxRetryTime: 2000 },
    });
    const emit = (e: ConsumerEvent): void => {
      for (const l of this.listeners) l(e);
    };
    const { events } = consumer;
    consumer.on(events.GROUP_JOIN, (e) => {
      this.restarts = 0;
      emit({ kind: 'join', memberId: e.payload.memberId, assignment: e.payload.memberAssignment });
      emit({ kind: 'contact' });
    });
    consumer.on(events.HEARTBEAT, () => emit({ kind: 'contact' }));
    consumer.on(events.FETCH, () => emit({ kind: 'contact' }));
    consumer.on(events.CRASH, (e) => {
      const { error } = e.payload;
      // kafkajs gives up on this consumer, but Kafka was only out of reach: start a new one.
      const ours = !e.payload.restart && !this.closed && this.onBatch !== undefined && consumer === this.consumer && isUnreachable(error);
      emit({ kind: 'crash', error, restart: e.payload.restart || ours });
      if (ours) this.scheduleRestart(error);
    });
    consumer.on(events.STOP, () => emit({ kind: 'stop' }));
    return consumer;
  }

  private scheduleRestart(cause: unknown): void {
    const waitMs = Math.min(RESTART_CAP_MS, RESTART_BASE_MS * 2 ** this.restarts);
    this.restarts++;
    this.log.warn({ event: 'consumer_restart', inMs: waitMs, attempt: this.restarts, cause: cause instanceof Error ? cause.message : String(cause) }, 'the consumer stopped because Kafka was out of reach; starting a new one');
    this.restartTimer = setTimeout(() => void this.restart(), waitMs);
  }

  private async restart(): Promise<void> {
    if (this.closed || this.onBatch === undefined) return;
    await this.consumer.disconnect().catch(() => undefined);
    this.consumer = this.create();
    try {
      await this.start(this.onBatch);
    } catch (err) {
      if (!this.closed) this.scheduleRestart(err);
    }
  }

  on(listener: (e: ConsumerEvent) => void): void {
    this.listeners.push(listener);
  }

  async run(onBatch: (batch: ConsumedBatch) => Promise<void>): Promise<void> {
    this.onBatch = onBatch;
    await this.start(onBatch);
  }

  private async start(onBatch: (batch: ConsumedBatch) => Promise<void>): Promise<void> {
    const consumer = this.consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: [this.o.topic], fromBeginning: this.o.fromBeginning });
    await consumer.run({
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
    this.closed = true;
    clearTimeout(this.restartTimer);
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
    return new KafkajsGroupConsumer(this.kafka, o, this.logger.child({ area: 'consumer' }));
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
