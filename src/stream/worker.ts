import type { Config } from '../config/index.js';
import { describeError } from '../errors.js';
import type { IndexSnapshot } from '../index/index.js';
import type { Logger } from '../logging/index.js';
import type { QualmMetrics } from '../metrics/index.js';
import { DriftWindow, FlagRules, oodPercentileOf, referenceDrift, TargetRatePolicy, ThresholdPolicy, type DriftSummary, type FlagPolicy } from '../scoring/index.js';
import { BatchScorer, type DecodedBatch, type BatchOutput, type Embedder, type InMessage, type PreparedBatch, type SearchedBatch } from './batch-scorer.js';
import { Pipeline, started, stagesToGroup, type PipelineJob, type Ready, type Started } from './pipeline.js';
import { METRIC_SIGNALS } from '../signals.js';
import { runSteps } from '../util/run-steps.js';
import type { SearchStage } from '../scorer/index.js';
import type { ConsumedBatch, GroupConsumer, OutRecord, PartitionTransactions, Publisher, TopicRecords, Transport } from '../transport/index.js';

export interface WorkerDeps {
  config: Config;
  /** Kafka, through qualm's own seam (transport/): consumer group, publisher, transactions, topics. */
  transport: Transport;
  embedder: Embedder;
  /** The snapshot to search; read once per batch, so a refresher may swap it between batches. */
  snapshot: () => IndexSnapshot;
  metrics: QualmMetrics;
  logger: Logger;
  /** Called when the consumer has crashed and kafkajs will not restart it, or publishing kept failing: the process should exit. */
  onFatal?: (err: Error) => void;
  /** The kNN stage (the search thread); default: the snapshot's own search on the main thread. */
  search?: SearchStage;
}

/** Consecutive failed publishes or commits (each retried after a backoff) before the worker gives up and exits. */
export const MAX_CONSECUTIVE_FAILURES = 10;
/** Backoff before re-reading a batch whose publishing failed: this doubled per failure, capped, with jitter. */
const RETRY_BASE_MS = 500;
const RETRY_CAP_MS = 30_000;

/** What a job's last per-job stage hands the group stage (publish and commit). */
interface JobOutput {
  readonly batch: ConsumedBatch;
  readonly messages: readonly InMessage[];
  readonly out: BatchOutput;
  /** Ends the job's `batch` timer. */
  readonly endBatch: () => void;
}

/** The offset to commit after `messages`: one past the last. */
function nextOffset(messages: readonly InMessage[]): string {
  return (BigInt((messages[messages.length - 1] as InMessage).offset) + 1n).toString();
}

/** Splits `n` into runs of at most `max`, as even as possible. */
function evenRuns(n: number, max: number): number[] {
  const runs = Math.max(1, Math.ceil(n / Math.max(1, max)));
  const out: number[] = [];
  for (let r = 0, start = 0; r < runs; r++) {
    const end = Math.round(((r + 1) * n) / runs);
    out.push(end - start);
    start = end;
  }
  return out;
}

/** The worker's flagging rules from its configuration (see scoring/policy.ts FlagRules). */
export function createPolicy(
  c: Pick<Config, 'flagPolicy' | 'flagThreshold' | 'targetFlagRate' | 'rateWindow' | 'minPredictedAccuracy' | 'oodRule' | 'oodPercentile'> & Partial<Pick<Config, 'shiftWindow'>>,
): FlagRules {
  const uncertainty: FlagPolicy = c.flagPolicy === 'target_rate' ? new TargetRatePolicy(c.targetFlagRate, c.rateWindow, c.flagThreshold) : new ThresholdPolicy(c.flagThreshold);
  return new FlagRules({
    uncertainty,
    minPredictedAccuracy: c.flagPolicy === 'min_predicted_accuracy' ? c.minPredictedAccuracy : null,
    oodRule: c.oodRule,
    oodPercentile: c.oodPercentile,
    ...(c.shiftWindow === undefined ? {} : { shiftWindow: c.shiftWindow }),
  });
}

