import { Kafka, logLevel, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { Config } from '../config/index.js';
import type { Logger } from '../logging/index.js';

function saslOptions(c: Config): SASLOptions | undefined {
  if (c.kafkaSaslMechanism === undefined || c.kafkaSaslUsername === undefined || c.kafkaSaslPassword === undefined) return undefined;
  return { mechanism: c.kafkaSaslMechanism, username: c.kafkaSaslUsername, password: c.kafkaSaslPassword };
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

/** The kafkajs client from configuration; SSL and SASL are passed straight through. */
export function createKafka(c: Config, logger: Logger, clientSuffix = ''): Kafka {
  const sasl = saslOptions(c);
  const cfg: KafkaConfig = {
    clientId: c.kafkaClientId + clientSuffix,
    brokers: c.kafkaBrokers,
    ssl: c.kafkaSsl,
    logLevel: logLevel.WARN,
    logCreator: logCreator(logger.child({ area: 'kafkajs' })),
    retry: { retries: 8, initialRetryTime: 300 },
  };
  if (sasl !== undefined) cfg.sasl = sasl;
  return new Kafka(cfg);
}
