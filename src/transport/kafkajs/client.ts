import type { ConnectionOptions } from 'node:tls';
import { Kafka, logLevel, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import { OPTIONS, saslPasswordKey, tlsMaterial, type Config } from '../../config/index.js';
import { ConfigError, ErrorCodes, type ConfigProblem } from '../../errors.js';
import type { Logger } from '../../logging/index.js';

/**
 * A producer's own retries: few and at most 2 s apart, so that a send stuck on a broker that
 * is away fails soon and the worker's job retry (with its own backoff) takes over, and a send
 * in flight when the broker returns goes through within seconds (kafkajs's default grows to 30 s).
 */
export const PRODUCER_RETRY = { retries: 5, initialRetryTime: 300, maxRetryTime: 2000 };

/**
 * A transactional producer's retries start at 20 ms: right after a commit the broker answers
 * the next transaction's AddPartitionsToTxn with CONCURRENT_TRANSACTIONS until the last
 * one's markers are written (a few ms), and a 300 ms first retry cost about 200 ms per
 * transaction (npm run bench:transactions: 211 ms a transaction of 256 records against 8.6 ms for a plain acked publish; 38 ms with these retries; a 5 ms start gained nothing).
 * More retries, so that the total still reaches past a couple of seconds.
 */
export const TRANSACTIONAL_PRODUCER_RETRY = { retries: 10, initialRetryTime: 20, maxRetryTime: 2000 };

function saslOptions(c: Config): SASLOptions | undefined {
  if (c.kafkaSaslMechanism === undefined || c.kafkaSaslUsername === undefined || c.kafkaSaslPassword === undefined) return undefined;
  return { mechanism: c.kafkaSaslMechanism, username: c.kafkaSaslUsername, password: c.kafkaSaslPassword };
}

/** kafkajs's `ssl`: off, the system's CAs, or the KAFKA_SSL_* files (read now, verbatim). */
function sslOptions(c: Config): ConnectionOptions | boolean {
  if (!c.kafkaSsl) return false;
  const tls = tlsMaterial(c);
  return Object.keys(tls).length === 0 ? true : { ...tls, rejectUnauthorized: true };
}

/** kafkajs log entries go through pino, at the matching level. */
function logCreator(logger: Logger) {
  return () =>
    ({ level, log }: LogEntry) => {
      const { message, ...extra } = log;
      const fields = { kafkajs: extra };
      if (level === logLevel.ERROR) logger.error(fields, message);
      else if (level === logLevel.WARN) logger.warn(fields, message);
      else if (level === logLevel.INFO) logger.info(fields, message);
      else logger.debug(fields, message);
    };
}

/** Node's codes for a broker certificate that the client does not trust. */
const UNTRUSTED_BROKER = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'INVALID_CA',
]);

/** TLS alerts by which a broker refuses the client's certificate, or its absence. */
const CLIENT_CERT_REFUSED = new Set([
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
]);

interface ErrorFacts {
  name?: string;
  code?: string;
  type?: string;
  message: string;
}

/** The error and its causes (kafkajs wraps the socket's error once per retrier). */
function errorChain(err: unknown): ErrorFacts[] {
  const out: ErrorFacts[] = [];
  let cur: unknown = err;
  for (let depth = 0; depth < 8 && typeof cur === 'object' && cur !== null; depth++) {
    const e = cur as { name?: unknown; code?: unknown; type?: unknown; message?: unknown; cause?: unknown; originalError?: unknown };
    const facts: ErrorFacts = { message: typeof e.message === 'string' ? e.message : '' };
    if (typeof e.name === 'string') facts.name = e.name;
    if (typeof e.code === 'string') facts.code = e.code;
    if (typeof e.type === 'string') facts.type = e.type;
    out.push(facts);
    cur = e.cause ?? e.originalError;
  }
  return out;
}

/** What a refused connection means for the configuration, and the code it carries. */
export interface AccessProblem {
  readonly problem: ConfigProblem;
  readonly code: typeof ErrorCodes.KAFKA_AUTH_FAILED | typeof ErrorCodes.KAFKA_TLS_FAILED;
}

/**
 * The setting to blame when a first connection fails for a reason of security (wrong
 * credentials, an untrusted broker certificate, a refused client certificate), with a message
 * that never holds a secret; undefined for anything else (a broker that is down, a timeout),
 * which the caller's own retries handle.
 */
