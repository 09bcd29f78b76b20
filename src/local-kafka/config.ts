import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/** File layout of a broker's data dir. */
export interface BrokerPaths {
  readonly dataDir: string;
  readonly serverProperties: string;
  readonly log4jProperties: string;
  /** Where log4j writes the broker's own log (server.log). */
  readonly brokerLog: string;
  /** KRaft metadata log + topic partitions. */
  readonly logDirs: string;
}

export function brokerPaths(dataDir: string): BrokerPaths {
  return {
    dataDir,
    serverProperties: join(dataDir, 'server.properties'),
    log4jProperties: join(dataDir, 'log4j.properties'),
    brokerLog: join(dataDir, 'logs', 'server.log'),
    logDirs: join(dataDir, 'kraft-logs'),
  };
}

/**
 * A KRaft cluster id: 16 random bytes as 22 chars of unpadded base64url.
 * Like Kafka's own Uuid.randomUuid(), never one starting with '-', which the
 * storage tool's argument parser would read as an option.
 */
export function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Java .properties value escaping for the few characters a path may hold. */
function prop(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A user name and password a SASL listener accepts. */
export interface SaslUser {
  readonly name: string;
  readonly password: string;
}

/**
 * The secured listeners of a test broker, beside its PLAINTEXT one (which the harness, the
 * inter-broker traffic and tests' own clients keep using) and the plaintext controller:
 * SASL_SSL with SCRAM-SHA-512, SASL_SSL with PLAIN, and SSL that requires a client certificate.
 */
export interface SecuredListeners {
  readonly scramPort: number;
  readonly plainPort: number;
  readonly mtlsPort: number;
  /** PEM file: the broker's PKCS#8 key then its certificate. */
  readonly keystore: string;
  /** PEM file: the CA that client certificates must chain to (the mTLS listener). */
  readonly truststore: string;
  /** Users of the PLAIN listener (SCRAM users are written into the storage by the format step). */
  readonly plainUsers: readonly SaslUser[];
}

export interface ServerConfig {
  readonly port: number;
  readonly controllerPort: number;
  readonly logDirs: string;
  readonly secured?: SecuredListeners;
}

/** A JAAS option value in double quotes. */
function jaasString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A JAAS option name: user_<name> must stay one token. */
function jaasUserName(name: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`local-kafka: PLAIN user name ${JSON.stringify(name)} must match [A-Za-z0-9._-]+`);
  return name;
}

function securedLines(s: SecuredListeners): Array<[string, string | number | boolean]> {
  const users = s.plainUsers.map((u) => `user_${jaasUserName(u.name)}=${jaasString(u.password)}`).join(' ');
  return [
    ['ssl.keystore.type', 'PEM'],
    ['ssl.keystore.location', prop(s.keystore)],
    ['ssl.truststore.type', 'PEM'],
    ['ssl.truststore.location', prop(s.truststore)],
    ['listener.name.scram_ssl.sasl.enabled.mechanisms', 'SCRAM-SHA-512'],
    ['listener.name.scram_ssl.scram-sha-512.sasl.jaas.config', 'org.apache.kafka.common.security.scram.ScramLoginModule required;'],
    ['listener.name.plain_ssl.sasl.enabled.mechanisms', 'PLAIN'],
    ['listener.name.plain_ssl.plain.sasl.jaas.config', prop(`org.apache.kafka.common.security.plain.PlainLoginModule required ${users};`)],
    ['listener.name.mtls.ssl.client.auth', 'required'],
  ];
}

/** server.properties for a single combined broker+controller node on loopback. */
export function renderServerProperties(cfg: ServerConfig): string {
  const s = cfg.secured;
  const extra = s === undefined ? '' : `,SCRAM_SSL://127.0.0.1:${s.scramPort},PLAIN_SSL://127.0.0.1:${s.plainPort},MTLS://127.0.0.1:${s.mtlsPort}`;
  const extraMap = s === undefined ? '' : ',SCRAM_SSL:SASL_SSL,PLAIN_SSL:SASL_SSL,MTLS:SSL';
  const lines: Array<[string, string | number | boolean]> = [
    ['process.roles', 'broker,controller'],
    ['node.id', 1],
    ['controller.quorum.voters', `1@127.0.0.1:${cfg.controllerPort}`],
    ['listeners', `PLAINTEXT://127.0.0.1:${cfg.port},CONTROLLER://127.0.0.1:${cfg.controllerPort}${extra}`],
    ['advertised.listeners', `PLAINTEXT://127.0.0.1:${cfg.port}${extra}`],
    ['listener.security.protocol.map', `PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT${extraMap}`],
    ['controller.listener.names', 'CONTROLLER'],
    ['inter.broker.listener.name', 'PLAINTEXT'],
    ['log.dirs', prop(cfg.logDirs)],
    ['num.partitions', 1],
    ['auto.create.topics.enable', true],
    // Single node: every internal topic must make do with one replica.
    ['offsets.topic.replication.factor', 1],
    // 1 instead of 50: the first group join creates this topic; keep it quick.
    ['offsets.topic.num.partitions', 1],
    ['transaction.state.log.replication.factor', 1],
    ['transaction.state.log.min.isr', 1],
    ['transaction.state.log.num.partitions', 1],
    ['group.initial.rebalance.delay.ms', 0],
    // Small, throw-away data: do not preallocate big segment indexes.
    ['log.segment.bytes', 16 * 1024 * 1024],
    ...(s === undefined ? [] : securedLines(s)),
  ];
  return `# written by qualm src/local-kafka\n${lines.map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
}

/** log4j 1.x (reload4j) config: everything to <dataDir>/logs/server.log, nothing to stdout. */
export function renderLog4jProperties(brokerLog: string): string {
  return [
    '# written by qualm src/local-kafka',
    'log4j.rootLogger=INFO, file',
    'log4j.appender.file=org.apache.log4j.FileAppender',
    `log4j.appender.file.File=${prop(brokerLog)}`,
    'log4j.appender.file.Append=true',
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.org.apache.kafka.clients.NetworkClient=WARN',
    '',
  ].join('\n');
}
