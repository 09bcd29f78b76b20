// npm run bench:faults [-- --rate 200 --outage-s 15]
//
// How quickly the worker gets going again after the two faults a Kafka deployment sees most,
// on the real broker, with the worker's default settings (QUALM_SESSION_TIMEOUT_MS,
// QUALM_HEARTBEAT_INTERVAL_MS, the client's retry schedule):
//
//   1. Broker restart: one worker scores a steady stream (--rate msg/s); the broker is stopped
//      for --outage-s and started again on the same port and data. recovery_after_broker_s is
//      the time from the broker answering again to the first score record the worker writes
//      after it (the score record's own timestamp, so the reader's reconnection is not counted).
//      The worker must stay up throughout: /healthz answers, /readyz says not ready while the
//      broker is away.
//   2. Member crash: two workers share a 2-partition input; one is killed with SIGKILL.
//      idle_after_member_crash_s is the longest time, over both partitions, from the kill to
//      that partition's next score record.
//
//   3. Exactly-once (QUALM_DELIVERY=exactly_once): --eos-n preloaded inputs drained once with
//      each delivery mode (eos_throughput_ratio = exactly-once msg/s / at-least-once msg/s, from
//      the first to the last score record's timestamp); then a worker killed with SIGKILL
//      --eos-kills times mid-stream and a last one finishing, read back with read_committed:
//      duplicates_eos counts inputs with more than one score record (must be 0).
//
// lost counts inputs acknowledged by the broker that never got a score record (at-least-once:
// must be 0); duplicates counts extra score records (allowed under at-least-once).
// Last line: {"recovery_after_broker_s":r,"idle_after_member_crash_s":i,"lost":l,"duplicates":d,"duplicates_eos":e,"eos_throughput_ratio":q,...}
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { KafkaMessage, Message } from 'kafkajs';
import { loadConfig } from '../src/config/index.js';
import { loadFashionMnist, row } from '../src/datasets/index.js';
import { startLocalKafka, type LocalKafka } from '../src/local-kafka/index.js';
import { freeLoopbackPort } from '../src/util/ports.js';
import { TopicReader, createTopics, produce, testKafka, uniqueWorkerTopics, waitFor, workerTopicEnv } from '../test/helpers/kafka.js';
import { WorkerProcess } from '../test/helpers/worker-process.js';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '200' },
    'outage-s': { type: 'string', default: '15' },
    'eos-n': { type: 'string', default: '20000' },
    'eos-kills': { type: 'string', default: '3' },
  },
});
const RATE = Number(args.rate);
const OUTAGE_S = Number(args['outage-s']);
const config = loadConfig(process.env);
const log = (msg: string): void => void process.stderr.write(`${msg}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

const images = loadFashionMnist('t10k');
const valueOf = (i: number, id: string): string => JSON.stringify({ id, input: { features: Array.from(row(images, i % images.n), (v) => Number(v.toFixed(4))) } });
const workerEnv = (brokers: string[], t: ReturnType<typeof uniqueWorkerTopics>): Record<string, string> => ({
  ...workerTopicEnv(brokers, t),
  QUALM_LOG_LEVEL: 'info',
  QUALM_BUNDLE_DIR: config.bundleDir,
  QUALM_MODEL_PATH: config.modelPath,
  QUALM_REFRESH_INTERVAL_MS: '0',
});

/**
 * Sends --rate messages per second until stopped, each with a fresh id; failed sends (the
 * broker away) are retried, so `acked` holds every id the broker acknowledged.
 */
class SteadyStream {
  readonly acked = new Set<string>();
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(brokers: string[], topic: string, prefix: string) {
    const producer = testKafka(brokers).producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 } });
    this.done = (async () => {
      await producer.connect();
      const started = Date.now();
      let sent = 0;
      let pending: Message[] = [];
      while (!this.stopped) {
        const due = Math.floor(((Date.now() - started) / 1000) * RATE);
        for (; sent < due; sent++) pending.push({ key: `${prefix}-${sent}`, value: valueOf(sent, `${prefix}-${sent}`) });
        if (pending.length > 0) {
          try {
            await producer.send({ topic, messages: pending.slice(0, 500), acks: -1 });
            for (const m of pending.slice(0, 500)) this.acked.add(String(m.key));
            pending = pending.slice(500);
          } catch {
            await sleep(200); // the broker is away; the same messages go again
          }
        }
        await sleep(20);
      }
      await producer.disconnect().catch(() => undefined);
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

function scoreStats(acked: ReadonlySet<string>, scores: readonly KafkaMessage[]): { lost: number; duplicates: number } {
  const seen = new Map<string, number>();
  for (const m of scores) {
    const id = m.key?.toString('utf8') ?? '';
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  let lost = 0;
  for (const id of acked) if (!seen.has(id)) lost++;
  let duplicates = 0;
  for (const c of seen.values()) duplicates += c - 1;
  return { lost, duplicates };
}

async function readyz(w: WorkerProcess): Promise<{ health: number; ready: number }> {
  return { health: await w.get('/healthz').catch(() => 0), ready: await w.get('/readyz').catch(() => 0) };
}

// --- 1. broker restart ---------------------------------------------------------------------------
const dataDir = mkdtempSync(join(tmpdir(), 'qualm-faults-'));
const port = await freeLoopbackPort();
let kafka: LocalKafka = await startLocalKafka({ dataDir, port, log: () => undefined });
const t1 = uniqueWorkerTopics();
await createTopics(testKafka(kafka.brokers), [t1.input, t1.review, t1.scores, t1.dlq]);
const w1 = await WorkerProcess.start(workerEnv(kafka.brokers, t1));
process.on('exit', () => w1.child.kill('SIGKILL'));
const stream1 = new SteadyStream(kafka.brokers, t1.input, 'b');
await sleep(5000);
log(`broker restart: stopping the broker for ${OUTAGE_S} s`);
await kafka.stop();
const during: { health: number; ready: number }[] = [];
const outageEnd = Date.now() + OUTAGE_S * 1000;
while (Date.now() < outageEnd) {
  during.push(await readyz(w1));
  await sleep(1000);
}
kafka = await startLocalKafka({ dataDir, port, log: () => undefined });
const back = Date.now();
log(`broker restart: the broker answers again`);
// One marker per 250 ms from a fresh producer: the first one scored says when the worker is back.
const markers = testKafka(kafka.brokers).producer({ idempotent: true, maxInFlightRequests: 1 });
await markers.connect();
const markerAcked = new Set<string>();
for (let i = 0; i < 120; i++) {
  const id = `marker-${i}`;
  await markers.send({ topic: t1.input, messages: [{ key: id, value: valueOf(i, id) }], acks: -1 });
  markerAcked.add(id);
  await sleep(250);
}
await markers.disconnect();
for (const id of markerAcked) stream1.acked.add(id);
const readyAfter = await readyz(w1);
await stream1.stop();
const reader1 = await TopicReader.start(testKafka(kafka.brokers), t1.scores);
await waitFor(() => scoreStats(stream1.acked, reader1.messages).lost === 0, 'every acknowledged input scored', 120_000).catch(() => undefined);
const after = reader1.messages.filter((m) => m.key?.toString('utf8').startsWith('marker-') === true).map((m) => Number(m.timestamp));
const recovery = after.length === 0 ? null : (Math.min(...after) - back) / 1000;
const s1 = scoreStats(stream1.acked, reader1.messages);
const alive = w1.child.exitCode === null;
const healthyThroughout = during.every((d) => d.health === 200);
const notReadyAtSomePoint = during.some((d) => d.ready !== 200) && readyAfter.ready === 200;
const stateEvents = w1
  .log()
  .split('\n')
  .filter((l) => /"event":"(consumer_crash|kafka_down|kafka_up|group_join|batch_failed)"|"level":50/.test(l));
const stateLines = stateEvents.length;
for (const l of stateEvents) {
  const e = JSON.parse(l) as { time: string; event?: string; msg?: string; error?: string };
  log(`  ${((Date.parse(e.time) - back) / 1000).toFixed(1)} s after the broker was back: ${e.event ?? ''} ${(e.msg ?? '').slice(0, 120)} ${(e.error ?? '').slice(0, 120)}`);
}
log(`broker restart: recovery ${recovery} s after the broker was back; worker alive ${alive}, /healthz ok throughout ${healthyThroughout}, /readyz not ready during the outage and ready after ${notReadyAtSomePoint}; lost ${s1.lost}, duplicates ${s1.duplicates}; ${stateLines} state log lines`);
await reader1.stop();
await w1.stop('SIGTERM');

// --- 2. member crash -------------------------------------------------------------------------------
const t2 = uniqueWorkerTopics();
const admin = testKafka(kafka.brokers);
await createTopics(admin, [t2.input], 2);
await createTopics(admin, [t2.review, t2.scores, t2.dlq]);
const a = await WorkerProcess.start(workerEnv(kafka.brokers, t2));
const b = await WorkerProcess.start(workerEnv(kafka.brokers, t2));
process.on('exit', () => {
  a.child.kill('SIGKILL');
  b.child.kill('SIGKILL');
});
const stream2 = new SteadyStream(kafka.brokers, t2.input, 'c');
const reader2 = await TopicReader.start(testKafka(kafka.brokers), t2.scores);
// Both members own a partition once both partitions are being scored.
await waitFor(() => new Set(reader2.json<{ source: { partition: number } }>().map((r) => r.source.partition)).size === 2, 'both partitions scored', 120_000);
await sleep(5000);
const killedAt = Date.now();
await b.stop('SIGKILL');
log('member crash: one of two workers killed');
await sleep(30_000);
await stream2.stop();
await waitFor(() => scoreStats(stream2.acked, reader2.messages).lost === 0, 'every acknowledged input scored', 120_000).catch(() => undefined);
let idle = 0;
for (const p of [0, 1]) {
  const next = reader2.messages
    .filter((m) => (JSON.parse(m.value?.toString('utf8') ?? '{}') as { source: { partition: number } }).source.partition === p)
    .map((m) => Number(m.timestamp))
    .filter((t) => t >= killedAt);
  idle = Math.max(idle, next.length === 0 ? Infinity : (Math.min(...next) - killedAt) / 1000);
}
const s2 = scoreStats(stream2.acked, reader2.messages);
log(`member crash: longest idle partition ${idle} s after the kill; lost ${s2.lost}, duplicates ${s2.duplicates}`);
await reader2.stop();
await a.stop('SIGTERM');

// --- 3. exactly-once: throughput cost, and duplicates under kill -9 ----------------------------------
const EOS_N = Number(args['eos-n']);
const EOS_KILLS = Number(args['eos-kills']);
function preload(topic: string, n: number, prefix: string): Promise<void> {
  return produce(
    testKafka(kafka.brokers),
    topic,
    Array.from({ length: n }, (_, i) => ({ key: `${prefix}-${i}`, value: valueOf(i, `${prefix}-${i}`) })),
  );
}
/** Drains n preloaded inputs with one worker; msg/s between the first and the last score record's timestamps. */
async function drainRate(delivery: string): Promise<number> {
  const t = uniqueWorkerTopics();
  await createTopics(testKafka(kafka.brokers), [t.input, t.review, t.scores, t.dlq]);
  await preload(t.input, EOS_N, delivery);
  const r = await TopicReader.start(testKafka(kafka.brokers), t.scores);
  const w = await WorkerProcess.start({ ...workerEnv(kafka.brokers, t), QUALM_DELIVERY: delivery });
  await waitFor(() => r.messages.length >= EOS_N, `${delivery}: ${EOS_N} scores`, 600_000);
  await w.stop('SIGTERM');
  await r.stop();
  const ts = r.messages.map((m) => Number(m.timestamp));
  const rate = (EOS_N - 1) / ((Math.max(...ts) - Math.min(...ts)) / 1000);
  log(`${delivery}: ${EOS_N} inputs drained at ${Math.round(rate)} msg/s`);
  return rate;
}
const aloRate = await drainRate('at_least_once');
const eosRate = await drainRate('exactly_once');

const t3 = uniqueWorkerTopics();
await createTopics(testKafka(kafka.brokers), [t3.input, t3.review, t3.scores, t3.dlq]);
const killN = 6000;
await preload(t3.input, killN, 'x');
const reader3 = await TopicReader.start(testKafka(kafka.brokers), t3.scores);
const raw3 = await TopicReader.start(testKafka(kafka.brokers), t3.scores, { readUncommitted: true });
const eosEnv = { ...workerEnv(kafka.brokers, t3), QUALM_DELIVERY: 'exactly_once', QUALM_INFERENCE_BATCH: '64' };
for (let i = 0; i < EOS_KILLS; i++) {
  const w = await WorkerProcess.start(eosEnv);
  const from = reader3.messages.length;
  await waitFor(() => reader3.messages.length >= from + 500, `eos kill ${i + 1}`, 120_000);
  await w.stop('SIGKILL');
}
const w3 = await WorkerProcess.start(eosEnv);
await waitFor(() => new Set(reader3.messages.map((m) => m.key?.toString('utf8'))).size >= killN, `all ${killN} scored`, 300_000);
await sleep(2000);
await w3.stop('SIGTERM');
const s3 = scoreStats(new Set(Array.from({ length: killN }, (_, i) => `x-${i}`)), reader3.messages);
const aborted3 = raw3.messages.length - reader3.messages.length;
log(`exactly-once under ${EOS_KILLS} kill -9s: lost ${s3.lost}, duplicates ${s3.duplicates} (read_committed); ${aborted3} records of aborted transactions (read_uncommitted)`);
await reader3.stop();
await raw3.stop();
await kafka.stop();
rmSync(dataDir, { recursive: true, force: true });

console.log(
  JSON.stringify({
    recovery_after_broker_s: recovery === null ? null : round(recovery),
    idle_after_member_crash_s: Number.isFinite(idle) ? round(idle) : null,
    lost: s1.lost + s2.lost + s3.lost,
    duplicates: s1.duplicates + s2.duplicates,
    duplicates_eos: s3.duplicates,
    eos_aborted_records: aborted3,
    eos_throughput_ratio: round(eosRate / aloRate, 3),
    alo_msg_per_s: Math.round(aloRate),
    eos_msg_per_s: Math.round(eosRate),
    worker_survived_outage: alive && healthyThroughout,
    readyz_followed_kafka: notReadyAtSomePoint,
  }),
);
process.exit(0);
