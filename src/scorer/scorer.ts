import type { RecordSource, ReviewRecord, Sample, SampleInput, ScoreRecord } from '../contracts/index.js';
import type { ErrorCode } from '../errors.js';
import type { IndexSnapshot, Neighbors } from '../index/index.js';
import type { Stage } from '../metrics/index.js';
import { bundleScoreOptions, scoreNeighbors, type FlagDecision, type FlagRules, type Score } from '../scoring/index.js';
import { encodeInputs } from '../encoder/index.js';
import type { Embedder } from './embedder.js';
import { reviewRecord, scoreRecord } from './records.js';

/** One sample to score and where it came from (Kafka coordinates, a file line, or null). */
export interface ScoreItem<S extends RecordSource = RecordSource> {
  readonly sample: Sample;
  readonly source: S;
}

/** A sample scored: its score, the flag decision and the records made of them. */
export interface ScoredSample<S extends RecordSource = RecordSource> {
  readonly ok: true;
  readonly sample: Sample;
  readonly source: S;
  readonly score: Score;
  readonly decision: FlagDecision | null;
  readonly record: ScoreRecord<S>;
  /** The review record when the sample is flagged, else null. */
  readonly review: ReviewRecord<S> | null;
}

/** A sample the encoder stage rejected (an undecodable image, say): a verdict about the input, not a failure. */
export interface RejectedSample<S extends RecordSource = RecordSource> {
  readonly ok: false;
  readonly sample: Sample;
  readonly source: S;
  readonly code: ErrorCode;
  readonly message: string;
}

export type Scored<S extends RecordSource = RecordSource> = ScoredSample<S> | RejectedSample<S>;

/** Stage timers (QualmMetrics has them); each call starts one and returns its stop. */
export interface StageTimers {
  time(stage: Stage): () => unknown;
}

export interface ScorerOptions {
  readonly embedder: Embedder;
  /** The snapshot to search; read once per score() call, so a refresher may swap it between calls. */
  readonly snapshot: () => IndexSnapshot;
  /** The flag rules; stateful (a target rate's window), so one Scorer sees the whole stream in order. */
  readonly policy: FlagRules;
  /** Rows per ONNX run (QUALM_INFERENCE_BATCH). */
  readonly batch: number;
  /** Times the embed, search and score stages when given. */
  readonly metrics?: StageTimers | undefined;
  /** The clock of `scored_at`; read once per score() call. */
  readonly now?: (() => Date) | undefined;
  /** The encoder stage, one result per input in order (default: encodeInputs with `embedder`). */
  readonly encode?: EncodeStage | undefined;
  /** The kNN stage (the worker's search thread); default: `snapshot.search` on the calling thread. */
  readonly search?: SearchStage | undefined;
}

/** The k nearest references of each embedding (null stays null), nearest first. */
export type SearchStage = (snapshot: IndexSnapshot, vectors: readonly (Float32Array | null)[]) => Promise<(Neighbors | null)[]>;

/** Items embedded by `Scorer.embed`, waiting for `Scorer.finish`. */
export interface Embedded<S extends RecordSource = RecordSource> {
  readonly items: readonly ScoreItem<S>[];
  readonly encoded: readonly Encoded[];
}

/** Items searched by `Scorer.search`, waiting for `Scorer.scoreFound`. */
export interface Found<S extends RecordSource = RecordSource> {
  readonly embedded: Embedded<S>;
  /** The snapshot searched, which scoring then reads too (none read for no items). */
  readonly snap: IndexSnapshot | undefined;
  readonly neighbors: readonly (Neighbors | null)[];
}

/** What the encoder stage gives per input: an embedding, or why the input was refused. */
export type Encoded = Float32Array | { readonly code: ErrorCode; readonly message: string };

/** Embeds inputs in runs of at most `batch`, calling `heartbeat` between runs. */
export type EncodeStage = (inputs: readonly SampleInput[], batch: number, heartbeat: () => Promise<void>) => Promise<readonly Encoded[]>;

const noTimer = (): void => undefined;

/**
 * Bundle and encoder in, scored samples out: one batched embedding pass, a kNN query per
 * sample on the current snapshot, the signals and combined score, the flag decision, and
 * the score and review records. The one place where search → signals → decision → records
 * happens; the worker, `qualm score` and the scripts hand it samples and write what it returns.
 */
export class Scorer {
  private readonly modelVersion: string;

