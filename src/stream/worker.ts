import type { Admin, Consumer, EachBatchPayload, Kafka, Message, Producer } from 'kafkajs';
import type { Config } from '../config/index.js';
import { describeError } from '../errors.js';
import type { IndexSnapshot } from '../index/index.js';
import type { Logger } from '../logging/index.js';
import type { QualmMetrics } from '../metrics/index.js';
import { DriftWindow, FlagRules, oodPercentileOf, referenceDrift, TargetRatePolicy, ThresholdPolicy, type DriftSummary, type FlagPolicy } from '../scoring/index.js';
import { BatchScorer, type Embedder } from './batch-scorer.js';
import { METRIC_SIGNALS } from '../signals.js';
import { runSteps } from '../util/run-steps.js';
import { chunkByBytes } from './chunk.js';

/** Largest produce request the worker sends (the broker default message.max.bytes is about 1 MiB). */
export const PRODUCE_CHUNK_BYTES = 512 * 1024;

export interface WorkerDeps {
  config: Config;
  kafka: Kafka;
  embedder: Embedder;
  /** The snapshot to search; read once per batch, so a refresher may swap it between batches. */
  snapshot: () => IndexSnapshot;
  metrics: QualmMetrics;
  logger: Logger;
  /** Called when the consumer has crashed and kafkajs will not restart it: the process should exit. */
  onFatal?: (err: Error) => void;
}

/** The worker's flagging rules from its configuration (see scoring/policy.ts FlagRules). */
export function createPolicy(
  c: Pick<Config, 'flagPolicy' | 'flagThreshold' | 'targetFlagRate' | 'rateWindow' | 'minPredictedAccuracy' | 'oodRule' | 'oodPercentile'>,
): FlagRules {
  const uncertainty: FlagPolicy = c.flagPolicy === 'target_rate' ? new TargetRatePolicy(c.targetFlagRate, c.rateWindow, c.flagThreshold) : new ThresholdPolicy(c.flagThreshold);
  return new FlagRules({
    uncertainty,
    minPredictedAccuracy: c.flagPolicy === 'min_predicted_accuracy' ? c.minPredictedAccuracy : null,
    oodRule: c.oodRule,
    oodPercentile: c.oodPercentile,
  });
}

/**
 * The stream worker: a consumer group member that scores each batch, publishes its review,
 * score and DLQ records with an idempotent acks=all producer, and commits the batch's
 * offsets only after those writes are acknowledged (at-least-once).
 */
export class StreamWorker {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly scorer: BatchScorer;
  private readonly log: Logger;
  private readonly drift: DriftWindow;
  private reference: { readonly version: string; readonly summary: DriftSummary } | undefined;
  private joined = false;
  private running = false;
  private closing: Promise<void> | undefined;