/**
 * The stream worker: a consumer group member that scores each batch, publishes its review,
 * score and DLQ records with an idempotent acks=all producer, and commits the batch's
 * offsets only after those writes are acknowledged (at-least-once); or, with
 * QUALM_DELIVERY=exactly_once, writes the records and the offsets in one transaction per job.
 * Kafka is reached through the Transport (transport/), never kafkajs directly.
 *
 * Batches go through a Pipeline: while one is searched and scored (search thread, main
 * thread) and an earlier one published and committed, the next is decoded and embedded
 * (inference thread). A consumed batch is split into jobs of at most QUALM_INFERENCE_BATCH
 * messages, and the consumer is let fetch on as soon as a job is admitted (fetchedThrough:
 * the fetch position only, never a commit before the job's records are acknowledged). At most
 * QUALM_MAX_IN_FLIGHT messages are held. A job whose publish or commit fails rewinds its
 * partition to its first offset (seek), drops the partition's later jobs, and the batch is
 * read again after a capped, jittered backoff; a rebalance drops every job admitted before it
 * (the new assignment starts from the committed offsets).
 */
export class StreamWorker {
  private readonly consumer: GroupConsumer;
  /** The at-least-once producer (idempotent, acks=all); unused with QUALM_DELIVERY=exactly_once. */
  private readonly producer: Publisher;
  /** With QUALM_DELIVERY=exactly_once: a transactional producer per input partition. */
  private readonly transactions: PartitionTransactions | undefined;
  private readonly scorer: BatchScorer;
  private readonly log: Logger;
  private readonly drift: DriftWindow;
  private reference: { readonly version: string; readonly summary: DriftSummary } | undefined;
  private readonly pipeline: Pipeline<JobOutput>;
  /** Joins so far: a job admitted in an earlier generation is dropped (its partition may have moved). */
  private generation = 0;
  /** Per topic-partition: bumped when a job fails, so that the partition's later jobs are dropped. */
  private readonly epochs = new Map<string, number>();
  /**
   * Exactly-once, per topic-partition: the generation in which its last transaction was settled
   * (PartitionTransactions.settle); its batches wait for that at the first batch of each
   * generation and after any of its jobs failed.
   */
  private readonly settled = new Map<string, number>();
  /** Per topic-partition: no batch is admitted before this time (the backoff after a failure). */
  private readonly retryAt = new Map<string, number>();
  private failures = 0;
  /** When the consumer last heard from Kafka (a fetch, heartbeat or join), and whether that is recent. */
  private lastContact = 0;
  private kafkaUp = false;
  private watchdog: NodeJS.Timeout | undefined;
  private joined = false;
  private running = false;
  private closing: Promise<void> | undefined;

  constructor(private readonly deps: WorkerDeps) {
    const c = deps.config;
    this.log = deps.logger.child({ area: 'stream' });
    this.consumer = deps.transport.groupConsumer({
      groupId: c.groupId,
      topic: c.inputTopic,
      fromBeginning: c.fromBeginning,
      sessionTimeoutMs: c.sessionTimeoutMs,
      heartbeatIntervalMs: c.heartbeatIntervalMs,
    });
    this.producer = deps.transport.publisher();
    this.transactions =
      c.delivery === 'exactly_once'
        ? deps.transport.partitionTransactions({ groupId: c.groupId, idPrefix: c.transactionalIdPrefix, transactionTimeoutMs: c.transactionTimeoutMs })
        : undefined;
    this.scorer = new BatchScorer(c, deps.embedder, deps.snapshot, createPolicy(c), deps.metrics, () => new Date(), deps.search);
    this.pipeline = new Pipeline<JobOutput>(c.maxInFlight, 4, (ready) => this.publish(ready));
    this.drift = new DriftWindow(c.driftWindow, c.oodPercentile);
    deps.metrics.setDrift({ stream: () => this.drift.summary(), reference: () => this.referenceSummary() });
    this.consumer.on((e) => {
      switch (e.kind) {
        case 'join': {
          this.joined = true;
          this.generation++;
          // After a rebalance this member reports lag only for the partitions it now owns.
          deps.metrics.consumerLag.reset();
          this.log.info({ event: 'group_join', memberId: e.memberId, assignment: e.assignment }, 'joined consumer group');
          // Partitions that moved to another member: their transactional producers are closed (the new owner fences them anyway).
          const owned = e.assignment;
          void this.transactions?.retain((topic, partition) => owned[topic]?.includes(partition) === true);
          break;
        }
        case 'contact':
          // Any answer from the group coordinator or a fetch counts as contact with Kafka.
          this.lastContact = Date.now();
          if (!this.kafkaUp) {
            this.setKafkaUp(true);
            // The failures that built up the backoff were Kafka's absence: now it answers, read again at once.
            this.retryAt.clear();
            this.failures = 0;
          }
          break;
        case 'crash':
          this.joined = false;
          this.log.error({ event: 'consumer_crash', error: describeError(e.error), restart: e.restart }, 'consumer crashed');
          if (!e.restart) deps.onFatal?.(e.error);
          break;
        case 'stop':
          this.joined = false;
          break;
      }
    });
  }