  constructor(private readonly opts: ScorerOptions) {
    this.modelVersion = `${opts.embedder.manifest.name}@${opts.embedder.manifest.version}`;
  }

  get embedder(): Embedder {
    return this.opts.embedder;
  }

  /** Rows per ONNX run. */
  get batch(): number {
    return this.opts.batch;
  }

  /**
   * One value per item, in order: `embed` then `finish`. `heartbeat` runs after each ONNX
   * run (the consumer's heartbeat in the worker). Throws only on failures of the program or
   * its infrastructure (inference, search), never on an input.
   */
  async score<S extends RecordSource>(items: readonly ScoreItem<S>[], heartbeat: () => Promise<void> = () => Promise.resolve()): Promise<Scored<S>[]> {
    return this.finish(await this.embed(items, heartbeat));
  }

  /**
   * The encoder stage alone. A pipeline may embed the next items while `finish` still works
   * on earlier ones; `finish` calls must come in stream order (the flag rules are stateful).
   */
  async embed<S extends RecordSource>(items: readonly ScoreItem<S>[], heartbeat: () => Promise<void> = () => Promise.resolve()): Promise<Embedded<S>> {
    if (items.length === 0) return { items, encoded: [] };
    const endEmbed = this.opts.metrics?.time('embed') ?? noTimer;
    const inputs = items.map((it) => it.sample.input);
    const encoded: readonly Encoded[] =
      this.opts.encode === undefined ? await encodeInputs(this.opts.embedder, inputs, this.opts.batch, heartbeat) : await this.opts.encode(inputs, this.opts.batch, heartbeat);
    if (encoded.length !== items.length) throw new RangeError(`the encoder stage gave ${encoded.length} results for ${items.length} inputs`);
    endEmbed();
    return { items, encoded };
  }

  /** Search, signals, decision and records of embedded items, on the snapshot served now. */
  async finish<S extends RecordSource>(embedded: Embedded<S>): Promise<Scored<S>[]> {
    return this.scoreFound(await this.search(embedded));
  }

  /**
   * The kNN stage alone, on the snapshot served now. A pipeline may search the next items
   * while `scoreFound` works on earlier ones; `scoreFound` calls must come in stream order.
   */
  async search<S extends RecordSource>(embedded: Embedded<S>): Promise<Found<S>> {
    const { encoded } = embedded;
    if (embedded.items.length === 0) return { embedded, snap: undefined, neighbors: [] };
    const snap = this.opts.snapshot();
    const endSearch = this.opts.metrics?.time('search') ?? noTimer;
    const vectors = encoded.map((z) => (z instanceof Float32Array ? z : null));
    const neighbors = this.opts.search === undefined ? vectors.map((z) => (z === null ? null : snap.search(z))) : await this.opts.search(snap, vectors);
    endSearch();
    return { embedded, snap, neighbors };
  }

  /** Signals, decision and records of searched items (the flag rules are stateful: call in stream order). */
  scoreFound<S extends RecordSource>(found: Found<S>): Scored<S>[] {
    const { embedded, snap, neighbors } = found;
    const { items, encoded } = embedded;
    if (items.length === 0 || snap === undefined) return [];
    const { embedder, policy } = this.opts;
    const scoredAt = (this.opts.now?.() ?? new Date()).toISOString();
    const endScore = this.opts.metrics?.time('score') ?? noTimer;
    const scoreOpts = bundleScoreOptions(snap);
    const model = { version: this.modelVersion, sha256: embedder.sha256, dim: embedder.dim };
    const out = items.map((item, i): Scored<S> => {
      const z = encoded[i] as Encoded;
      if (!(z instanceof Float32Array)) return { ok: false, sample: item.sample, source: item.source, code: z.code, message: z.message };
      const nb = neighbors[i] as Neighbors;
      const score = scoreNeighbors(nb, snap.stats, scoreOpts, z, item.sample.prediction);
      const decision = policy.decide(score);
      const parts = { id: item.sample.id, meta: item.sample.meta, source: item.source, score, decision, neighbors: nb, embedding: z, snapshot: snap, model, flagPolicy: policy.name, scoredAt };
      return {
        ok: true,
        sample: item.sample,
        source: item.source,
        score,
        decision,
        record: scoreRecord(parts),
        review: decision === null ? null : reviewRecord({ ...parts, decision }),
      };
    });
    endScore();
    return out;
  }
}