  constructor(private readonly deps: WorkerDeps) {
    const c = deps.config;
    this.log = deps.logger.child({ area: 'stream' });
    this.consumer = deps.kafka.consumer({
      groupId: c.groupId,
      sessionTimeout: c.sessionTimeoutMs,
      heartbeatInterval: c.heartbeatIntervalMs,
      maxBytesPerPartition: 1024 * 1024,
      retry: { retries: 10 },
    });
    this.producer = deps.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    this.scorer = new BatchScorer(c, deps.embedder, deps.snapshot, createPolicy(c), deps.metrics, () => new Date());
    this.drift = new DriftWindow(c.driftWindow, c.oodPercentile);
    deps.metrics.setDrift({ stream: () => this.drift.summary(), reference: () => this.referenceSummary() });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      this.joined = true;
      // After a rebalance this member reports lag only for the partitions it now owns.
      deps.metrics.consumerLag.reset();
      this.log.info({ event: 'group_join', memberId: e.payload.memberId, assignment: e.payload.memberAssignment }, 'joined consumer group');
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      this.joined = false;
      this.log.error({ event: 'consumer_crash', error: describeError(e.payload.error), restart: e.payload.restart }, 'consumer crashed');
      if (!e.payload.restart) deps.onFatal?.(e.payload.error);
    });
    this.consumer.on(this.consumer.events.STOP, () => {
      this.joined = false;
    });
  }

  /** True while the consumer is in its group and running. */
  isReady(): boolean {
    return this.running && this.joined;
  }

  /** Creates missing topics (where the cluster allows it), connects and starts consuming. */
  async start(): Promise<void> {
    const c = this.deps.config;
    await this.ensureTopics();
    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [c.inputTopic], fromBeginning: c.fromBeginning });
    this.running = true;
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.onBatch(payload),
    });
    this.deps.metrics.ready.set(1);
    this.log.info({ event: 'worker_started', topic: c.inputTopic, group: c.groupId }, 'worker consuming');
  }

  private async ensureTopics(): Promise<void> {
    const c = this.deps.config;
    const admin: Admin = this.deps.kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const wanted = [c.inputTopic, c.reviewTopic, c.dlqTopic, ...(c.scoresTopic === undefined ? [] : [c.scoresTopic])];
      const missing = wanted.filter((t) => !existing.has(t));
      if (missing.length > 0) {
        try {
          await admin.createTopics({ topics: missing.map((topic) => ({ topic })), waitForLeaders: true });
          this.log.info({ event: 'topics_created', topics: missing }, 'created missing topics');
        } catch (err) {
          // The cluster may forbid creation; consuming and producing then fail with their own clear errors.
          this.log.warn({ event: 'topics_create_failed', topics: missing, error: describeError(err) }, 'could not create topics');
        }
      }
    } finally {
      await admin.disconnect();
    }
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (batch.messages.length === 0 || !payload.isRunning() || payload.isStale()) return;
    const c = this.deps.config;
    const m = this.deps.metrics;
    const endBatch = m.time('batch');

    const out = await this.scorer.process(batch.topic, batch.partition, batch.messages, () => payload.heartbeat());

    const topicMessages: { topic: string; messages: Message[] }[] = [];
    if (out.review.length > 0) topicMessages.push({ topic: c.reviewTopic, messages: out.review });
    if (out.scores.length > 0 && c.scoresTopic !== undefined) topicMessages.push({ topic: c.scoresTopic, messages: out.scores });
    if (out.dlq.length > 0) topicMessages.push({ topic: c.dlqTopic, messages: out.dlq });
    const endProduce = m.time('produce');
    if (topicMessages.length > 0) {
      try {
        // Requests stay under the broker's message.max.bytes; all must be acknowledged before the commit.
        for (const { topic, messages } of topicMessages) {
          for (const chunk of chunkByBytes(messages, PRODUCE_CHUNK_BYTES)) {
            await this.producer.send({ topic, messages: chunk, acks: -1 });
          }
        }
      } catch (err) {
        m.produceErrors.inc();
        // Nothing of this batch is committed: kafkajs retries it from its first offset.
        this.log.error({ event: 'produce_failed', topic: batch.topic, partition: batch.partition, error: describeError(err) }, 'publishing failed; batch will be retried');
        throw err;
      }
    }
    endProduce();

    const last = batch.lastOffset();
    const endCommit = m.time('commit');
    payload.resolveOffset(last);
    // Through the batch payload, not consumer.commitOffsets(): the latter silently skips the
    // commit once stop() has begun, which would drop the commit of the batch being drained.
    await payload.commitOffsetsIfNecessary({
      topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: (BigInt(last) + 1n).toString() }] }],
    });
    endCommit();
    await payload.heartbeat();

    // Counted once committed, so that a retried batch is not counted twice.
    m.consumed.inc({ topic: batch.topic }, batch.messages.length);
    m.batchSize.observe(batch.messages.length);
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
    endBatch();
    this.log.debug(
      { event: 'batch_done', topic: batch.topic, partition: batch.partition, lastOffset: last, messages: batch.messages.length, flagged: out.review.length, dlq: out.dlq.length },
      'batch committed',
    );
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
   * Stops fetching, lets the in-flight batch finish publishing and committing, then flushes
   * and disconnects the producer. Idempotent; runs every step even if one fails.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.running = false;
      this.deps.metrics.ready.set(0);
      await runSteps(
        [
          ['consumer', () => this.consumer.disconnect()],
          ['producer', () => this.producer.disconnect()],
        ],
        (step, err) => this.log.error({ event: 'close_step_failed', step, error: describeError(err) }, 'close step failed'),
      );
      this.log.info({ event: 'worker_stopped' }, 'worker stopped');
    })();
    return this.closing;
  }
}
