// Workers on several machines follow one HTTP bundle store: two `qualm worker` processes in
// one consumer group, each with its own cache directory, a static HTTP server over a bundle
// directory, and a real Kafka broker.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Kafka, Message } from 'kafkajs';
import { sampleMix } from '../../src/cli/sample-mix.js';
import { loadConfig } from '../../src/config/index.js';
import type { ScoreRecord } from '../../src/contracts/index.js';
import { SLICE_FASHION_MNIST_DIR, loadFashionMnist, loadMnist } from '../../src/datasets/index.js';
import { startLocalKafka, type LocalKafka } from '../../src/local-kafka/index.js';
import { buildSliceBundle, embedSlice, publishCorruptBundle, type SliceRefs } from '../helpers/bundles.js';
import { StaticStore } from '../helpers/http-store.js';
import { TopicReader, createTopics, produce, testKafka, uniqueWorkerTopics, waitFor, workerTopicEnv } from '../helpers/kafka.js';
import { WorkerProcess } from '../helpers/worker-process.js';

const CONFIG = loadConfig(process.env);
const root = mkdtempSync(join(tmpdir(), 'qualm-it-store-'));
const storeDir = join(root, 'store');
let broker: LocalKafka;
let kafka: Kafka;
let server: StaticStore;
let refs: SliceRefs;
const workers: WorkerProcess[] = [];
const readers: TopicReader[] = [];

before(async () => {
  broker = await startLocalKafka();
  kafka = testKafka(broker.brokers);
  refs = await embedSlice(CONFIG.modelPath);
  server = await StaticStore.start(storeDir);
});

after(async () => {
  for (const r of readers) await r.stop().catch(() => undefined);
  for (const w of workers) await w.stop('SIGKILL').catch(() => undefined);
  await server?.close();
  await broker?.stop();
  rmSync(root, { recursive: true, force: true });
});

function messages(n: number, prefix: string): Message[] {
  const mix = sampleMix(loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]), loadMnist(), { oodShare: 0.3, malformedShare: 0, seed: 5, oversizeBytes: 0, idPrefix: prefix });
  return Array.from({ length: n }, () => {
    const m = mix.next().value as { key: string | null; value: string };
    return { key: m.key, value: m.value };
  });
}

/** The partitions of `topic` the worker holds, from its latest group_join log line. */
function assignment(w: WorkerProcess, topic: string): number[] {
  const joins = w
    .log()
    .split('\n')
    .filter((l) => l.includes('"event":"group_join"'))
    .map((l) => JSON.parse(l) as { assignment?: Record<string, number[]> });
  return joins.at(-1)?.assignment?.[topic] ?? [];
}

const refusedOnce = /^qualm_bundle_refresh_total\{outcome="refused"\} 1$/m;

