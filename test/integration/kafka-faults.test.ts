// Kafka going away under a running worker: a broker restart mid-stream, and SIGTERM in the
// phases where Kafka can hold the worker up (joining a group that waits on a stuck member,
// draining while the broker is gone). A real broker of its own (this file stops it), the
// committed ONNX encoder, a real HNSW bundle, `qualm worker` as a child process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Consumer, Kafka } from 'kafkajs';
import { sampleMix } from '../../src/cli/sample-mix.js';
import { loadConfig } from '../../src/config/index.js';
import { readDlqHeaders, type ScoreRecord } from '../../src/contracts/index.js';
import { SLICE_FASHION_MNIST_DIR, loadFashionMnist, loadMnist } from '../../src/datasets/index.js';
import { startLocalKafka, type LocalKafka } from '../../src/local-kafka/index.js';
import { freeLoopbackPort } from '../../src/util/ports.js';
import { TopicReader, createTopics, produce, testKafka, uniqueWorkerTopics, waitFor, workerTopicEnv } from '../helpers/kafka.js';
import { buildSliceBundle, embedSlice } from '../helpers/bundles.js';
import { WorkerProcess } from '../helpers/worker-process.js';

const CONFIG = loadConfig(process.env);
const bundleDir = mkdtempSync(join(tmpdir(), 'qualm-shutdown-bundle-'));
const dataDir = mkdtempSync(join(tmpdir(), 'qualm-shutdown-kafka-'));
let port: number;
let broker: LocalKafka | undefined;
let kafka: Kafka;
const cleanups: (() => Promise<unknown>)[] = [];

