import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { METRIC_SIGNALS } from '../signals.js';

/** Outcomes of a refresh check that found a new bundle version. */
export const REFRESH_OUTCOMES = ['swapped', 'refused', 'error'] as const;
export type RefreshOutcome = (typeof REFRESH_OUTCOMES)[number];

export const STAGES = ['decode', 'embed', 'search', 'score', 'produce', 'commit', 'batch'] as const;
export type Stage = (typeof STAGES)[number];

/** What the bundle gauges read at scrape time. */
export interface BundleView {
  version: string;
  modelSha256: string;
  count: number;
  /** Creation time of the bundle, ms since the epoch. */
  createdAt: number;
}

/** A label-free summary of a set of samples (structurally scoring's DriftSummary). */
export interface DriftView {
  readonly samples: number;
  readonly oodRatio: number;
  readonly uncertainty: Readonly<Record<string, number | undefined>>;
}

/** What the drift gauges read at scrape time: the stream's window and the served bundle's own baseline. */
export interface DriftSource {
  stream(): DriftView;
  reference(): DriftView | undefined;
}

/**
 * prom-client's default metrics minus the three `nodejs_active_*_total` gauges: a `_total`
 * suffix on a gauge breaks the naming rules `promtool check metrics` enforces, and the same
 * numbers are the sums over the per-type `nodejs_active_{handles,requests,resources}` gauges.
 */
const DROPPED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

/**
 * Every metric qualm exports, on its own registry (never prom-client's global one).
 * docs/metrics.md lists them; a test checks that list against this file.
 */
export class QualmMetrics {
  readonly registry: Registry;
  readonly consumed: Counter<'topic'>;
  readonly scored: Counter;
  readonly flagged: Counter<'reason'>;
  readonly dlq: Counter<'code'>;
  readonly batchSize: Histogram;
  readonly stageSeconds: Histogram<'stage'>;
  readonly uncertainty: Histogram;
  readonly signal: Histogram<'signal'>;
  readonly produceErrors: Counter;
  readonly bundleInfo: Gauge<'version' | 'model_sha256'>;
  readonly bundleReferences: Gauge;
  readonly bundleAge: Gauge;
  readonly bundleRefresh: Counter<'outcome'>;
  readonly bundleLoadSeconds: Histogram;
  readonly ready: Gauge;
  readonly inFlight: Gauge;
  readonly kafkaUp: Gauge;
  readonly consumerLag: Gauge<'topic' | 'partition'>;

  readonly driftWindowSamples: Gauge;
  readonly driftOodRatio: Gauge<'source'>;
  readonly driftUncertainty: Gauge<'source' | 'q'>;

  private bundle: BundleView | undefined;
  private drift: DriftSource | undefined;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    if (opts.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      for (const name of DROPPED_DEFAULT_METRICS) this.registry.removeSingleMetric(name);
    }

