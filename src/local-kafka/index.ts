/**
 * A real, throw-away Apache Kafka broker (KRaft, single node, loopback) for
 * tests and the demo. See docs/kafka.md.
 *
 *   const kafka = await startLocalKafka();
 *   // ... new Kafka({ brokers: kafka.brokers }) ...
 *   await kafka.stop();
 */
export { KAFKA_VERSION } from './version.js';
export { ensureKafkaJars } from './jars.js';
export { startLocalKafka } from './broker.js';
export type { LocalKafka, LocalKafkaOptions, SecuredEndpoints } from './broker.js';
export type { SaslUser } from './config.js';
export type { TestPki } from './tls.js';
