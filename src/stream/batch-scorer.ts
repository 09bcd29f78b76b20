import { OPTIONS, type Config } from '../config/index.js';
import { dlqRecord, messageFormat, parseSample, type FlagReason, type InputSpec, type SourceRef } from '../contracts/index.js';
import { ErrorCodes, describeError, type ErrorCode } from '../errors.js';
import type { IndexSnapshot } from '../index/index.js';
import type { QualmMetrics } from '../metrics/index.js';
import { Scorer, type Embedded, type Embedder, type Found, type ScoreItem, type SearchStage } from '../scorer/index.js';
import type { FlagRules, Score } from '../scoring/index.js';
import { inputSpecFor } from '../encoder/index.js';
import type { Headers, OutRecord } from '../transport/index.js';

export type { Embedder } from '../scorer/index.js';

/** QUALM_MAX_DLQ_BYTES's default, for callers that give no configuration of it (tests, benches). */
const DEFAULT_MAX_DLQ_BYTES = Number(OPTIONS.maxDlqBytes.default);

/** One consumed message (a transport InRecord, or anything with its key, value, headers and offset). */
export interface InMessage {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers?: Headers;
  readonly offset: string;
}

/** Everything one batch produces; written before its offsets are committed. */
export interface BatchOutput {
  readonly review: OutRecord[];
  readonly scores: OutRecord[];
  readonly dlq: OutRecord[];
  readonly dlqCodes: ErrorCode[];
  readonly flaggedReasons: FlagReason[];
  /** The score of every scored sample, in message order, for the metrics and the drift window. */
  readonly scored: Score[];
}

/** A batch parsed by `BatchScorer.decode`: its DLQ records so far and the samples to embed. */
export interface DecodedBatch {
  readonly out: BatchOutput;
  readonly toDlq: (m: InMessage, source: SourceRef, code: ErrorCode, message: string) => void;
  /** The messages that parsed, in order, as the scorer's items. */
  readonly good: readonly (ScoreItem<SourceRef> & { readonly message: InMessage })[];
}

/** A batch decoded and embedded (`BatchScorer.prepare`, or `decode` then `embed`), waiting for `finish`. */
export interface PreparedBatch extends DecodedBatch {
  readonly embedded: Embedded<SourceRef>;
}

/** A prepared batch searched (`BatchScorer.search`), waiting for `score`. */
export interface SearchedBatch extends DecodedBatch {
  readonly found: Found<SourceRef>;
}

/**
 * Turns a batch of raw messages into records to publish: parses and validates each one (the bad
 * ones become DLQ records), hands the good ones to the Scorer, and writes what it returns as
 * review, score and DLQ messages. Holds no Kafka connection, so it is tested without a broker.
 */
export class BatchScorer {
  private readonly spec: InputSpec;
  private readonly scorer: Scorer;

  constructor(
    private readonly config: Pick<Config, 'maxMessageBytes' | 'inferenceBatch' | 'scoresTopic'> & Partial<Pick<Config, 'inputFormat' | 'maxMetaDepth' | 'maxMetaBytes' | 'maxDlqBytes'>>,
    embedder: Embedder,
    snapshot: () => IndexSnapshot,
    policy: FlagRules,
    private readonly metrics: QualmMetrics,
    private readonly now: () => Date = () => new Date(),
    search?: SearchStage,
  ) {
    this.spec = {
      ...inputSpecFor(embedder, config.maxMessageBytes),
      ...(config.maxMetaDepth === undefined ? {} : { maxMetaDepth: config.maxMetaDepth }),
      ...(config.maxMetaBytes === undefined ? {} : { maxMetaBytes: config.maxMetaBytes }),
    };
    this.scorer = new Scorer({ embedder, snapshot, policy, batch: config.inferenceBatch, metrics, now, search });
  }

  /** `prepare` then `finish`: one batch, start to end. */
  async process(topic: string, partition: number, messages: readonly InMessage[], heartbeat: () => Promise<void>): Promise<BatchOutput> {
    return this.finish(await this.prepare(topic, partition, messages, heartbeat));
  }