  /** True while the consumer is in its group, running, and has heard from Kafka lately. */
  isReady(): boolean {
    return this.running && this.joined && this.kafkaUp;
  }

  /**
   * Kafka counts as away when the consumer has had no answer (fetch, heartbeat) for longer
   * than the session timeout: /readyz then says not ready and qualm_kafka_up is 0, with one
   * log line per change. kafkajs keeps reconnecting meanwhile; the worker stays up.
   */
  private setKafkaUp(up: boolean): void {
    this.kafkaUp = up;
    this.deps.metrics.kafkaUp.set(up ? 1 : 0);
    if (up) this.log.info({ event: 'kafka_up' }, 'Kafka answers');
    else this.log.warn({ event: 'kafka_down', silentMs: Date.now() - this.lastContact }, 'no answer from Kafka for longer than the session timeout; not ready until it answers again');
  }

  private watchKafka(): void {
    const limit = Math.max(this.deps.config.sessionTimeoutMs, 3 * this.deps.config.heartbeatIntervalMs);
    this.watchdog = setInterval(() => {
      if (this.kafkaUp && Date.now() - this.lastContact > limit) this.setKafkaUp(false);
    }, 1000);
    this.watchdog.unref();
  }

  /** Creates missing topics (where the cluster allows it), connects and starts consuming. */
  async start(): Promise<void> {
    const c = this.deps.config;
    await this.ensureTopics();
    // Exactly-once opens a transactional producer per input partition when it first gets a job of it.
    if (this.transactions === undefined) await this.producer.connect();
    this.running = true;
    this.watchKafka();
    await this.consumer.run((batch) => this.onBatch(batch));
    this.deps.metrics.ready.set(1);
    this.log.info({ event: 'worker_started', topic: c.inputTopic, group: c.groupId }, 'worker consuming');
  }

  private async ensureTopics(): Promise<void> {
    const c = this.deps.config;
    const wanted = [c.inputTopic, c.reviewTopic, c.dlqTopic, ...(c.scoresTopic === undefined ? [] : [c.scoresTopic])];
    const { created, failed } = await this.deps.transport.ensureTopics(wanted);
    if (created.length > 0) this.log.info({ event: 'topics_created', topics: created }, 'created missing topics');
    // The cluster may forbid creation; consuming and producing then fail with their own clear errors.
    if (failed !== undefined) this.log.warn({ event: 'topics_create_failed', topics: failed.topics, error: describeError(failed.error) }, 'could not create topics');
  }

