import type { Admin, Kafka, Producer } from 'kafkajs';
import { describeError } from '../../errors.js';
import type { Logger } from '../../logging/index.js';
import { PRODUCE_CHUNK_BYTES, requestsByBytes } from '../chunk.js';
import { TRANSACTIONAL_PRODUCER_RETRY } from './client.js';
import type { PartitionTransactions, PartitionTransactionsOptions, TransactionWork } from '../types.js';

/** The transactional id of an input partition: one per partition, so that its next owner fences its last. */
export function transactionalId(prefix: string, groupId: string, topic: string, partition: number): string {
  return `${prefix}-${groupId}-${topic}-${partition}`;
}

/**
 * Exactly-once publishing: one transactional producer per input partition, and one
 * transaction per job holding its records and its consumed offset (sendOffsets), so a
 * read_committed reader sees a job's records exactly when its input is committed.
 *
 * Why one producer per partition: kafkajs commits offsets in a transaction without the
 * group's generation (no KIP-447), so the broker cannot fence a member that lost a partition
 * by its group membership. A transactional id per input partition does it instead: the
 * member that takes the partition over initialises the same id, which bumps its epoch, aborts
 * the transaction the old owner left open (a worker killed mid-job), and fences that owner's
 * later writes. The same scheme Kafka Streams used before KIP-447.
 *
 * A failed transaction is aborted where possible and its producer dropped; the next job of
 * that partition starts a new one (a fresh epoch), so no half-known producer state is reused.
 */
/** An admin client and its connection, which settle() awaits before reading through it. */
interface AdminConnection {
  readonly client: Admin;
  readonly connected: Promise<Admin>;
}

export class KafkajsPartitionTransactions implements PartitionTransactions {
  private readonly producers = new Map<string, Promise<Producer>>();
  /** The admin client settle() reads committed offsets with: opened at the first settle, dropped when a read through it fails. */
  private admin: AdminConnection | undefined;
  private readonly log: Logger;

  constructor(
    private readonly kafka: Kafka,
    private readonly o: PartitionTransactionsOptions,
    logger: Logger,
  ) {
    this.log = logger.child({ area: 'transactions' });
  }

  private producerFor(topic: string, partition: number): Promise<Producer> {
    const key = `${topic}/${partition}`;
    let p = this.producers.get(key);
    if (p === undefined) {
      const id = transactionalId(this.o.idPrefix, this.o.groupId, topic, partition);
      const producer = this.kafka.producer({
        transactionalId: id,
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        transactionTimeout: this.o.transactionTimeoutMs,
        retry: TRANSACTIONAL_PRODUCER_RETRY,
      });
      p = producer.connect().then(() => producer);
      // A producer that fails to connect is not kept: the next job tries again.
      p.catch(() => this.producers.delete(key));
      this.producers.set(key, p);
      this.log.info({ event: 'transactional_producer', transactionalId: id }, 'opened the transactional producer of an input partition');
    }
    return p;
  }

  /** Runs one job's transaction: its records, its offset, commit. Throws (after aborting) if any step fails. */
  async commit(work: TransactionWork, timers?: { produced?: () => void }): Promise<void> {
    const { topic, partition, offset } = work.input;
    const producer = await this.producerFor(topic, partition);
    const txn = await producer.transaction();
    try {
      for (const topicMessages of requestsByBytes(work.records, PRODUCE_CHUNK_BYTES)) await txn.sendBatch({ topicMessages });
      timers?.produced?.();
      await txn.sendOffsets({ consumerGroupId: this.o.groupId, topics: [{ topic, partitions: [{ partition, offset }] }] });
      await txn.commit();
    } catch (err) {
      await txn.abort().catch((abortErr: unknown) => {
        this.log.warn({ event: 'transaction_abort_failed', topic, partition, error: describeError(abortErr) }, 'could not abort the transaction; its producer is dropped and the broker aborts it');
      });
      await this.drop(`${topic}/${partition}`);
      throw err;
    }
  }

  async settle(topic: string, partition: number): Promise<string | null> {
    const key = `${topic}/${partition}`;
    const producer = await this.producerFor(topic, partition);
    try {
      // kafkajs initialises a transactional id at its first transaction (retrying while the
      // broker finishes the last one); an empty transaction sends nothing else.
      await (await producer.transaction()).abort();
    } catch (err) {
      await this.drop(key);
      throw err;
    }
    const admin = this.adminClient();
    try {
      const [found] = await (await admin.connected).fetchOffsets({ groupId: this.o.groupId, topics: [topic] });
      const offset = found?.partitions.find((p) => p.partition === partition)?.offset;
      return offset === undefined || BigInt(offset) < 0n ? null : offset;
    } catch (err) {
      // A connection in an unknown state is not reused: the next settle opens a new one.
      this.dropAdmin(admin);
      throw err;
    }
  }

  /** One admin connection for every settle (a join settles each owned partition), opened when first needed. */
  private adminClient(): AdminConnection {
    if (this.admin === undefined) {
      const client = this.kafka.admin();
      const connected = client.connect().then(() => client);
      connected.catch(() => undefined);
      this.admin = { client, connected };
    }
    return this.admin;
  }

  private dropAdmin(admin: AdminConnection): void {
    if (this.admin !== admin) return;
    this.admin = undefined;
    admin.client.disconnect().catch(() => undefined);
  }

  /** Closes the producers of input partitions this member no longer owns (after a rebalance). */
  async retain(owned: (topic: string, partition: number) => boolean): Promise<void> {
    const gone = [...this.producers.keys()].filter((key) => {
      const at = key.lastIndexOf('/');
      return !owned(key.slice(0, at), Number(key.slice(at + 1)));
    });
    await Promise.all(gone.map((key) => this.drop(key)));
  }

  private async drop(key: string): Promise<void> {
    const p = this.producers.get(key);
    if (p === undefined) return;
    this.producers.delete(key);
    try {
      await (await p).disconnect();
    } catch {
      // It never connected, or the connection is gone already: nothing to close.
    }
  }

  /** Disconnects every producer and the admin client (after the pipeline has drained). */
  async close(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    await Promise.all([...[...this.producers.keys()].map((key) => this.drop(key)), admin?.client.disconnect().catch(() => undefined)]);
  }
}