before(async () => {
  port = await freeLoopbackPort();
  broker = await startLocalKafka({ dataDir, port });
  kafka = testKafka(broker.brokers);
  const refs = await embedSlice(CONFIG.modelPath);
  await buildSliceBundle(refs, bundleDir, 0, refs.count, { densityWeight: CONFIG.densityWeight, model: refs.model });
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await broker?.stop();
  rmSync(bundleDir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

function messages(n: number, prefix: string, malformedShare = 0): { key: string | null; value: string }[] {
  const mix = sampleMix(loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]), loadMnist(), { oodShare: 0.2, malformedShare, seed: 5, oversizeBytes: 0, idPrefix: prefix });
  return Array.from({ length: n }, () => {
    const m = mix.next().value as { key: string | null; value: string };
    return { key: m.key, value: m.value };
  });
}

test('SIGTERM while joining a group that waits on a stuck member: the worker exits within QUALM_SHUTDOWN_TIMEOUT_MS, not after the rebalance timeout', { timeout: 120_000 }, async () => {
  assert.ok(broker !== undefined);
  const t = uniqueWorkerTopics();
  await createTopics(kafka, [t.input, t.review, t.scores, t.dlq]);
  await produce(kafka, t.input, messages(20, 'j'));
  // A member of the worker's group whose handler never returns: it cannot rejoin, so the
  // coordinator holds every new member's join for up to its rebalance timeout (60 s).
  const stuck: Consumer = kafka.consumer({ groupId: t.group, sessionTimeout: 60_000, rebalanceTimeout: 60_000, heartbeatInterval: 1000 });
  // Released before it disconnects: kafkajs's disconnect waits for a running handler.
  let release: (() => void) | undefined;
  const released = new Promise<void>((r) => (release = r));
  cleanups.push(async () => {
    release?.();
    await stuck.disconnect();
  });
  let holding = false;
  await stuck.connect();
  await stuck.subscribe({ topics: [t.input], fromBeginning: true });
  await stuck.run({
    eachMessage: async () => {
      holding = true;
      await released;
    },
  });
  await waitFor(() => holding, 'the stuck member holds a message');

  const metricsPort = await freeLoopbackPort();
  const child = spawn(process.execPath, ['bin/qualm.js', 'worker'], {
    env: {
      ...process.env,
      ...workerTopicEnv(broker.brokers, t),
      QUALM_BUNDLE_DIR: bundleDir,
      QUALM_MODEL_PATH: CONFIG.modelPath,
      QUALM_METRICS_HOST: '127.0.0.1',
      QUALM_METRICS_PORT: String(metricsPort),
      QUALM_SHUTDOWN_TIMEOUT_MS: '3000',
      QUALM_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.push(() => Promise.resolve(child.kill('SIGKILL')));
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (log += d.toString('utf8')));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  await waitFor(async () => (await fetch(`http://127.0.0.1:${metricsPort}/healthz`).then((r) => r.status).catch(() => 0)) === 200, 'the worker health server');
  // Let it get into the join the coordinator holds.
  await new Promise((r) => setTimeout(r, 4000));
  assert.equal(await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then((r) => r.status), 503, 'not ready while it waits to join');
  assert.doesNotMatch(log, /"event":"group_join"/, 'it has not joined: the stuck member holds the group');
  const t0 = Date.now();
  child.kill('SIGTERM');
  const code = await exited;
  const ms = Date.now() - t0;
  // The shutdown timeout (3 s) plus the process's own teardown; the join alone would last up to 60 s.
  assert.ok(ms < 20_000, `exited ${ms} ms after SIGTERM:\n${log.slice(-2000)}`);
  assert.ok(code === 0 || code === 1, `exit code ${code}`);
  assert.match(log, /"event":"exit".*"phase":"starting"/);
  release?.();
  await stuck.disconnect();
});

test('SIGTERM while draining with the broker gone: the worker exits within QUALM_SHUTDOWN_TIMEOUT_MS with exit 1, and once the broker is back a successor scores every input', { timeout: 300_000 }, async () => {
  assert.ok(broker !== undefined);
  const t = uniqueWorkerTopics();
  await createTopics(kafka, [t.input, t.review, t.scores, t.dlq]);
  const n = 3000;
  await produce(kafka, t.input, messages(n, 'd'));
  const env = { ...workerTopicEnv(broker.brokers, t), QUALM_BUNDLE_DIR: bundleDir, QUALM_MODEL_PATH: CONFIG.modelPath, QUALM_SHUTDOWN_TIMEOUT_MS: '3000', QUALM_INFERENCE_BATCH: '64' };
  const scores = await TopicReader.start(kafka, t.scores);
  const w = await WorkerProcess.start(env);
  cleanups.push(() => w.stop('SIGKILL'));
  await scores.waitForCount(300, 'first scores', 120_000);
  await scores.stop();
  // The broker goes away with jobs in flight; the worker is told to stop while it cannot publish or commit.
  await broker.stop();
  broker = undefined;
  const t0 = Date.now();
  const res = await w.stop('SIGTERM', 30_000);
  const ms = Date.now() - t0;
  assert.equal(res.code, 1, `a drain that timed out exits 1:\n${w.log().slice(-2000)}`);
  assert.ok(ms < 20_000, `exited ${ms} ms after SIGTERM`);
  assert.match(w.log(), /"event":"drain_timeout"/);

  broker = await startLocalKafka({ dataDir, port });
  kafka = testKafka(broker.brokers);
  const all = await TopicReader.start(kafka, t.scores);
  cleanups.push(() => all.stop());
  const next = await WorkerProcess.start({ ...env, ...workerTopicEnv(broker.brokers, t) });
  cleanups.push(() => next.stop('SIGKILL'));
  await waitFor(() => new Set(all.json<ScoreRecord>().map((r) => r.id)).size === n, `all ${n} inputs scored after the restart`, 180_000);
  await next.stop('SIGTERM');
});

test('the broker restarted mid-stream under exactly_once: the same worker stays up (/healthz ok, /readyz not ready while it is away), resumes, and a read_committed reader sees every input exactly once', { timeout: 300_000 }, async () => {
  assert.ok(broker !== undefined);
  const t = uniqueWorkerTopics();
  await createTopics(kafka, [t.input, t.review, t.scores, t.dlq]);
  const n = 4000;
  await produce(kafka, t.input, messages(n, 'r', 0.02));
  const w = await WorkerProcess.start({
    ...workerTopicEnv(broker.brokers, t),
    QUALM_BUNDLE_DIR: bundleDir,
    QUALM_MODEL_PATH: CONFIG.modelPath,
    QUALM_DELIVERY: 'exactly_once',
    QUALM_INFERENCE_BATCH: '64',
  });
  cleanups.push(() => w.stop('SIGKILL'));
  const early = await TopicReader.start(kafka, t.scores);
  await early.waitForCount(300, 'first scores', 120_000);
  await early.stop();

  await broker.stop();
  broker = undefined;
  const during: { health: number; ready: number }[] = [];
  for (let i = 0; i < 12; i++) {
    during.push({ health: await w.get('/healthz').catch(() => 0), ready: await w.get('/readyz').catch(() => 0) });
    await new Promise((r) => setTimeout(r, 1000));
  }
  assert.ok(
    during.every((d) => d.health === 200),
    `the worker stays alive while the broker is away (exit ${String(w.child.exitCode)}):\n${w.log().slice(-4000)}`,
  );
  assert.ok(
    during.some((d) => d.ready === 503),
    '/readyz says not ready while the broker is away',
  );
  assert.equal(w.child.exitCode, null);

  broker = await startLocalKafka({ dataDir, port });
  kafka = testKafka(broker.brokers);
  const scores = await TopicReader.start(kafka, t.scores);
  const dlq = await TopicReader.start(kafka, t.dlq);
  cleanups.push(
    () => scores.stop(),
    () => dlq.stop(),
  );
  await waitFor(() => scores.messages.length + dlq.messages.length >= n, `all ${n} inputs done by the same worker`, 180_000).catch((err: unknown) => {
    const done = scores.messages.length + dlq.messages.length;
    throw new Error(`${err instanceof Error ? err.message : String(err)} (${done} done; worker exit ${String(w.child.exitCode)}); its last log lines:\n${w.log().slice(-6000)}`);
  });
  await waitFor(async () => (await w.get('/readyz').catch(() => 0)) === 200, 'ready again');
  await new Promise((r) => setTimeout(r, 2000));
  const offsets = [
    ...scores.json<ScoreRecord>().map((r) => Number(r.source.offset)),
    ...dlq.messages.map((m) => Number(readDlqHeaders(m.headers)?.source.offset)),
  ];
  const seen = new Map<number, number>();
  for (const o of offsets) seen.set(o, (seen.get(o) ?? 0) + 1);
  const twice = [...seen].filter(([, c]) => c > 1).map(([o]) => o);
  assert.equal(offsets.length, n, `no input twice (${twice.length} twice, offsets ${twice[0]}..${twice[twice.length - 1]}); the worker's last log lines:\n${w.log().slice(-8000)}`);
  assert.deepEqual(new Set(offsets), new Set(Array.from({ length: n }, (_, i) => i)), 'every input once');
  assert.match(w.log(), /"event":"kafka_down"/);
  assert.match(w.log(), /"event":"kafka_up"/);
  await w.stop('SIGTERM');
});