  /**
   * A fetched batch: split into jobs and admitted to the pipeline, waiting for room
   * (heartbeating meanwhile). Returns once they are admitted, so that the consumer fetches
   * the next batch while these are still being worked on.
   */
  private async onBatch(batch: ConsumedBatch): Promise<void> {
    if (batch.records.length === 0 || !batch.isLive() || !this.running) return;
    const key = `${batch.topic}/${batch.partition}`;
    const c = this.deps.config;
    // After a failure, the partition waits out its backoff before its batch is read again.
    for (let wait = (this.retryAt.get(key) ?? 0) - Date.now(); wait > 0; wait = (this.retryAt.get(key) ?? 0) - Date.now()) {
      await new Promise((r) => setTimeout(r, Math.min(wait, c.heartbeatIntervalMs)));
      if (!this.running || !batch.isLive()) return;
      await batch.heartbeat();
    }
    const generation = this.generation;
    if (this.transactions !== undefined && this.settled.get(key) !== generation) {
      if (!(await this.settle(batch, generation))) return;
    }
    let start = 0;
    for (const size of evenRuns(batch.records.length, c.inferenceBatch)) {
      const messages = batch.records.slice(start, start + size);
      start += size;
      while (!this.pipeline.hasRoom(size)) {
        await Promise.race([this.pipeline.room(size), new Promise((r) => setTimeout(r, c.heartbeatIntervalMs))]);
        if (!this.running || !batch.isLive()) return;
        await batch.heartbeat();
      }
      if (!this.running || !batch.isLive() || generation !== this.generation) return;
      const last = (messages[messages.length - 1] as InMessage).offset;
      // Fetching goes on from here; the commit of these offsets waits for their records' acks.
      batch.fetchedThrough(last);
      void this.pipeline.admit(this.job(batch, messages, generation));
      this.deps.metrics.inFlight.set(this.pipeline.inFlight);
    }
  }

  /**
   * Exactly-once: where the partition's input resumes, before its first batch of a generation
   * and after a failure. A transaction whose commit failed without an answer may have committed
   * (then its records are visible, and reading them again from the job's first offset would
   * write them twice), and a new owner's consumer may have read the committed offset before the
   * last owner's transaction was finished. So the partition's transactional id is initialised
   * first (the broker finishes or aborts a transaction in doubt), then the committed offset is
   * read: a batch that does not start there is dropped and the partition sought to it. False
   * when this batch is not to be admitted.
   */
  private async settle(batch: ConsumedBatch, generation: number): Promise<boolean> {
    const transactions = this.transactions as PartitionTransactions;
    const key = `${batch.topic}/${batch.partition}`;
    const first = (batch.records[0] as InMessage).offset;
    let committed: string | null;
    try {
      committed = await transactions.settle(batch.topic, batch.partition);
    } catch (err) {
      // As a failed job of this batch: nothing admitted, read again after a backoff.
      this.jobFailed(batch, batch.records, this.epochs.get(key) ?? 0, err);
      return false;
    }
    if (!this.running || !batch.isLive() || generation !== this.generation) return false;
    this.settled.set(key, generation);
    if (committed === null || committed === first) return true;
    this.log.warn(
      { event: 'partition_resync', topic: batch.topic, partition: batch.partition, fetchedFrom: first, committed },
      'the committed offset is not where this batch starts (a transaction in doubt was committed, or the offset was read before it was); reading from the committed offset',
    );
    this.consumer.seek(batch.topic, batch.partition, committed);
    return false;
  }

  /** One job: `messages`, a run of one partition's batch, through decode, embed and search+score, then to the group stage (publish). */
  private job(batch: ConsumedBatch, messages: readonly InMessage[], generation: number): PipelineJob {
    const key = `${batch.topic}/${batch.partition}`;
    const epoch = this.epochs.get(key) ?? 0;
    const m = this.deps.metrics;
    let endBatch: () => unknown = () => undefined;
    return {
      size: messages.length,
      dropped: (): boolean => generation !== this.generation || epoch !== (this.epochs.get(key) ?? 0),
      stages: stagesToGroup(
        (): Promise<DecodedBatch> => {
          endBatch = m.time('batch');
          return Promise.resolve(this.scorer.decode(batch.topic, batch.partition, messages));
        },
        // The ONNX run is queued on the inference thread; the next job's is queued behind it at once.
        (decoded: DecodedBatch): Promise<Started<PreparedBatch>> => Promise.resolve(started(this.scorer.embed(decoded, () => batch.heartbeat()))),
        // Likewise the search, on the search thread, once the embeddings are there.
        async (embedding: Started<PreparedBatch>): Promise<Started<SearchedBatch>> => {
          const prepared = await embedding.result;
          return started(this.scorer.search(prepared));
        },
        async (search: Started<SearchedBatch>): Promise<JobOutput> => ({ batch, messages, out: this.scorer.score(await search.result), endBatch: () => void endBatch() }),
      ),
      failed: (err: unknown): void => this.jobFailed(batch, messages, epoch, err),
    };
  }

