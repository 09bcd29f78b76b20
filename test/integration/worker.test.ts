// The worker end to end: a real Kafka broker, the committed ONNX encoder, a real HNSW
// bundle, and `qualm worker` as a child process.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Kafka, Message } from 'kafkajs';
import { sampleMix } from '../../src/cli/sample-mix.js';
import { loadConfig } from '../../src/config/index.js';
import { readDlqHeaders, type ReviewRecord, type ScoreRecord } from '../../src/contracts/index.js';
import { SLICE_FASHION_MNIST_DIR, loadFashionMnist, loadMnist } from '../../src/datasets/index.js';
import { startLocalKafka, type LocalKafka } from '../../src/local-kafka/index.js';
import { TopicReader, committedOffset, createTopics, produce, testKafka, uniqueWorkerTopics, waitFor, workerTopicEnv, type WorkerTopics } from '../helpers/kafka.js';
import { buildSliceBundle, embedSlice, publishCorruptBundle, type SliceRefs } from '../helpers/bundles.js';
import { WorkerProcess } from '../helpers/worker-process.js';
import { writeTinyModel } from '../helpers/tiny-onnx.js';
import { seededRandom } from '../../src/util/random.js';
import { freeLoopbackPort } from '../../src/util/ports.js';

const CONFIG = loadConfig(process.env);
const MODEL = CONFIG.modelPath;
const bundleDir = mkdtempSync(join(tmpdir(), 'qualm-it-bundle-'));
let broker: LocalKafka;
let kafka: Kafka;
const workers: WorkerProcess[] = [];
const readers: TopicReader[] = [];

/** The slice's training images embedded by the committed encoder, for building bundles. */
let refs: SliceRefs;

/** Builds a real bundle over references [from, to) of the slice into `dir` (moving its pointer). */
function buildSlice(dir: string, from: number, to: number, version?: string, model = refs.model): Promise<string> {
  return buildSliceBundle(refs, dir, from, to, { densityWeight: CONFIG.densityWeight, model, ...(version === undefined ? {} : { version }) });
}

before(async () => {
  broker = await startLocalKafka();
  console.log(`kafka broker ${broker.version} on ${broker.brokers.join(',')}`);
  kafka = testKafka(broker.brokers);
  // A real bundle: the committed encoder over the 6000 Fashion-MNIST training images of the slice.
  refs = await embedSlice(MODEL);
  await buildSlice(bundleDir, 0, refs.count);
});

after(async () => {
  for (const r of readers) await r.stop().catch(() => undefined);
  for (const w of workers) await w.stop('SIGKILL').catch(() => undefined);
  await broker?.stop();
  rmSync(bundleDir, { recursive: true, force: true });
});

async function setup(): Promise<{ t: WorkerTopics; env: Record<string, string> }> {
  const t = uniqueWorkerTopics();
  await createTopics(kafka, [t.input, t.review, t.scores, t.dlq]);
  return {
    t,
    env: {
      ...workerTopicEnv(broker.brokers, t),
      QUALM_BUNDLE_DIR: bundleDir,
      QUALM_MODEL_PATH: MODEL,
      QUALM_SESSION_TIMEOUT_MS: '10000',
      QUALM_HEARTBEAT_INTERVAL_MS: '1000',
    },
  };
}

async function startWorker(env: Record<string, string>): Promise<WorkerProcess> {
  const w = await WorkerProcess.start(env);
  workers.push(w);
  return w;
}

async function reader(topic: string): Promise<TopicReader> {
  const r = await TopicReader.start(kafka, topic);
  readers.push(r);
  return r;
}

/** n in-distribution / OOD images as wire messages, ids `${prefix}-1..n`. */
function goodMessages(n: number, prefix: string, oodShare = 0.3): Message[] {
  const mix = sampleMix(loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]), loadMnist(), { oodShare, malformedShare: 0, seed: 3, oversizeBytes: 0, idPrefix: prefix });
  return Array.from({ length: n }, () => {
    const m = mix.next().value as { key: string | null; value: string };
    return { key: m.key, value: m.value };
  });
}

