/**
 * The Apache Kafka broker version the local harness runs.
 *
 * Pinned to the 3.9 line on purpose: see docs/kafka.md. Keep in step with
 * tools/kafka/pom.xml (<kafka.version>) and scripts/kafka.sh (PINNED_VERSION).
 */
export const KAFKA_VERSION = '3.9.2';
