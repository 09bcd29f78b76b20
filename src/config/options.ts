import { z } from 'zod';

/**
 * Every option qualm reads, with its environment variable, default, unit and meaning.
 * This table is the single source for validation, the README's configuration table and
 * `qualm --help`. A config file (QUALM_CONFIG_FILE, JSON) may set the same names;
 * environment variables win over the file.
 */
export interface OptionSpec {
  /** Environment variable (and config-file key). */
  readonly env: string;
  /** Default as the user would write it; undefined means "unset". */
  readonly default: string | undefined;
  /** Unit or form of the value, for the docs. */
  readonly unit: string;
  readonly description: string;
  /** Schema applied to the raw string. */
  readonly schema: z.ZodType;
  /** A credential: error messages never show its value. */
  readonly secret?: boolean;
}

const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'expected an integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const num = (min: number, max: number) =>
  z
    .string()
    .trim()
    .refine((s) => s !== '' && Number.isFinite(Number(s)), 'expected a number')
    .transform(Number)
    .pipe(z.number().min(min).max(max));

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine((s) => ['true', 'false', '1', '0', 'yes', 'no'].includes(s), 'expected true or false')
  .transform((s) => s === 'true' || s === '1' || s === 'yes');

const nonEmpty = z.string().trim().min(1, 'must not be empty');
/** A credential is used verbatim: spaces, leading or trailing, are part of it. */
const verbatim = z.string().min(1, 'must not be empty');
/** A file path is used as written too (a mounted secret's path is exact). */
const filePath = z.string().min(1, 'must not be empty');
const topic = nonEmpty.regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name ([A-Za-z0-9._-], at most 249 characters)');
const optional = <T extends z.ZodType>(schema: T) => z.union([z.literal('').transform(() => undefined), schema]);

const httpUrl = z
  .string()
  .trim()
  .refine((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
    } catch {
      return false;
    }
  }, 'expected an http:// or https:// URL');

const hostPort = z
  .string()
  .trim()
  .regex(/^[^\s:,]+:\d{1,5}$/, 'expected host:port');