test('N good + M malformed: exactly N scores, M DLQ records with their reasons, complete review records, offsets committed', { timeout: 180_000 }, async () => {
  const { t, env } = await setup();
  const good = goodMessages(300, 'g');
  const bad: [Message, string][] = [
    [{ key: 'b1', value: '{"id":"b1","input":{"features":[0.1' }, 'QUALM_BAD_JSON'],
    [{ key: 'b2', value: JSON.stringify({ id: 'b2', input: { features: [0.1, 0.2] } }) }, 'QUALM_WRONG_LENGTH'],
    [{ key: 'b3', value: `{"id":"b3","input":{"features":[NaN${',0'.repeat(783)}]}}` }, 'QUALM_NON_FINITE'],
    [{ key: null, value: JSON.stringify({ input: { features: new Array<number>(784).fill(0) } }) }, 'QUALM_MISSING_ID'],
    [{ key: 'b5', value: JSON.stringify({ id: 'b5', input: { features: new Array<number>(784).fill(0) }, pad: 'x'.repeat(300_000) }) }, 'QUALM_OVERSIZE'],
    [{ key: 'b6', value: JSON.stringify({ id: 'b6', input: { text: 'a shoe' } }) }, 'QUALM_UNSUPPORTED_INPUT'],
  ];
  // Bad messages interleaved with the good ones.
  const all: Message[] = [];
  good.forEach((m, i) => {
    all.push(m);
    if (i % 50 === 25) all.push((bad[Math.floor(i / 50)] as [Message, string])[0]);
  });
  assert.equal(all.length, 306);
  await produce(kafka, t.input, all);

  const scores = await reader(t.scores);
  const dlq = await reader(t.dlq);
  const review = await reader(t.review);
  const w = await startWorker(env);
  await scores.waitForCount(300, 'score records', 120_000);
  await dlq.waitForCount(6, 'DLQ records');
  await waitFor(async () => (await committedOffset(kafka, t.group, t.input)) === 306, 'offsets committed to 306');

  const s = scores.json<ScoreRecord>();
  assert.equal(s.length, 300, 'exactly one score per good message');
  assert.deepEqual(new Set(s.map((r) => r.id)), new Set(good.map((m) => m.key)));
  const codes = dlq.messages.map((m) => readDlqHeaders(m.headers as Record<string, unknown>));
  assert.deepEqual(codes.map((c) => c?.code), bad.map(([, code]) => code));
  for (const [i, c] of codes.entries()) {
    assert.ok(c !== undefined && c.message.length > 10, 'a readable reason');
    assert.equal(c.source.topic, t.input);
    assert.equal(dlq.messages[i]?.value?.toString(), (bad[i] as [Message, string])[0].value?.toString(), 'original bytes preserved');
  }

  // Every flagged score has its review record, complete.
  const flaggedIds = new Set(s.filter((r) => r.flagged).map((r) => r.id));
  assert.ok(flaggedIds.size > 0, 'some samples are flagged');
  await review.waitForCount(flaggedIds.size, 'review records');
  const reviews = review.json<ReviewRecord>();
  assert.deepEqual(new Set(reviews.map((r) => r.id)), flaggedIds);
  for (const r of reviews) {
    assert.ok(r.uncertainty >= 0 && r.uncertainty <= 1);
    assert.equal(r.neighbors.length, 20);
    assert.ok(r.neighbors.every((n) => n.ref_id.startsWith('fm-train#') && n.label !== null && n.distance >= 0));
    assert.ok(['out_of_distribution', 'ambiguous_neighborhood', 'low_density'].includes(r.reason));
    assert.ok(typeof r.suggested_label === 'string' && typeof r.predicted_accuracy === 'number');
    assert.ok(r.explanation.length > 20);
    assert.equal(r.source.topic, t.input);
    assert.ok(typeof r.meta?.source === 'string');
    assert.ok(r.index_version.length > 0 && r.model_version.startsWith('fmnist-simclr@'));
  }
  // MNIST digits are far from Fashion-MNIST: flagged far more often than Fashion-MNIST images.
  const share = (source: string): number => {
    const rs = s.filter((r) => r.meta?.source === source);
    return rs.filter((r) => r.flagged).length / rs.length;
  };
  const mnistFlagged = share('mnist');
  const fashionFlagged = share('fashion-mnist/t10k');
  console.log(`flagged: mnist ${mnistFlagged.toFixed(3)}, fashion-mnist ${fashionFlagged.toFixed(3)}`);
  assert.ok(mnistFlagged > 0.5 && mnistFlagged > 3 * fashionFlagged, `MNIST flag share ${mnistFlagged}, Fashion-MNIST ${fashionFlagged}`);

  const metrics = await w.metrics();
  assert.match(metrics, /^qualm_messages_consumed_total\{topic="[^"]+"\} 306$/m);
  assert.match(metrics, /^qualm_samples_scored_total 300$/m);
  assert.match(metrics, /^qualm_dlq_messages_total\{code="QUALM_OVERSIZE"\} 1$/m);
  assert.match(metrics, /^qualm_bundle_references 6000$/m);
  assert.match(metrics, /^qualm_stage_duration_seconds_count\{stage="embed"\} [1-9]/m);
  assert.match(metrics, /^qualm_consumer_lag_messages\{topic="[^"]+",partition="0"\} 0$/m, 'caught up to the end');
  assert.match(metrics, /^nodejs_eventloop_lag_seconds \d/m);
  assert.match(metrics, /^qualm_signal_count\{signal="relative_density_percentile"\} 300$/m);
  assert.match(metrics, /^qualm_drift_window_samples 300$/m);
  assert.match(metrics, /^qualm_drift_ood_ratio\{source="reference"\} 0\.01\d*$/m, 'about 1% of references lie beyond their own 99th percentile');
  assert.match(metrics, /^qualm_drift_uncertainty\{source="stream",q="0\.99"\} [01]/m);
  assert.deepEqual(await w.stop('SIGTERM'), { code: 0, signal: null });
});

test('regression: no single message stops the partition: a 5,000-level meta and a 2 MB value whose DLQ copy the DLQ topic would refuse go to the DLQ, and the stream goes on', { timeout: 180_000 }, async () => {
  const t = uniqueWorkerTopics();
  // The input topic takes large values; the DLQ topic keeps the broker's default limit (about 1 MB).
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic: t.input, configEntries: [{ name: 'max.message.bytes', value: String(4 * 1024 * 1024) }] }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  await createTopics(kafka, [t.review, t.scores, t.dlq]);
  const env = { ...workerTopicEnv(broker.brokers, t), QUALM_BUNDLE_DIR: bundleDir, QUALM_MODEL_PATH: MODEL, QUALM_SESSION_TIMEOUT_MS: '10000', QUALM_HEARTBEAT_INTERVAL_MS: '1000' };
  const before = goodMessages(20, 'pre');
  const after = goodMessages(20, 'post');
  const features = `[${new Array<number>(784).fill(0.1).join(',')}]`;
  const deep = { key: 'deep', value: `{"id":"deep","input":{"features":${features}},"meta":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}` };
  const huge = { key: 'huge', value: Buffer.alloc(2 * 1024 * 1024, 0x7b) };
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({ topic: t.input, acks: -1, messages: [...before, deep] });
    await producer.send({ topic: t.input, acks: -1, messages: [huge] });
    await producer.send({ topic: t.input, acks: -1, messages: after });
  } finally {
    await producer.disconnect();
  }
  const total = before.length + 2 + after.length;
  const scores = await reader(t.scores);
  const dlq = await reader(t.dlq);
  const w = await startWorker(env);
  await scores.waitForCount(before.length + after.length, 'score records');
  await dlq.waitForCount(2, 'DLQ records');
  await waitFor(async () => (await committedOffset(kafka, t.group, t.input)) === total, 'every offset committed, past both messages');
  const byKey = new Map(dlq.messages.map((m) => [m.key?.toString(), m]));
  assert.equal(readDlqHeaders(byKey.get('deep')?.headers)?.code, 'QUALM_META_TOO_DEEP');
  assert.equal(byKey.get('deep')?.value?.toString(), deep.value, 'a DLQ copy that fits is the original, byte for byte');
  const cut = byKey.get('huge');
  assert.equal(readDlqHeaders(cut?.headers)?.code, 'QUALM_OVERSIZE');
  assert.equal(cut?.headers?.['qualm-dlq-truncated']?.toString(), String(huge.value.length));
  assert.ok((cut?.value?.length ?? 0) > 0 && (cut?.value?.length ?? 0) <= 524_288, `the copy is cut to QUALM_MAX_DLQ_BYTES: ${cut?.value?.length}`);
  assert.deepEqual(cut?.value, huge.value.subarray(0, cut?.value?.length), 'a prefix of the original');
  assert.deepEqual(readDlqHeaders(cut?.headers)?.source.offset, String(before.length + 1), 'with the coordinates of the whole original');
  assert.deepEqual(new Set(scores.json<ScoreRecord>().map((r) => r.id)), new Set([...before, ...after].map((m) => (JSON.parse(String(m.value)) as { id: string }).id)));
  assert.equal(w.child.exitCode, null, 'the worker is still running');
});