  /**
   * The group stage: the records of every job that is ready, acknowledged, then each input
   * partition's offset committed (the last job's of each), then the jobs' metrics. At least
   * once: one produce request for the group (chunked by size) and one commit per partition.
   * Exactly once: one transaction per input partition of the group, each with its records and
   * offset; a partition whose transaction fails fails its own jobs only, since the others'
   * offsets are committed with their records.
   */
  private async publish(ready: readonly Ready<JobOutput>[]): Promise<void> {
    const m = this.deps.metrics;
    const parts = new Map<string, Ready<JobOutput>[]>();
    for (const r of ready) {
      const key = `${r.value.batch.topic}/${r.value.batch.partition}`;
      const list = parts.get(key);
      if (list === undefined) parts.set(key, [r]);
      else list.push(r);
    }
    const transactions = this.transactions;
    if (transactions !== undefined) {
      for (const part of parts.values()) {
        const last = (part[part.length - 1] as Ready<JobOutput>).value;
        const endProduce = m.time('produce');
        let endCommit: (() => unknown) | undefined;
        try {
          // One transaction: the records and the consumed offset become visible to read_committed readers together.
          await transactions.commit(
            { records: this.records(part), input: { topic: last.batch.topic, partition: last.batch.partition, offset: nextOffset(last.messages) } },
            {
              produced: () => {
                endProduce();
                endCommit = m.time('commit');
              },
            },
          );
        } catch (err) {
          m.produceErrors.inc();
          for (const r of part) r.job.failed(err);
          continue;
        }
        endCommit?.();
        this.published(part);
      }
      this.leaving(ready);
      return;
    }
    const endProduce = m.time('produce');
    try {
      // Every record acknowledged (acks=all) before any commit.
      await this.producer.publish(this.records(ready));
    } catch (err) {
      m.produceErrors.inc();
      throw err;
    }
    endProduce();
    const endCommit = m.time('commit');
    // Through each partition's latest batch: it commits while the consumer drains after close() began.
    await Promise.all(
      [...parts.values()].map((part) => {
        const last = (part[part.length - 1] as Ready<JobOutput>).value;
        return last.batch.commit(nextOffset(last.messages));
      }),
    );
    endCommit();
    for (const part of parts.values()) this.published(part);
    this.leaving(ready);
  }

  /** The in-flight gauge as it will be once `ready` has left the pipeline. */
  private leaving(ready: readonly Ready<JobOutput>[]): void {
    this.deps.metrics.inFlight.set(this.pipeline.inFlight - ready.reduce((a, r) => a + r.job.size, 0));
  }

  /** The review, score and DLQ records of `jobs`, one entry per topic, in job order. */
  private records(jobs: readonly Ready<JobOutput>[]): TopicRecords[] {
    const c = this.deps.config;
    const review: OutRecord[] = [];
    const scores: OutRecord[] = [];
    const dlq: OutRecord[] = [];
    for (const { value } of jobs) {
      review.push(...value.out.review);
      if (c.scoresTopic !== undefined) scores.push(...value.out.scores);
      dlq.push(...value.out.dlq);
    }
    const topicMessages: TopicRecords[] = [];
    if (review.length > 0) topicMessages.push({ topic: c.reviewTopic, records: review });
    if (scores.length > 0 && c.scoresTopic !== undefined) topicMessages.push({ topic: c.scoresTopic, records: scores });
    if (dlq.length > 0) topicMessages.push({ topic: c.dlqTopic, records: dlq });
    return topicMessages;
  }