export const OPTIONS = {
  kafkaBrokers: {
    env: 'KAFKA_BROKERS',
    default: '127.0.0.1:9092',
    unit: 'host:port list',
    description: 'Comma-separated bootstrap brokers.',
    schema: z
      .string()
      .transform((s) => s.split(',').map((b) => b.trim()).filter((b) => b !== ''))
      .pipe(z.array(hostPort).min(1, 'expected at least one host:port')),
  },
  kafkaClientId: {
    env: 'KAFKA_CLIENT_ID',
    default: 'qualm',
    unit: 'string',
    description: 'Kafka client id.',
    schema: nonEmpty,
  },
  kafkaSsl: {
    env: 'KAFKA_SSL',
    default: 'false',
    unit: 'boolean',
    description: 'Connect to the brokers with TLS. The broker\'s certificate is checked against the system\'s CAs, or against KAFKA_SSL_CA_FILE, and must name the host of KAFKA_BROKERS.',
    schema: bool,
  },
  kafkaSslCaFile: {
    env: 'KAFKA_SSL_CA_FILE',
    default: undefined,
    unit: 'path (PEM)',
    description: 'CA certificate(s) the broker\'s certificate must chain to, instead of the system\'s CAs (needs KAFKA_SSL=true).',
    schema: optional(filePath),
  },
  kafkaSslCertFile: {
    env: 'KAFKA_SSL_CERT_FILE',
    default: undefined,
    unit: 'path (PEM)',
    description: 'Client certificate for mutual TLS (with KAFKA_SSL_KEY_FILE; needs KAFKA_SSL=true).',
    schema: optional(filePath),
  },
  kafkaSslKeyFile: {
    env: 'KAFKA_SSL_KEY_FILE',
    default: undefined,
    unit: 'path (PEM)',
    description: 'Private key of KAFKA_SSL_CERT_FILE (PKCS#8, PKCS#1 or SEC1; encrypted ones need KAFKA_SSL_KEY_PASSPHRASE_FILE).',
    schema: optional(filePath),
  },
  kafkaSslKeyPassphraseFile: {
    env: 'KAFKA_SSL_KEY_PASSPHRASE_FILE',
    default: undefined,
    unit: 'path',
    description: 'File whose whole content, verbatim, is the passphrase of an encrypted KAFKA_SSL_KEY_FILE.',
    schema: optional(filePath),
  },
  kafkaSaslMechanism: {
    env: 'KAFKA_SASL_MECHANISM',
    default: undefined,
    unit: 'plain | scram-sha-256 | scram-sha-512',
    description: 'SASL mechanism; unset disables SASL.',
    schema: optional(z.enum(['plain', 'scram-sha-256', 'scram-sha-512'])),
  },
  kafkaSaslUsername: {
    env: 'KAFKA_SASL_USERNAME',
    default: undefined,
    unit: 'string',
    description: 'SASL user name (required with KAFKA_SASL_MECHANISM), used verbatim.',
    schema: optional(verbatim),
  },
  kafkaSaslPassword: {
    env: 'KAFKA_SASL_PASSWORD',
    default: undefined,
    unit: 'string',
    description: 'SASL password, used verbatim (spaces included) and never logged; this or KAFKA_SASL_PASSWORD_FILE is required with KAFKA_SASL_MECHANISM.',
    schema: optional(verbatim),
    secret: true,
  },
  kafkaSaslPasswordFile: {
    env: 'KAFKA_SASL_PASSWORD_FILE',
    default: undefined,
    unit: 'path',
    description: 'File whose whole content, verbatim (a final line break too), is the SASL password: a mounted Kubernetes secret. Not together with KAFKA_SASL_PASSWORD.',
    schema: optional(filePath),
  },
  inputTopic: {
    env: 'QUALM_INPUT_TOPIC',
    default: 'qualm.samples',
    unit: 'topic',
    description: 'Topic the worker consumes samples from.',
    schema: topic,
  },
  reviewTopic: {
    env: 'QUALM_REVIEW_TOPIC',
    default: 'qualm.review',
    unit: 'topic',
    description: 'Topic that receives a review record for every flagged sample.',
    schema: topic,
  },
  scoresTopic: {
    env: 'QUALM_SCORES_TOPIC',
    default: undefined,
    unit: 'topic',
    description: 'Topic that receives a score record for every sample; unset disables it.',
    schema: optional(topic),
  },
  dlqTopic: {
    env: 'QUALM_DLQ_TOPIC',
    default: 'qualm.dlq',
    unit: 'topic',
    description: 'Dead-letter topic for messages that cannot be scored.',
    schema: topic,
  },
  labelsTopic: {
    env: 'QUALM_LABELS_TOPIC',
    default: 'qualm.labels',
    unit: 'topic',
    description: 'Topic of reviewers\' label records ({id, label, reviewer, reviewed_at}); build-index --labels folds them, joined with their review records, into the next bundle.',
    schema: topic,
  },
  inputFormat: {
    env: 'QUALM_INPUT_FORMAT',
    default: 'json',
    unit: 'json | image',
    description:
      'How the worker reads an input message without a qualm-input-format header: json, the sample object ({id, input, meta}); or image, the whole value is one PNG, JPEG or WebP image and the Kafka key is its id (image models only). A qualm-input-format header (json or image) overrides it per message.',
    schema: z.enum(['json', 'image']),
  },
  groupId: {
    env: 'QUALM_GROUP_ID',
    default: 'qualm-worker',
    unit: 'string',
    description: 'Consumer group id shared by all workers of one deployment.',
    schema: nonEmpty,
  },
  delivery: {
    env: 'QUALM_DELIVERY',
    default: 'at_least_once',
    unit: 'at_least_once | exactly_once',
    description:
      "at_least_once: records are acknowledged, then the offsets committed; a crash re-processes at most the uncommitted jobs. exactly_once: each job's review, score and DLQ records and its consumed offsets are committed in one Kafka transaction (a transactional producer per input partition); readers of those topics must use isolation.level=read_committed.",
    schema: z.enum(['at_least_once', 'exactly_once']),
  },
  transactionalIdPrefix: {
    env: 'QUALM_TRANSACTIONAL_ID_PREFIX',
    default: 'qualm',
    unit: 'string',
    description:
      'With QUALM_DELIVERY=exactly_once: transactional ids are PREFIX-GROUP-TOPIC-PARTITION (QUALM_GROUP_ID, the input topic and partition), one per input partition, so that whichever worker owns a partition fences the one that owned it before. With ACLs, grant the worker a prefixed TransactionalId ACL on PREFIX-GROUP-.',
    schema: nonEmpty,
  },
  transactionTimeoutMs: {
    env: 'QUALM_TRANSACTION_TIMEOUT_MS',
    default: '60000',
    unit: 'ms',
    description:
      "With QUALM_DELIVERY=exactly_once: the broker aborts a transaction left open this long (a worker that died mid-job, if no successor takes its partition sooner). read_committed readers of the output topics wait at most this long behind it. Must not exceed the broker's transaction.max.timeout.ms (15 min by default).",
    schema: int(1000, 900000),
  },
  fromBeginning: {
    env: 'QUALM_FROM_BEGINNING',
    default: 'true',
    unit: 'boolean',
    description: 'Where a new consumer group starts: the earliest offset (true) or the latest (false).',
    schema: bool,
  },
  modelPath: {
    env: 'QUALM_MODEL_PATH',
    default: 'models/fmnist-simclr.onnx',
    unit: 'path',
    description: 'ONNX encoder; its manifest is the same path with .json instead of .onnx.',
    schema: nonEmpty,
  },
  bundleDir: {
    env: 'QUALM_BUNDLE_DIR',
    default: 'var/bundles',
    unit: 'path',
    description: 'Directory holding reference bundle versions and the CURRENT pointer; with QUALM_BUNDLE_URL set, the local cache of the versions downloaded from there.',
    schema: nonEmpty,
  },
  bundleUrl: {
    env: 'QUALM_BUNDLE_URL',
    default: undefined,
    unit: 'http(s) URL',
    description: 'Base URL of an HTTP bundle store (any static server or object store that serves CURRENT and the version directories under it, as a bundle directory holds them); workers follow its pointer and download versions into QUALM_BUNDLE_DIR. Unset: QUALM_BUNDLE_DIR is the store.',
    schema: optional(httpUrl),
  },
  bundleDownloadTimeoutMs: {
    env: 'QUALM_BUNDLE_DOWNLOAD_TIMEOUT_MS',
    default: '30000',
    unit: 'ms',
    description: 'A request to QUALM_BUNDLE_URL that receives no data for this long is aborted and retried (with backoff, resuming where it stopped).',
    schema: int(100, 3_600_000),
  },
  bundleRetain: {
    env: 'QUALM_BUNDLE_RETAIN',
    default: '5',
    unit: 'versions',
    description: 'build-index keeps this many newest bundle versions (and always the one CURRENT names) and deletes older ones; a worker following QUALM_BUNDLE_URL keeps as many in its cache (and always the one it serves).',
    schema: int(1, 1000),
  },
  refreshIntervalMs: {
    env: 'QUALM_REFRESH_INTERVAL_MS',
    default: '30000',
    unit: 'ms',
    description: 'How often the worker checks the bundle pointer (QUALM_BUNDLE_URL/CURRENT, or QUALM_BUNDLE_DIR/CURRENT) for a new bundle (plus up to 20% jitter); 0 disables refresh.',
    schema: int(0, 86_400_000),
  },
  k: {
    env: 'QUALM_K',
    default: '20',
    unit: 'count',
    description: 'Nearest references per query. build-index stores it in the bundle (with the matching leave-one-out statistics); workers use the bundle\'s value.',
    schema: int(1, 1000),
  },
  efSearch: {
    env: 'QUALM_EF_SEARCH',
    default: '100',
    unit: 'count',
    description: 'HNSW ef at query time (recall vs speed); must be at least QUALM_K.',
    schema: int(1, 10000),
  },
  densityWeight: {
    env: 'QUALM_DENSITY_WEIGHT',
    default: '0.9',
    unit: 'ratio [0,1]',
    description: 'Weight of the density signal in the combined score; the rest goes to label disagreement. build-index stores it (with the calibration computed for it) in the bundle; workers use the bundle\'s value.',
    schema: num(0, 1),
  },
  oodPercentile: {
    env: 'QUALM_OOD_PERCENTILE',
    default: '0.99',
    unit: 'ratio [0,1]',
    description:
      'Out-of-distribution percentile of the references from which the out-of-distribution rule flags, a flag reads out_of_distribution, and the drift metrics count a sample as out of distribution: with a fitted Gaussian the larger of the kNN density and the class-conditional Mahalanobis percentiles, squared (each measure flags at its square root, so in-distribution traffic is flagged at about 1 - this), else the kNN density percentile.',
    schema: num(0, 1),
  },
  flagPolicy: {
    env: 'QUALM_FLAG_POLICY',
    default: 'threshold',
    unit: 'threshold | target_rate | min_predicted_accuracy',
    description:
      'How samples are flagged: a fixed uncertainty threshold; the top share of a sliding window; or a predicted accuracy below QUALM_MIN_PREDICTED_ACCURACY (bundles without a fitted combination fall back to the threshold).',
    schema: z.enum(['threshold', 'target_rate', 'min_predicted_accuracy']),
  },
  minPredictedAccuracy: {
    env: 'QUALM_MIN_PREDICTED_ACCURACY',
    default: '0.5',
    unit: 'ratio (0,1]',
    description: 'Under the min_predicted_accuracy policy, samples whose predicted downstream accuracy is below this are flagged.',
    schema: num(0, 1).refine((v) => v > 0, 'must be above 0'),
  },
  oodRule: {
    env: 'QUALM_OOD_RULE',
    default: 'true',
    unit: 'true | false',
    description:
      'Also flag, whatever the policy, every sample at or beyond QUALM_OOD_PERCENTILE of the references (reason out_of_distribution, rule beyond_references). QUALM_OOD_PERCENTILE=1 makes it literally beyond every reference.',
    schema: bool,
  },
  flagThreshold: {
    env: 'QUALM_FLAG_THRESHOLD',
    default: '0.9',
    unit: 'ratio [0,1]',
    description: 'Uncertainty at or above which a sample is flagged (threshold policy, and target_rate warm-up). Uncertainty is calibrated on the training references, so on in-distribution traffic about 1 - threshold of the samples are flagged.',
    schema: num(0, 1),
  },
  targetFlagRate: {
    env: 'QUALM_TARGET_FLAG_RATE',
    default: '0.1',
    unit: 'ratio (0,1)',
    description: 'Share of samples to flag under the target_rate policy.',
    schema: num(0, 1),
  },
  shiftWindow: {
    env: 'QUALM_SHIFT_WINDOW',
    default: '200',
    unit: 'samples (0: off)',
    description:
      'Stream-level shift rule: while the mean out-of-distribution percentile of the last this-many samples is above 0.75 (and above 1/2 + 5/sqrt(12 n), which in-distribution traffic does not reach), every sample is flagged (reason distribution_shift, rule shifted_window). Catches shifts no single sample shows (images rotated by 90 degrees land among dense classes); a stream of one sparse class alone could trip it too.',
    schema: int(0, 1_000_000).refine((v) => v === 0 || v >= 2, 'must be 0 (off) or at least 2'),
  },
  rateWindow: {
    env: 'QUALM_RATE_WINDOW',
    default: '2000',
    unit: 'samples',
    description: 'Sliding window length of the target_rate policy.',
    schema: int(10, 1_000_000),
  },
  driftWindow: {
    env: 'QUALM_DRIFT_WINDOW',
    default: '1000',
    unit: 'samples',
    description: 'Scored samples in the sliding window behind the drift gauges (qualm_drift_ood_ratio, qualm_drift_uncertainty), which compare the recent stream with the references themselves.',
    schema: int(10, 1_000_000),
  },
  maxMessageBytes: {
    env: 'QUALM_MAX_MESSAGE_BYTES',
    default: '262144',
    unit: 'bytes',
    description: 'Larger message values go to the DLQ as oversize (keep it below the broker\'s message.max.bytes).',
    schema: int(64, 100 * 1024 * 1024),
  },
  maxMetaDepth: {
    env: 'QUALM_MAX_META_DEPTH',
    default: '32',
    unit: 'levels',
    description: 'Samples whose meta is nested deeper than this go to the DLQ as QUALM_META_TOO_DEEP (meta itself is level 1); records copy meta, and a deeply nested one cannot be written as JSON.',
    schema: int(1, 1000),
  },
  maxMetaBytes: {
    env: 'QUALM_MAX_META_BYTES',
    default: '16384',
    unit: 'bytes',
    description: 'Samples whose meta is larger than this as JSON go to the DLQ as QUALM_META_TOO_LARGE (every review and score record copies meta).',
    schema: int(2, 100 * 1024 * 1024),
  },
  maxDlqBytes: {
    env: 'QUALM_MAX_DLQ_BYTES',
    default: '524288',
    unit: 'bytes',
    description: "Largest DLQ record (key, value and headers): a longer copy of the failed message's value is cut to fit, with a qualm-dlq-truncated header giving its original length (keep it below the DLQ topic's max.message.bytes).",
    schema: int(1024, 100 * 1024 * 1024),
  },
  inferenceBatch: {
    env: 'QUALM_INFERENCE_BATCH',
    default: '256',
    unit: 'samples',
    description: 'Largest ONNX batch; a Kafka batch is split into runs of at most this size, with a heartbeat between runs.',
    schema: int(1, 65536),
  },
  maxInFlight: {
    env: 'QUALM_MAX_IN_FLIGHT',
    default: '1024',
    unit: 'messages',
    description: 'Messages the worker holds between consuming and committing: its pipeline decodes and embeds the next batch while earlier ones are scored and published. Bounds memory (about 2 × the message size each) and the work redone after a crash.',
    schema: int(1, 1_000_000),
  },
  intraOpThreads: {
    env: 'QUALM_INTRA_OP_THREADS',
    default: '1',
    unit: 'threads',
    description: 'onnxruntime intra-op threads. 1 measured best on 2 cores, where a second one spins while the search and main threads need the CPU (docs/benchmarks.md); measure again on more cores.',
    schema: int(1, 256),
  },
  sessionTimeoutMs: {
    env: 'QUALM_SESSION_TIMEOUT_MS',
    default: '8000',
    unit: 'ms',
    description: "Consumer group session timeout: a member that has not heartbeated for this long is dropped and its partitions go to the others (a crashed worker's partitions sit idle about this long). Heartbeats come from the main thread, which never runs ONNX or kNN search, so they keep flowing at saturation; raise it on a machine that can stall for seconds.",
    schema: int(6000, 300000),
  },
  heartbeatIntervalMs: {
    env: 'QUALM_HEARTBEAT_INTERVAL_MS',
    default: '1000',
    unit: 'ms',
    description: 'Consumer heartbeat interval; at most a third of the session timeout.',
    schema: int(100, 100000),
  },
  shutdownTimeoutMs: {
    env: 'QUALM_SHUTDOWN_TIMEOUT_MS',
    default: '30000',
    unit: 'ms',
    description: 'How long SIGTERM/SIGINT may take to finish and commit the in-flight batch before the worker exits anyway (exit 1; the batch is then re-delivered). Keep it below the orchestrator\'s grace period.',
    schema: int(1000, 600000),
  },
  metricsHost: {
    env: 'QUALM_METRICS_HOST',
    default: '0.0.0.0',
    unit: 'address',
    description: 'Address the /metrics, /healthz and /readyz server binds.',
    schema: nonEmpty,
  },
  metricsPort: {
    env: 'QUALM_METRICS_PORT',
    default: '9464',
    unit: 'port',
    description: 'Port of the metrics server; 0 picks a free port.',
    schema: int(0, 65535),
  },
  logLevel: {
    env: 'QUALM_LOG_LEVEL',
    default: 'info',
    unit: 'fatal | error | warn | info | debug | trace | silent',
    description: 'Log level of the JSON logs on stdout.',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

/** The file that may hold option values; read from the environment only. */
export const CONFIG_FILE_ENV = 'QUALM_CONFIG_FILE';

/** Every environment variable qualm reads: each option's, and CONFIG_FILE_ENV. */
export const SETTING_ENV_NAMES: ReadonlySet<string> = new Set([...Object.values(OPTIONS).map((o) => o.env), CONFIG_FILE_ENV]);