test('an input the model chokes on goes to the DLQ alone (QUALM_INFERENCE_FAILED, found by splitting the run); the batch around it is scored and committed', { timeout: 180_000 }, async () => {
  // A real ONNX model that refuses some inputs: y = GatherElements(x, int(x)), so a value outside [-4, 3] is an out-of-range index.
  const dir = mkdtempSync(join(tmpdir(), 'qualm-it-choke-'));
  try {
    const model = writeTinyModel(
      join(dir, 'gather.onnx'),
      [
        { op: 'Cast', inputs: ['x'], outputs: ['idx'], attributes: { to: 7 } },
        { op: 'GatherElements', inputs: ['x', 'idx'], outputs: ['y'], attributes: { axis: 1 } },
      ],
      [{ name: 'x', type: 'float32', shape: ['N', 4] }],
      [{ name: 'y', type: 'float32', shape: ['N', 4] }],
    );
    writeFileSync(
      join(dir, 'gather.json'),
      JSON.stringify({ format_version: 2, name: 'gather', version: '1', input_kind: 'features', input: { name: 'x', shape: [-1, 4] }, output: { name: 'y' }, dim: 4 }),
    );
    const rnd = seededRandom(11);
    const row = (): number[] => Array.from({ length: 4 }, () => 1 + Math.floor(rnd() * 3));
    writeFileSync(join(dir, 'refs.jsonl'), Array.from({ length: 300 }, (_, i) => JSON.stringify({ id: `r${i}`, input: { features: row() } })).join('\n'));
    const bundles = join(dir, 'bundles');
    const build = spawnSync(process.execPath, ['bin/qualm.js', 'build-index', '--references', join(dir, 'refs.jsonl')], {
      encoding: 'utf8',
      env: { ...process.env, QUALM_MODEL_PATH: model, QUALM_BUNDLE_DIR: bundles },
    });
    assert.equal(build.status, 0, build.stderr);

    const { t, env } = await setup();
    // The choking inputs first (a fresh worker has embedded nothing yet) and in the middle.
    const poison = new Set([0, 17]);
    const messages: Message[] = Array.from({ length: 40 }, (_, i) => ({ key: `s${i}`, value: JSON.stringify({ id: `s${i}`, input: { features: poison.has(i) ? [1, 100, 2, 3] : row() } }) }));
    await produce(kafka, t.input, messages);
    const scores = await reader(t.scores);
    const dlq = await reader(t.dlq);
    const w = await startWorker({ ...env, QUALM_MODEL_PATH: model, QUALM_BUNDLE_DIR: bundles });
    await scores.waitForCount(38, 'score records');
    await dlq.waitForCount(2, 'DLQ records');
    await waitFor(async () => (await committedOffset(kafka, t.group, t.input)) === 40, 'every offset committed');
    assert.deepEqual(dlq.messages.map((m) => m.key?.toString()).sort(), ['s0', 's17']);
    for (const m of dlq.messages) {
      const info = readDlqHeaders(m.headers);
      assert.equal(info?.code, 'QUALM_INFERENCE_FAILED');
      assert.match(info?.message ?? '', /the model cannot embed this input: .*GatherElements/);
    }
    assert.equal(new Set(scores.json<ScoreRecord>().map((r) => r.id)).size, 38);
    assert.equal(w.child.exitCode, null, 'the worker is still running');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('regression: SIGTERM is honoured while the worker is still connecting to a broker that is down (it used to wait ~70 s for kafkajs to give up)', { timeout: 60_000 }, async () => {
  const port = await freeLoopbackPort();
  const child = spawn(process.execPath, ['bin/qualm.js', 'worker'], {
    env: { ...process.env, QUALM_BUNDLE_DIR: bundleDir, QUALM_MODEL_PATH: MODEL, KAFKA_BROKERS: '127.0.0.1:1', QUALM_METRICS_HOST: '127.0.0.1', QUALM_METRICS_PORT: String(port), QUALM_SHUTDOWN_TIMEOUT_MS: '5000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (log += d.toString('utf8')));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  try {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status).catch(() => 0)) === 200, 'the health server of a worker without a broker');
    assert.equal(await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status), 503, 'not ready while it cannot reach the broker');
    const t0 = Date.now();
    child.kill('SIGTERM');
    const code = await exited;
    const ms = Date.now() - t0;
    assert.equal(code, 0, log.slice(-2000));
    // Within the shutdown timeout (5 s) plus the process's own teardown; kafkajs's retries alone last about 70 s.
    assert.ok(ms < 15_000, `exited ${ms} ms after SIGTERM`);
    assert.match(log, /"event":"exit".*"phase":"starting"/);
  } finally {
    child.kill('SIGKILL');
  }
});

test('a worker killed mid-stream: its successor re-processes at most the uncommitted batch and loses nothing', { timeout: 240_000 }, async () => {
  const { t, env } = await setup();
  const n = 3000;
  await produce(kafka, t.input, goodMessages(n, 'k'));
  const scores = await reader(t.scores);
  const first = await startWorker({ ...env, QUALM_INFERENCE_BATCH: '64' });
  await scores.waitForCount(200, 'first scores', 120_000);
  const killed = await first.stop('SIGKILL');
  assert.equal(killed.signal, 'SIGKILL');
  const committedAtKill = await committedOffset(kafka, t.group, t.input);
  assert.ok(committedAtKill > 0 && committedAtKill < n, `committed ${committedAtKill} of ${n} before the kill`);
  const beforeRestart = scores.json<ScoreRecord>().length;

  await startWorker(env);
  await waitFor(() => new Set(scores.json<ScoreRecord>().map((r) => r.id)).size === n, `all ${n} ids scored`, 180_000);
  await waitFor(async () => (await committedOffset(kafka, t.group, t.input)) === n, 'everything committed');

  const all = scores.json<ScoreRecord>();
  const perOffset = new Map<string, number>();
  for (const r of all) perOffset.set(r.source.offset, (perOffset.get(r.source.offset) ?? 0) + 1);
  const dup = [...perOffset.entries()].filter(([, c]) => c > 1).map(([o]) => Number(o)).sort((a, b) => a - b);
  console.log(`killed after ${beforeRestart} scores, committed ${committedAtKill}; re-processed ${dup.length}`);
  assert.ok(dup.every((o) => o >= committedAtKill), 'nothing below the committed offset is processed twice');
  // The re-processed offsets are one contiguous run starting at the committed offset: the batch in flight.
  if (dup.length > 0) {
    assert.equal(dup[0], committedAtKill);
    assert.equal(dup[dup.length - 1], committedAtKill + dup.length - 1);
  }
  assert.ok([...perOffset.values()].every((c) => c <= 2));
});

test('SIGTERM drains: the worker finishes and commits what it published, exits 0, and a successor continues without duplicates', { timeout: 240_000 }, async () => {
  const { t, env } = await setup();
  const n = 3000;
  await produce(kafka, t.input, goodMessages(n, 'd'));
  const scores = await reader(t.scores);
  const w = await startWorker(env);
  await scores.waitForCount(200, 'first scores', 120_000);
  const res = await w.stop('SIGTERM');
  assert.deepEqual(res, { code: 0, signal: null }, `worker log:\n${w.log().slice(-2000)}`);
  assert.match(w.log(), /"event":"worker_stopped"/);
  const committed = await committedOffset(kafka, t.group, t.input);
  // Give the reader time to see everything the drained worker published (acks=all, so it is there).
  await waitFor(() => scores.messages.length >= committed, `${committed} scores visible`);
  const published = new Set(scores.json<ScoreRecord>().map((r) => Number(r.source.offset)));
  assert.equal(published.size, committed, 'everything published was committed, nothing more');
  assert.ok(committed < n, 'stopped mid-stream');

  await startWorker(env);
  await scores.waitForCount(n, 'all scores', 180_000);
  const offsets = scores.json<ScoreRecord>().map((r) => r.source.offset);
  assert.equal(new Set(offsets).size, n);
  assert.equal(offsets.length, n, 'no duplicates after a graceful stop');
});

test('a new bundle goes live without a restart; corrupted and mismatched ones are refused; nothing lost or duplicated', { timeout: 240_000 }, async () => {
  const { t, env } = await setup();
  const live = mkdtempSync(join(tmpdir(), 'qualm-it-live-'));
  const staging = mkdtempSync(join(tmpdir(), 'qualm-it-staging-'));
  try {
    const v1 = await buildSlice(live, 0, 3000, 'v1');
    const scores = await reader(t.scores);
    const w = await startWorker({ ...env, QUALM_BUNDLE_DIR: live, QUALM_REFRESH_INTERVAL_MS: '200' });

    // A steady stream for the whole test.
    let sent = 0;
    let streaming = true;
    const pool = goodMessages(4000, 'r');
    const stream = (async () => {
      while (streaming && sent < pool.length) {
        await produce(kafka, t.input, pool.slice(sent, sent + 50));
        sent += 50;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const versions = (): string[] => scores.json<ScoreRecord>().map((r) => r.index_version);
    await waitFor(() => versions().includes(v1), 'records scored by v1');

    const v2 = await buildSlice(live, 3000, 6000, 'v2');
    await waitFor(() => versions().includes(v2), 'records scored by v2', 60_000);

    // A corrupted bundle (bad checksum), staged elsewhere and moved in whole, then the pointer.
    await publishCorruptBundle(refs, live, staging, 'v3', CONFIG.densityWeight);
    await waitFor(async () => /^qualm_bundle_refresh_total\{outcome="refused"\} 1$/m.test(await w.metrics()), 'v3 refused');

    // A bundle built with another encoder.
    await buildSlice(live, 0, 1000, 'v4', { ...refs.model, sha256: 'f'.repeat(64) });
    await waitFor(async () => /^qualm_bundle_refresh_total\{outcome="refused"\} 2$/m.test(await w.metrics()), 'v4 refused');
    const metrics = await w.metrics();
    assert.match(metrics, /^qualm_bundle_refresh_total\{outcome="swapped"\} 1$/m);
    assert.match(metrics, new RegExp(`^qualm_bundle_info\\{version="${v2}",model_sha256="${refs.model.sha256}"\\} 1$`, 'm'));
    assert.match(w.log(), /"event":"bundle_refused","version":"v3","reason":"[^"]*ids\.json checksum mismatch/);
    assert.match(w.log(), /"event":"bundle_refused","version":"v4","reason":"[^"]*built with model sha256 f{64}/);

    streaming = false;
    await stream;
    await scores.waitForCount(sent, `${sent} scores`, 120_000);
    const all = scores.json<ScoreRecord>();
    assert.equal(all.length, sent, 'every message scored exactly once');
    assert.equal(new Set(all.map((r) => r.id)).size, sent);
    // In offset order the version switches once, from v1 to v2, and never goes back or to v3/v4.
    const byOffset = [...all].sort((a, b) => Number(a.source.offset) - Number(b.source.offset)).map((r) => r.index_version);
    const firstV2 = byOffset.indexOf(v2);
    assert.ok(firstV2 > 0);
    assert.ok(byOffset.slice(0, firstV2).every((v) => v === v1));
    assert.ok(byOffset.slice(firstV2).every((v) => v === v2));
    assert.deepEqual(await w.stop('SIGTERM'), { code: 0, signal: null });
  } finally {
    rmSync(live, { recursive: true, force: true });
    rmSync(staging, { recursive: true, force: true });
  }
});

test('a publish the broker refuses commits nothing: the partition is rewound and retried with backoff, and once the topic accepts again every input is scored exactly once', { timeout: 240_000 }, async () => {
  const { t, env } = await setup();
  // The scores topic refuses every score record (each is ~1 KB) until its limit is raised.
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: t.scores, configEntries: [{ name: 'max.message.bytes', value: '200' }] }] });
    const n = 500;
    await produce(kafka, t.input, goodMessages(n, 'r'));
    const w = await startWorker(env);
    await waitFor(() => (w.log().match(/"event":"batch_failed"/g) ?? []).length >= 2, 'two failed publishes', 120_000);
    assert.ok(await committedOffset(kafka, t.group, t.input) <= 0, 'nothing committed while publishing fails');
    assert.match(w.log(), /"retryInMs":\d+/);
    assert.equal(w.child.exitCode, null, 'the worker stays up');
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: t.scores, configEntries: [{ name: 'max.message.bytes', value: '1048588' }] }] });
    await waitFor(async () => (await committedOffset(kafka, t.group, t.input)) === n, 'everything committed', 120_000);
    const scores = await reader(t.scores);
    await scores.waitForCount(n, 'scores');
    const offsets = scores.json<ScoreRecord>().map((r) => r.source.offset);
    assert.equal(new Set(offsets).size, n, 'every input scored');
    assert.equal(offsets.length, n, 'and once: the refused requests wrote nothing');
    assert.match(await w.metrics(), /^qualm_messages_consumed_total\{topic="[^"]+"\} 500$/m);
  } finally {
    await admin.disconnect();
  }
});