  /** One partition's jobs of a group, written and committed: their metrics. */
  private published(part: readonly Ready<JobOutput>[]): void {
    const m = this.deps.metrics;
    this.failures = 0;
    for (const { value } of part) {
      const { batch, messages, out } = value;
      this.retryAt.delete(`${batch.topic}/${batch.partition}`);
      const last = (messages[messages.length - 1] as InMessage).offset;
      // Counted once committed, so that a retried batch is not counted twice.
      m.consumed.inc({ topic: batch.topic }, messages.length);
      m.batchSize.observe(messages.length);
      m.scored.inc(out.scored.length);
      const lag = BigInt(batch.highWatermark) - BigInt(last) - 1n;
      m.consumerLag.set({ topic: batch.topic, partition: String(batch.partition) }, Number(lag > 0n ? lag : 0n));
      for (const { uncertainty, signals } of out.scored) {
        m.uncertainty.observe(uncertainty);
        this.drift.observe(oodPercentileOf(signals), uncertainty);
        for (const { key, label } of METRIC_SIGNALS) {
          const v = signals[key];
          if (v !== null) m.signal.observe({ signal: label }, v);
        }
      }
      for (const r of out.flaggedReasons) m.flagged.inc({ reason: r });
      for (const code of out.dlqCodes) m.dlq.inc({ code });
      value.endBatch();
      this.log.debug(
        { event: 'batch_done', topic: batch.topic, partition: batch.partition, lastOffset: last, messages: messages.length, flagged: out.review.length, dlq: out.dlq.length },
        'batch committed',
      );
    }
  }

  /**
   * A job failed (inference, search, publish or commit; never an input, which goes to the DLQ):
   * nothing of it is committed. Its partition's later jobs are dropped, the partition is rewound
   * to the job's first offset and read again after a backoff (none when the group is rebalancing).
   * After MAX_CONSECUTIVE_FAILURES the worker gives up (onFatal: the process exits, and its
   * supervisor restarts it).
   */
  private jobFailed(batch: ConsumedBatch, messages: readonly InMessage[], epoch: number, err: unknown): void {
    const key = `${batch.topic}/${batch.partition}`;
    if ((this.epochs.get(key) ?? 0) !== epoch) return; // an earlier job of this partition already rewound it
    this.epochs.set(key, epoch + 1);
    // Exactly-once: the failed transaction may have committed; its next batch waits for settle().
    this.settled.delete(key);
    const first = (messages[0] as InMessage).offset;
    const rebalance = this.deps.transport.isRebalance(err);
    if (!rebalance) this.failures++;
    const backoff = rebalance ? 0 : Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (this.failures - 1)) * (0.5 + Math.random() * 0.5);
    this.retryAt.set(key, Date.now() + backoff);
    this.log.error(
      { event: 'batch_failed', topic: batch.topic, partition: batch.partition, fromOffset: first, failures: this.failures, retryInMs: Math.round(backoff), rebalance, error: describeError(err) },
      'a batch failed; nothing of it is committed, and it will be read again',
    );
    // Always rewound, a rebalance error too: fetching has moved past this job, and a later
    // job's commit must not step over it (a rejoin would rewind as well; a seek then is harmless).
    try {
      this.consumer.seek(batch.topic, batch.partition, first);
    } catch (seekErr) {
      this.log.warn({ event: 'seek_failed', error: describeError(seekErr) }, 'could not rewind the partition; the next rebalance or restart will');
    }
    if (this.failures >= MAX_CONSECUTIVE_FAILURES) {
      this.deps.onFatal?.(err instanceof Error ? err : new Error(describeError(err)));
    }
  }

  /** The served bundle's own drift baseline, recomputed when the bundle changes. */
  private referenceSummary(): DriftSummary {
    const snap = this.deps.snapshot();
    if (this.reference?.version !== snap.version) {
      this.reference = { version: snap.version, summary: referenceDrift(snap.stats, this.deps.config.oodPercentile, snap.gaussian?.classDistanceQuantiles) };
    }
    return this.reference.summary;
  }

  /**
   * Stops fetching, lets every admitted job finish publishing and committing, then leaves the
   * group and flushes and disconnects the producer. Idempotent; runs every step even if one fails.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const wasRunning = this.running;
      this.running = false;
      clearInterval(this.watchdog);
      this.deps.metrics.ready.set(0);
      await runSteps(
        [
          [
            'pause',
            () => {
              if (wasRunning) this.consumer.pause(this.deps.config.inputTopic);
              return Promise.resolve();
            },
          ],
          ['drain', () => this.pipeline.idle()],
          ['consumer', () => this.consumer.close()],
          ['producer', () => (this.transactions === undefined ? this.producer.close() : this.transactions.close())],
        ],
        (step, err) => this.log.error({ event: 'close_step_failed', step, error: describeError(err) }, 'close step failed'),
      );
      this.log.info({ event: 'worker_stopped' }, 'worker stopped');
    })();
    return this.closing;
  }
}