export function kafkaAccessProblem(err: unknown, c: Config): AccessProblem | undefined {
  const chain = errorChain(err);
  const broker = c.kafkaBrokers.join(',');
  const mechanism = c.kafkaSaslMechanism?.toUpperCase() ?? 'SASL';
  if (chain.some((e) => e.name === 'KafkaJSSASLAuthenticationError')) {
    const key = saslPasswordKey(c);
    const lineBreak = c.kafkaSaslPasswordFile !== undefined && /\r?\n$/.test(c.kafkaSaslPassword ?? '');
    return {
      code: ErrorCodes.KAFKA_AUTH_FAILED,
      problem: {
        key,
        message:
          `authentication failed for user ${c.kafkaSaslUsername ?? '?'} (${mechanism}) at ${broker}` +
          (lineBreak ? `; note that ${c.kafkaSaslPasswordFile ?? ''} ends with a line break, which is used as part of the password` : ''),
      },
    };
  }
  if (chain.some((e) => e.type === 'UNSUPPORTED_SASL_MECHANISM')) {
    return { code: ErrorCodes.KAFKA_AUTH_FAILED, problem: { key: OPTIONS.kafkaSaslMechanism.env, message: `the broker at ${broker} does not accept ${mechanism} on this listener` } };
  }
  if (!c.kafkaSsl) return undefined;
  const tls = chain.find((e) => e.code !== undefined && (UNTRUSTED_BROKER.has(e.code) || CLIENT_CERT_REFUSED.has(e.code) || e.code === 'ERR_TLS_CERT_ALTNAME_INVALID'));
  if (tls?.code === undefined) return undefined;
  // OpenSSL's text ("80FC...:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:...") is cut to its reason.
  const text = (tls.message.split('\n')[0] ?? '').replace(/^Connection error: /, '');
  const detail = `${tls.code}: ${/SSL routines:[^:]*:([^:]+)/.exec(text)?.[1] ?? text}`;
  if (tls.code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return { code: ErrorCodes.KAFKA_TLS_FAILED, problem: { key: OPTIONS.kafkaBrokers.env, message: `the broker's certificate does not name the host of ${broker} (${detail})` } };
  }
  if (UNTRUSTED_BROKER.has(tls.code)) {
    const key = c.kafkaSslCaFile === undefined ? OPTIONS.kafkaSsl.env : OPTIONS.kafkaSslCaFile.env;
    const by = c.kafkaSslCaFile === undefined ? `the system's CAs (set ${OPTIONS.kafkaSslCaFile.env} to the CA that signed it)` : c.kafkaSslCaFile;
    return { code: ErrorCodes.KAFKA_TLS_FAILED, problem: { key, message: `the broker's certificate is not trusted by ${by} (${detail})` } };
  }
  const problem: ConfigProblem =
    c.kafkaSslCertFile === undefined
      ? { key: OPTIONS.kafkaSslCertFile.env, message: `the broker at ${broker} requires a client certificate (mutual TLS); set ${OPTIONS.kafkaSslCertFile.env} and ${OPTIONS.kafkaSslKeyFile.env} (${detail})` }
      : { key: OPTIONS.kafkaSslCertFile.env, message: `the broker at ${broker} refused the client certificate ${c.kafkaSslCertFile} (${detail})` };
  return { code: ErrorCodes.KAFKA_TLS_FAILED, problem };
}

/** How long the first connection of a client may take to show a security failure. */
const ACCESS_CHECK_TIMEOUT_MS = 10_000;

/**
 * One connection attempt, without retries, before a client's first connect: a wrong password,
 * an untrusted certificate or a refused client certificate stops the start at once with a
 * ConfigError naming the setting (kafkajs would retry the TLS failures for a minute or more).
 * Any other failure is left to the client's own connect and its retries.
 */
class AccessCheck {
  private passed = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly c: Config,
    private readonly cfg: KafkaConfig,
  ) {}

  check(): Promise<void> {
    if (this.passed) return Promise.resolve();
    this.running ??= this.attempt().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async attempt(): Promise<void> {
    const probe = new Kafka({
      ...this.cfg,
      clientId: `${this.cfg.clientId ?? 'qualm'}-access-check`,
      logLevel: logLevel.NOTHING,
      connectionTimeout: ACCESS_CHECK_TIMEOUT_MS,
      authenticationTimeout: ACCESS_CHECK_TIMEOUT_MS,
      retry: { retries: 0 },
    }).admin({ retry: { retries: 0 } });
    try {
      await probe.connect();
      this.passed = true;
    } catch (err) {
      const found = kafkaAccessProblem(err, this.c);
      if (found !== undefined) throw new ConfigError([found.problem], found.code);
    } finally {
      await probe.disconnect().catch(() => undefined);
    }
  }
}

/**
 * The kafkajs client from configuration: TLS from KAFKA_SSL and its files, SASL from
 * KAFKA_SASL_*. The first connect() of any producer, consumer or admin made from it checks
 * access once (see AccessCheck), so a security failure is a clear, immediate start failure.
 */
export function createKafka(c: Config, logger: Logger, clientSuffix = ''): Kafka {
  const sasl = saslOptions(c);
  const cfg: KafkaConfig = {
    clientId: c.kafkaClientId + clientSuffix,
    brokers: c.kafkaBrokers,
    ssl: sslOptions(c),
    logLevel: logLevel.WARN,
    logCreator: logCreator(logger.child({ area: 'kafkajs' })),
    retry: { retries: 8, initialRetryTime: 300 },
  };
  if (sasl !== undefined) cfg.sasl = sasl;
  const kafka = new Kafka(cfg);
  if (!c.kafkaSsl && sasl === undefined) return kafka;
  const access = new AccessCheck(c, cfg);
  const gated = <T extends { connect(): Promise<void> }>(client: T): T => {
    const connect = client.connect.bind(client);
    client.connect = async () => {
      await access.check();
      await connect();
    };
    return client;
  };
  const producer = kafka.producer.bind(kafka);
  const consumer = kafka.consumer.bind(kafka);
  const admin = kafka.admin.bind(kafka);
  kafka.producer = (opts) => gated(producer(opts));
  kafka.consumer = (opts) => gated(consumer(opts));
  kafka.admin = (opts) => gated(admin(opts));
  return kafka;
}