    this.consumed = new Counter({
      name: 'qualm_messages_consumed_total',
      help: 'Messages read from the input topic.',
      labelNames: ['topic'] as const,
      registers,
    });
    this.scored = new Counter({ name: 'qualm_samples_scored_total', help: 'Samples embedded and scored.', registers });
    this.flagged = new Counter({
      name: 'qualm_samples_flagged_total',
      help: 'Samples flagged for review, by reason.',
      labelNames: ['reason'] as const,
      registers,
    });
    this.dlq = new Counter({
      name: 'qualm_dlq_messages_total',
      help: 'Messages sent to the dead-letter topic, by error code.',
      labelNames: ['code'] as const,
      registers,
    });
    this.batchSize = new Histogram({
      name: 'qualm_batch_size',
      help: 'Messages per consumed Kafka batch.',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000],
      registers,
    });
    this.stageSeconds = new Histogram({
      name: 'qualm_stage_duration_seconds',
      help: 'Time per batch spent in each stage of the pipeline.',
      labelNames: ['stage'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.uncertainty = new Histogram({
      name: 'qualm_uncertainty',
      help: 'Combined uncertainty of scored samples.',
      buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1],
      registers,
    });
    this.signal = new Histogram({
      name: 'qualm_signal',
      help: `Each scoring signal of scored samples, in [0, 1]: ${METRIC_SIGNALS.map((s) => s.label).join(', ')} (the label signals with labelled bundles, the Mahalanobis one with a fitted Gaussian).`,
      labelNames: ['signal'] as const,
      buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1],
      registers,
    });
    this.produceErrors = new Counter({
      name: 'qualm_produce_errors_total',
      help: 'Failed attempts to publish a batch of review, score or DLQ records (the batch is retried, not committed).',
      registers,
    });
    this.bundleInfo = new Gauge({
      name: 'qualm_bundle_info',
      help: 'The reference bundle being served (value 1), by version and model.',
      labelNames: ['version', 'model_sha256'] as const,
      registers,
    });
    this.bundleReferences = new Gauge({
      name: 'qualm_bundle_references',
      help: 'Reference vectors in the served bundle.',
      registers,
      collect: () => {
        if (this.bundle !== undefined) this.bundleReferences.set(this.bundle.count);
      },
    });
    this.bundleAge = new Gauge({
      name: 'qualm_bundle_age_seconds',
      help: 'Seconds since the served bundle was built.',
      registers,
      collect: () => {
        if (this.bundle !== undefined) this.bundleAge.set(Math.max(0, (Date.now() - this.bundle.createdAt) / 1000));
      },
    });
    this.bundleRefresh = new Counter({
      name: 'qualm_bundle_refresh_total',
      help: 'Bundle refresh attempts that found a new version, by outcome (swapped, refused, error).',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.bundleLoadSeconds = new Histogram({
      name: 'qualm_bundle_load_seconds',
      help: 'Time to load and verify a new bundle before it is swapped in.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.consumerLag = new Gauge({
      name: 'qualm_consumer_lag_messages',
      help: 'Messages behind the partition high watermark after the last committed batch.',
      labelNames: ['topic', 'partition'] as const,
      registers,
    });
    this.driftWindowSamples = new Gauge({
      name: 'qualm_drift_window_samples',
      help: 'Scored samples in the sliding window the stream drift gauges summarise.',
      registers,
      collect: () => {
        if (this.drift !== undefined) this.driftWindowSamples.set(this.drift.stream().samples);
      },
    });
    this.driftOodRatio = new Gauge({
      name: 'qualm_drift_ood_ratio',
      help: 'Share of samples at or beyond the out-of-distribution density percentile: source="stream" over the sliding window, source="reference" for the references themselves.',
      labelNames: ['source'] as const,
      registers,
      collect: () => {
        if (this.drift === undefined) return;
        this.driftOodRatio.set({ source: 'stream' }, this.drift.stream().oodRatio);
        const ref = this.drift.reference();
        if (ref !== undefined) this.driftOodRatio.set({ source: 'reference' }, ref.oodRatio);
      },
    });
    this.driftUncertainty = new Gauge({
      name: 'qualm_drift_uncertainty',
      help: 'Uncertainty quantiles: source="stream" over the sliding window, source="reference" for the references themselves.',
      labelNames: ['source', 'q'] as const,
      registers,
      collect: () => {
        if (this.drift === undefined) return;
        this.driftUncertainty.reset();
        const views: [string, DriftView | undefined][] = [
          ['stream', this.drift.stream()],
          ['reference', this.drift.reference()],
        ];
        for (const [source, view] of views) {
          if (view === undefined) continue;
          for (const [q, value] of Object.entries(view.uncertainty)) {
            if (value !== undefined) this.driftUncertainty.set({ source, q }, value);
          }
        }
      },
    });
    this.inFlight = new Gauge({ name: 'qualm_pipeline_in_flight_messages', help: 'Messages consumed and not yet committed: being decoded, embedded, scored or published (at most QUALM_MAX_IN_FLIGHT).', registers });
    this.kafkaUp = new Gauge({ name: 'qualm_kafka_up', help: '1 while the consumer hears from Kafka (fetches, heartbeats), 0 after a session timeout without an answer.', registers });
    this.ready = new Gauge({ name: 'qualm_ready', help: '1 when the worker is consuming with a loaded bundle, else 0.', registers });
    this.ready.set(0);
    // A labelled series that first appears at 1 shows no increase() in Prometheus: start at 0.
    for (const outcome of REFRESH_OUTCOMES) this.bundleRefresh.inc({ outcome }, 0);
  }

  /**
   * Exports the flag-reason and DLQ-code series at 0 before the first sample needs them, so
   * that rate() and increase() see the first flag and the first dead letter.
   */
  primeLabels(opts: { flagReasons: readonly string[]; dlqCodes: readonly string[] }): void {
    for (const reason of opts.flagReasons) this.flagged.inc({ reason }, 0);
    for (const code of opts.dlqCodes) this.dlq.inc({ code }, 0);
  }

  /** Points the bundle gauges at a newly served bundle. */
  setBundle(view: BundleView): void {
    this.bundleInfo.reset();
    this.bundleInfo.set({ version: view.version, model_sha256: view.modelSha256 }, 1);
    this.bundle = view;
  }

  /** Points the drift gauges at the stream window and the reference baseline. */
  setDrift(source: DriftSource): void {
    this.drift = source;
  }

  /** Starts a stage timer; call the returned function when the stage ends. */
  time(stage: Stage): () => number {
    return this.stageSeconds.startTimer({ stage });
  }
}
