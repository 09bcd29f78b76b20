import type { IHeaders, Message } from 'kafkajs';
import type { Config } from '../config/index.js';
import {
  dlqHeaders,
  encodeFloat32Base64,
  parseSample,
  type FlagReason,
  type InputSpec,
  type ReviewRecord,
  type Sample,
  type ScoreRecord,
  type SignalsRecord,
  type SourceRef,
} from '../contracts/index.js';
import type { ErrorCode } from '../errors.js';
import type { IndexSnapshot } from '../index/index.js';
import type { QualmMetrics } from '../metrics/index.js';
import { bundleScoreOptions, explain, scoreNeighbors, type FlagRules, type Score } from '../scoring/index.js';
import { encodeInputs, inputSpecFor, type TextEmbedding } from './encode-inputs.js';

/** What the scorer needs of an encoder (OnnxEncoder in production). */
export interface Embedder extends TextEmbedding {
  readonly dim: number;
  readonly inputDim: number;
  readonly manifest: { readonly name: string; readonly version: string };
  /** sha256 of the model file; review records name it beside the embedding they carry. */
  readonly sha256: string;
  embedAll(features: Float32Array, n: number, batch: number, between?: (done: number) => Promise<void> | void): Promise<Float32Array>;
}

/** One consumed message, as kafkajs hands it over. */
export interface InMessage {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers?: IHeaders;
  readonly offset: string;
}

/** Everything one batch produces; written before its offsets are committed. */
export interface BatchOutput {
  readonly review: Message[];
  readonly scores: Message[];
  readonly dlq: Message[];
  readonly dlqCodes: ErrorCode[];
  readonly flaggedReasons: FlagReason[];
  readonly uncertainties: number[];
  /** The signals of every scored sample, for the metrics. */
  readonly signals: Score['signals'][];
}

function signalsRecord(s: Score['signals']): SignalsRecord {
  return {
    mean_knn_distance: s.meanKnnDistance,
    kth_knn_distance: s.kthKnnDistance,
    density_percentile: s.densityPercentile,
    relative_density: s.relativeDensity,
    relative_density_percentile: s.relativeDensityPercentile,
    label_agreement: s.labelAgreement,
    label_entropy: s.labelEntropy,
    kth_knn_percentile: s.kthKnnPercentile,
    label_margin: s.labelMargin,
    reverse_neighbor_consistency: s.reverseNeighborConsistency,
    mahalanobis_percentile: s.mahalanobisPercentile,
    relative_mahalanobis_percentile: s.relativeMahalanobisPercentile,
  };
}

/**
 * Turns a batch of raw messages into review, score and DLQ records: parse and validate,
 * one batched embedding pass, a kNN query per sample on the current snapshot, scoring and
 * the flag policy. Holds no Kafka connection, so it is tested without a broker.
 */
export class BatchScorer {
  private readonly spec: InputSpec;

  constructor(
    private readonly config: Pick<Config, 'maxMessageBytes' | 'inferenceBatch' | 'scoresTopic'>,
    private readonly embedder: Embedder,
    private readonly snapshot: () => IndexSnapshot,
    private readonly policy: FlagRules,
    private readonly metrics: QualmMetrics,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.spec = inputSpecFor(embedder, config.maxMessageBytes);
  }

  async process(topic: string, partition: number, messages: readonly InMessage[], heartbeat: () => Promise<void>): Promise<BatchOutput> {
    const out: BatchOutput = { review: [], scores: [], dlq: [], dlqCodes: [], flaggedReasons: [], uncertainties: [], signals: [] };
    const stamp = this.now().toISOString();

    const endDecode = this.metrics.time('decode');
    const good: { sample: Sample; source: SourceRef }[] = [];
    for (const m of messages) {
      const source: SourceRef = { topic, partition, offset: m.offset };
      const parsed = parseSample(m.value, m.key, this.spec);
      if (parsed.ok) {
        good.push({ sample: parsed.sample, source });
        continue;
      }
      out.dlqCodes.push(parsed.code);
      out.dlq.push({
        key: m.key,
        value: m.value,
        headers: { ...(m.headers ?? {}), ...dlqHeaders({ code: parsed.code, message: parsed.message, source, failedAt: stamp }) },
      });
    }
    endDecode();
    if (good.length === 0) return out;

    // One embedding pass per input kind (features or text); `embedding` inputs skip the encoder.
    const endEmbed = this.metrics.time('embed');
    const embeddings = await encodeInputs(this.embedder, good.map((g) => g.sample.input), this.config.inferenceBatch, heartbeat);
    endEmbed();

    const snap = this.snapshot();
    const dim = this.embedder.dim;

    const endSearch = this.metrics.time('search');
    const neighbors = embeddings.map((z) => snap.search(z));
    endSearch();

    const endScore = this.metrics.time('score');
    const scoreOpts = bundleScoreOptions(snap);
    const modelVersion = `${this.embedder.manifest.name}@${this.embedder.manifest.version}`;
    good.forEach((g, i) => {
      const nb = neighbors[i];
      if (nb === undefined) return;
      const score = scoreNeighbors(nb, snap.stats, scoreOpts, embeddings[i]);
      const decision = this.policy.decide(score);
      const suggested = snap.labelName(score.suggestedLabel);
      const signals = signalsRecord(score.signals);
      out.uncertainties.push(score.uncertainty);
      out.signals.push(score.signals);
      const meta = g.sample.meta ?? null;
      if (decision !== null) {
        const { reason, rule } = decision;
        out.flaggedReasons.push(reason);
        const review: ReviewRecord = {
          id: g.sample.id,
          meta,
          uncertainty: score.uncertainty,
          predicted_accuracy: score.predictedAccuracy,
          signals,
          neighbors: nb.ids.map((id, j) => ({
            ref_id: id,
            distance: nb.distances[j] as number,
            label: nb.labels === null ? null : snap.labelName(nb.labels[j] as number),
          })),
          suggested_label: suggested,
          reason,
          rule,
          explanation: explain(reason, score.signals, suggested, score.predictedAccuracy),
          flag_policy: this.policy.name,
          index_version: snap.version,
          model_version: modelVersion,
          scored_at: stamp,
          source: g.source,
          embedding: { model_sha256: this.embedder.sha256, dim, b64: encodeFloat32Base64(embeddings[i] as ArrayLike<number>) },
        };
        out.review.push({ key: g.sample.id, value: JSON.stringify(review) });
      }
      if (this.config.scoresTopic !== undefined) {
        const record: ScoreRecord = {
          id: g.sample.id,
          meta,
          uncertainty: score.uncertainty,
          predicted_accuracy: score.predictedAccuracy,
          flagged: decision !== null,
          reason: decision?.reason ?? null,
          rule: decision?.rule ?? null,
          signals,
          suggested_label: suggested,
          index_version: snap.version,
          model_version: modelVersion,
          scored_at: stamp,
          source: g.source,
        };
        out.scores.push({ key: g.sample.id, value: JSON.stringify(record) });
      }
    });
    endScore();
    return out;
  }
}
