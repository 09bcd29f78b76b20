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

export interface ServerConfig {
  readonly port: number;
  readonly controllerPort: number;
  readonly logDirs: string;
}

/** server.properties for a single combined broker+controller node on loopback. */
export function renderServerProperties(cfg: ServerConfig): string {
  const lines: Array<[string, string | number | boolean]> = [
    ['process.roles', 'broker,controller'],
    ['node.id', 1],
    ['controller.quorum.voters', `1@127.0.0.1:${cfg.controllerPort}`],
    ['listeners', `PLAINTEXT://127.0.0.1:${cfg.port},CONTROLLER://127.0.0.1:${cfg.controllerPort}`],
    ['advertised.listeners', `PLAINTEXT://127.0.0.1:${cfg.port}`],
    ['listener.security.protocol.map', 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT'],
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
