/**
 * qualm's own view of Kafka: what the worker and the commands need from a log of records and
 * nothing more. The kafkajs implementation (transport/kafkajs/) is the only code that knows
 * kafkajs; test/integration/transport.test.ts is the conformance suite any implementation
 * must pass on a real broker.
 */

/** A header's value: a header name repeated on one record reads as an array, in order. */
export type HeaderValue = Buffer | string | (Buffer | string)[];

/** Record headers, as read and as written (so a DLQ copy keeps the original's byte for byte). */
export type Headers = Readonly<Record<string, HeaderValue | undefined>>;

/** A record to write. Strings are written as UTF-8. */
export interface OutRecord {
  /** Absent or null: no key (the partitioner then spreads records). */
  readonly key?: string | Buffer | null;
  readonly value: string | Buffer | null;
  readonly headers?: Headers;
}

/** A record as read: its bytes, headers and coordinates within its partition. */
export interface InRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Headers;
  /** Its offset, as a decimal string (offsets exceed 2^53 in principle). */
  readonly offset: string;
  /** Milliseconds since the epoch, as a decimal string: the producer's or the broker's time. */
  readonly timestamp: string;
}

/** Records for one topic, written in this order. */
export interface TopicRecords {
  readonly topic: string;
  readonly records: readonly OutRecord[];
}

/** One partition's fetched records, handed to a GroupConsumer's handler. */
export interface ConsumedBatch {
  readonly topic: string;
  readonly partition: number;
  /** The partition's high watermark when fetched (the offset after its last record), for lag. */
  readonly highWatermark: string;
  readonly records: readonly InRecord[];
  /** Tells the group this member is alive (call it while holding a batch for long). */
  heartbeat(): Promise<void>;
  /** False once the consumer is stopping or the group has rebalanced since this batch was fetched. */
  isLive(): boolean;
  /** Lets fetching go on after `offset` before the handler returns. Commits nothing. */
  fetchedThrough(offset: string): void;
  /**
   * Commits `next` (the offset to read next) for this partition, to the group. Works while the
   * consumer drains after close() began, so the last jobs' commits are not lost.
   */
  commit(next: string): Promise<void>;
}

/** What happens to a group member, for readiness, logs and job bookkeeping. */
export type ConsumerEvent =
  /** Joined (or rejoined) the group: a new generation with this assignment (topic → partitions). */
  | { readonly kind: 'join'; readonly memberId: string; readonly assignment: Readonly<Record<string, readonly number[]>> }
  /** Heard from Kafka: a fetch or heartbeat answered. */
  | { readonly kind: 'contact' }
  /**
   * The consumer failed; `restart`: it reconnects and rejoins by itself (an implementation
   * restarts it after any failure that only means Kafka was out of reach), otherwise it is finished.
   */
  | { readonly kind: 'crash'; readonly error: Error; readonly restart: boolean }
  /** The consumer stopped. */
  | { readonly kind: 'stop' };

export interface GroupConsumerOptions {
  readonly groupId: string;
  readonly topic: string;
  /** Where a group with no committed offset starts: the earliest offset, or the latest. */
  readonly fromBeginning: boolean;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
}

/**
 * A consumer group member. Nothing is committed but what a handler commits; a batch's
 * handler runs to completion before the next batch of any partition is handed over.
 */
export interface GroupConsumer {
  /** Listens to the member's events (before run(), to see the first join). */
  on(listener: (e: ConsumerEvent) => void): void;
  /** Connects, subscribes and hands each fetched batch to `onBatch`. Resolves once running. */
  run(onBatch: (batch: ConsumedBatch) => Promise<void>): Promise<void>;
  /** The partition's next fetch starts at `offset` (nothing is committed). */
  seek(topic: string, partition: number, offset: string): void;
  /** No more fetches of the topic. */
  pause(topic: string): void;
  /** Leaves the group and disconnects. */
  close(): Promise<void>;
}

/** Writes records acknowledged by all in-sync replicas, in requests of bounded size, idempotently. */
export interface Publisher {
  connect(): Promise<void>;
  /** Resolves once every record is acknowledged; throws (nothing about which were) otherwise. */
  publish(batches: readonly TopicRecords[]): Promise<void>;
  close(): Promise<void>;
}

/** One transaction: records, then an input offset committed to a group with them. */
export interface TransactionWork {
  readonly records: readonly TopicRecords[];
  /** The input partition and the offset to read next (the last consumed offset + 1). */
  readonly input: { readonly topic: string; readonly partition: number; readonly offset: string };
}

/**
 * Exactly-once writes: one transactional producer per input partition (see
 * kafkajs/transactions.ts for why), one transaction per call.
 */
export interface PartitionTransactions {
  /** Commits the work atomically, or aborts it and throws. `produced` is called once the records are sent. */
  commit(work: TransactionWork, timers?: { produced?: () => void }): Promise<void>;
  /**
   * Settles the partition's last transaction and says where its input resumes: initialises the
   * partition's transactional id (which fences an earlier producer of it and lets the broker
   * finish a transaction left in doubt, committed or aborted), then reads the group's committed
   * offset of the partition (null: none). A commit that failed without an answer (the broker
   * went away during EndTxn) may still have committed; only this offset says whether it did.
   */
  settle(topic: string, partition: number): Promise<string | null>;
  /** Closes the producers of input partitions for which `owned` is false. */
  retain(owned: (topic: string, partition: number) => boolean): Promise<void>;
  close(): Promise<void>;
}

export interface PartitionTransactionsOptions {
  readonly groupId: string;
  /** Transactional ids are `${idPrefix}-${groupId}-${topic}-${partition}`. */
  readonly idPrefix: string;
  readonly transactionTimeoutMs: number;
}

export interface ReadToEndOptions {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

/** A live reader of topics from their beginning (no group offsets kept). */
export interface Follower {
  stop(): Promise<void>;
}

export interface Transport {
  groupConsumer(o: GroupConsumerOptions): GroupConsumer;
  publisher(): Publisher;
  partitionTransactions(o: PartitionTransactionsOptions): PartitionTransactions;
  /**
   * Reads a topic from its beginning to the end it had when the call began, in offset order
   * per partition; a returned promise holds the reading until it settles. An absent topic reads
   * as empty. Resolves with the number of records read.
   */
  readToEnd(topic: string, onRecord: (r: InRecord, partition: number) => void | Promise<void>, opts?: ReadToEndOptions): Promise<number>;
  /** Reads topics from their beginning, as records arrive, until stopped. */
  follow(topics: readonly string[], onRecord: (r: InRecord, at: { readonly topic: string; readonly partition: number }) => void): Promise<Follower>;
  /** Creates those of `topics` that are missing, with the cluster's defaults; which were created and which could not be. */
  ensureTopics(topics: readonly string[]): Promise<{ created: string[]; failed?: { topics: string[]; error: unknown } }>;
  /** True when `err` (from a batch's heartbeat or commit) means the group is rebalancing: the rejoin rewinds to the committed offsets itself. */
  isRebalance(err: unknown): boolean;
}