test('two workers follow one HTTP store: both switch to a new version mid-stream and refuse a corrupted one; nothing lost or duplicated', { timeout: 300_000 }, async () => {
  const t = uniqueWorkerTopics();
  await createTopics(kafka, [t.input], 2);
  await createTopics(kafka, [t.review, t.scores, t.dlq]);
  const v1 = await buildSliceBundle(refs, storeDir, 0, 3000, { densityWeight: CONFIG.densityWeight, version: 'v1' });
  const env = {
    ...workerTopicEnv(broker.brokers, t),
    QUALM_MODEL_PATH: CONFIG.modelPath,
    QUALM_BUNDLE_URL: server.url,
    QUALM_REFRESH_INTERVAL_MS: '200',
    QUALM_SESSION_TIMEOUT_MS: '10000',
    QUALM_HEARTBEAT_INTERVAL_MS: '1000',
  };
  const caches = [join(root, 'cache-a'), join(root, 'cache-b')];
  for (const cache of caches) workers.push(await WorkerProcess.start({ ...env, QUALM_BUNDLE_DIR: cache }));
  const [a, b] = workers as [WorkerProcess, WorkerProcess];
  // The group settles before the stream starts: one partition each.
  await waitFor(() => assignment(a, t.input).length === 1 && assignment(b, t.input).length === 1, 'one partition per worker', 60_000);
  for (const w of workers) assert.match(w.log(), new RegExp(`"event":"bundle_loaded","version":"${v1}".*"store":"${server.url}"`));

  const scores = await TopicReader.start(kafka, t.scores);
  readers.push(scores);
  const pool = messages(3000, 's');
  let sent = 0;
  let streaming = true;
  const stream = (async () => {
    while (streaming && sent < pool.length) {
      await produce(kafka, t.input, pool.slice(sent, sent + 40));
      sent += 40;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const records = (): ScoreRecord[] => scores.json<ScoreRecord>();
  const partitionsScoredBy = (v: string): Set<number> => new Set(records().filter((r) => r.index_version === v).map((r) => r.source.partition));
  await waitFor(() => partitionsScoredBy(v1).size === 2, 'both partitions scored by v1');

  // A new version on the store: both workers download, verify and switch to it.
  const v2 = await buildSliceBundle(refs, storeDir, 3000, 6000, { densityWeight: CONFIG.densityWeight, version: 'v2' });
  await waitFor(() => partitionsScoredBy(v2).size === 2, 'both partitions scored by v2', 90_000);
  for (const w of workers) {
    assert.match(await w.metrics(), new RegExp(`^qualm_bundle_info\\{version="${v2}",model_sha256="${refs.model.sha256}"\\} 1$`, 'm'));
    assert.match(w.log(), new RegExp(`"event":"bundle_downloaded","version":"${v2}"`));
  }

  // A corrupted version (a bad checksum) on the store: refused by both, v2 keeps serving.
  await publishCorruptBundle(refs, storeDir, join(root, 'staging'), 'v3', CONFIG.densityWeight);
  for (const w of workers) await waitFor(async () => refusedOnce.test(await w.metrics()), 'v3 refused');
  for (const w of workers) {
    assert.match(w.log(), /"event":"bundle_refused","version":"v3","reason":"[^"]*ids\.json checksum mismatch/);
    const metrics = await w.metrics();
    assert.match(metrics, /^qualm_bundle_refresh_total\{outcome="swapped"\} 1$/m);
    assert.match(metrics, new RegExp(`^qualm_bundle_info\\{version="${v2}",`, 'm'));
  }
  const sentBeforeV3 = sent;
  await waitFor(() => records().length >= sentBeforeV3, 'scores after the refusal');

  streaming = false;
  await stream;
  await scores.waitForCount(sent, `${sent} scores`, 120_000);
  const all = records();
  assert.equal(all.length, sent, 'every message scored exactly once');
  const sentIds = new Set(pool.slice(0, sent).map((m) => m.key));
  assert.deepEqual(new Set(all.map((r) => r.id)), sentIds);
  assert.equal(new Set(all.map((r) => `${r.source.partition}:${r.source.offset}`)).size, sent);
  // Per partition, in offset order, the version switches once from v1 to v2 and never to v3.
  for (const p of [0, 1]) {
    const versions = all
      .filter((r) => r.source.partition === p)
      .sort((x, y) => Number(x.source.offset) - Number(y.source.offset))
      .map((r) => r.index_version);
    const first = versions.indexOf(v2);
    assert.ok(first > 0, `partition ${p} switched`);
    assert.ok(versions.slice(0, first).every((v) => v === v1));
    assert.ok(versions.slice(first).every((v) => v === v2), `partition ${p} stays on v2`);
  }
  // Each worker's cache: the served version, named by its CURRENT; no partial downloads left.
  for (const cache of caches) assert.equal(readFileSync(join(cache, 'CURRENT'), 'utf8').trim(), v2);
  for (const w of workers) assert.deepEqual(await w.stop('SIGTERM'), { code: 0, signal: null });
});