  /**
   * `decode` then `embed`. A pipeline may prepare the next batch while `finish` works on this
   * one; `finish` calls must come in stream order.
   */
  async prepare(topic: string, partition: number, messages: readonly InMessage[], heartbeat: () => Promise<void>): Promise<PreparedBatch> {
    return this.embed(this.decode(topic, partition, messages), heartbeat);
  }

  /** Embeds a decoded batch's samples (on the inference thread). */
  async embed(decoded: DecodedBatch, heartbeat: () => Promise<void>): Promise<PreparedBatch> {
    return { ...decoded, embedded: await this.scorer.embed(decoded.good, heartbeat) };
  }

  /** Parses and validates each message; the bad ones become DLQ records. */
  decode(topic: string, partition: number, messages: readonly InMessage[]): DecodedBatch {
    const out: BatchOutput = { review: [], scores: [], dlq: [], dlqCodes: [], flaggedReasons: [], scored: [] };
    const failedAt = this.now().toISOString();
    const maxDlqBytes = this.config.maxDlqBytes ?? DEFAULT_MAX_DLQ_BYTES;
    const toDlq = (m: InMessage, source: SourceRef, code: ErrorCode, message: string): void => {
      out.dlqCodes.push(code);
      out.dlq.push(dlqRecord(m, { code, message, source, failedAt }, maxDlqBytes) as OutRecord);
    };

    const endDecode = this.metrics.time('decode');
    const good: (ScoreItem<SourceRef> & { readonly message: InMessage })[] = [];
    for (const m of messages) {
      const source: SourceRef = { topic, partition, offset: m.offset };
      // The qualm-input-format header, else QUALM_INPUT_FORMAT: a JSON sample or a raw image.
      const format = messageFormat(m.headers, this.config.inputFormat ?? 'json');
      const parsed = typeof format === 'string' ? parseSample(m.value, m.key, this.spec, format) : format;
      if (parsed.ok) good.push({ sample: parsed.sample, source, message: m });
      else toDlq(m, source, parsed.code, parsed.message);
    }
    endDecode();
    return { out, toDlq, good };
  }

  /** Searches and scores a prepared batch and writes its review, score and DLQ messages. */
  async finish(prepared: PreparedBatch): Promise<BatchOutput> {
    return this.score(await this.search(prepared));
  }

  /** The kNN search of a prepared batch (on the search thread when there is one). */
  async search(prepared: PreparedBatch): Promise<SearchedBatch> {
    return { out: prepared.out, toDlq: prepared.toDlq, good: prepared.good, found: await this.scorer.search(prepared.embedded) };
  }

  /** Scores a searched batch and writes its review, score and DLQ messages; in stream order (the flag rules are stateful). */
  score(searched: SearchedBatch): BatchOutput {
    const { out, toDlq } = searched;
    const good = searched.good;
    if (good.length === 0) return out;
    const scored = this.scorer.scoreFound(searched.found);
    scored.forEach((s, i) => {
      if (!s.ok) {
        toDlq((good[i] as (typeof good)[number]).message, s.source, s.code, s.message);
        return;
      }
      // A record that cannot be written (what meta holds is the sender's) fails this message alone.
      let review: string | null;
      let record: string | null;
      try {
        review = s.review === null ? null : JSON.stringify(s.review);
        record = this.config.scoresTopic === undefined ? null : JSON.stringify(s.record);
      } catch (err) {
        toDlq((good[i] as (typeof good)[number]).message, s.source, ErrorCodes.RECORD_UNSERIALIZABLE, `its score record cannot be written as JSON: ${describeError(err)}`);
        return;
      }
      out.scored.push(s.score);
      if (s.review !== null && review !== null) {
        out.flaggedReasons.push(s.review.reason);
        out.review.push({ key: s.sample.id, value: review });
      }
      if (record !== null) out.scores.push({ key: s.sample.id, value: record });
    });
    return out;
  }
}
