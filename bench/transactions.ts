// npm run bench:transactions [-- --records 256 --rounds 40]
//
// What one exactly-once transaction costs against a plain acked publish of the same records,
// on the real broker, through qualm's transport: a transaction of --records records of about
// 800 bytes plus the consumed offset (sendOffsets), committed, --rounds times after a warm-up;
// then as many plain idempotent acks=all publishes. Last line:
// {"transaction_ms":t,"publish_ms":p,"ratio":t/p,"records":n}
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/index.js';
import { startLocalKafka } from '../src/local-kafka/index.js';
import { createLogger } from '../src/logging/index.js';
import { KafkajsTransport } from '../src/transport/index.js';

const { values: args } = parseArgs({ options: { records: { type: 'string', default: '256' }, rounds: { type: 'string', default: '40' } } });
const N = Number(args.records);
const ROUNDS = Number(args.rounds);
const broker = await startLocalKafka({ log: () => undefined });
try {
  const transport = KafkajsTransport.fromConfig({ ...loadConfig({}), kafkaBrokers: broker.brokers }, createLogger('silent'), '-bench');
  await transport.ensureTopics(['bench-in', 'bench-out']);
  const records = Array.from({ length: N }, (_, i) => ({ key: `k${i}`, value: 'x'.repeat(800) }));
  const tx = transport.partitionTransactions({ groupId: 'bench', idPrefix: 'bench', transactionTimeoutMs: 10_000 });
  let offset = 0;
  const transaction = (): Promise<void> => tx.commit({ records: [{ topic: 'bench-out', records }], input: { topic: 'bench-in', partition: 0, offset: String(++offset) } });
  const publisher = transport.publisher();
  await publisher.connect();
  const publish = (): Promise<void> => publisher.publish([{ topic: 'bench-out', records }]);
  const timed = async (f: () => Promise<void>): Promise<number> => {
    for (let i = 0; i < 5; i++) await f(); // warm-up: connections, producer ids, coordinators
    const t0 = performance.now();
    for (let i = 0; i < ROUNDS; i++) await f();
    return (performance.now() - t0) / ROUNDS;
  };
  const txMs = await timed(transaction);
  const pubMs = await timed(publish);
  process.stderr.write(`${N} records: a transaction ${txMs.toFixed(1)} ms, a plain acked publish ${pubMs.toFixed(1)} ms\n`);
  await publisher.close();
  await tx.close();
  console.log(JSON.stringify({ transaction_ms: Math.round(txMs * 10) / 10, publish_ms: Math.round(pubMs * 10) / 10, ratio: Math.round((txMs / pubMs) * 100) / 100, records: N }));
} finally {
  await broker.stop();
}
