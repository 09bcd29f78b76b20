// The manifest's value range on the real path: a real Kafka broker, the committed demo encoder
// (whose manifest declares value_range [0, 1]), a real HNSW bundle and `qualm worker` as a child
// process. Raw 0..255 pixels in the middle of a stream of good samples (the "forgot /255" bug)
// go to the DLQ as QUALM_OUT_OF_RANGE; the samples around them are scored and committed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Kafka, Message } from 'kafkajs';
import { loadConfig } from '../../src/config/index.js';
import { encodeFloat32Base64, readDlqHeaders, type ScoreRecord } from '../../src/contracts/index.js';
import { SLICE_FASHION_MNIST_DIR, loadFashionMnist, row } from '../../src/datasets/index.js';
import { readModelManifest } from '../../src/encoder/index.js';
import { startLocalKafka, type LocalKafka } from '../../src/local-kafka/index.js';
import { packageRoot } from '../../src/util/package-root.js';
import { buildSliceBundle, embedSlice } from '../helpers/bundles.js';
import { TopicReader, committedOffset, createTopics, produce, testKafka, uniqueWorkerTopics, waitFor, workerTopicEnv } from '../helpers/kafka.js';
import { WorkerProcess } from '../helpers/worker-process.js';

const MODEL = join(packageRoot(), 'models', 'fmnist-simclr.onnx');
const CONFIG = loadConfig(process.env);
const bundleDir = mkdtempSync(join(tmpdir(), 'qualm-it-range-'));
let broker: LocalKafka;
let kafka: Kafka;
const workers: WorkerProcess[] = [];
const readers: TopicReader[] = [];

before(async () => {
  broker = await startLocalKafka();
  kafka = testKafka(broker.brokers);
  const refs = await embedSlice(MODEL);
  await buildSliceBundle(refs, bundleDir, 0, 2000, { densityWeight: CONFIG.densityWeight });
});

after(async () => {
  for (const r of readers) await r.stop().catch(() => undefined);
  for (const w of workers) await w.stop('SIGKILL').catch(() => undefined);
  await broker?.stop();
  rmSync(bundleDir, { recursive: true, force: true });
});

async function reader(topic: string): Promise<TopicReader> {
  const r = await TopicReader.start(kafka, topic);
  readers.push(r);
  return r;
}

test('raw 0..255 pixels in the middle of a stream go to the DLQ as QUALM_OUT_OF_RANGE with the index, value, range and a /255 hint; the others are scored and committed', { timeout: 240_000 }, async () => {
  const spec = await readModelManifest(MODEL.replace(/\.onnx$/, '.json'));
  assert.ok(spec.input_kind === 'features' && spec.input.value_range?.join() === '0,1', 'the committed demo manifest declares [0, 1]');

  const t = uniqueWorkerTopics();
  await createTopics(kafka, [t.input, t.review, t.scores, t.dlq]);
  const test10k = loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]);
  const unit = (i: number): number[] => Array.from(row(test10k, i), (v) => Math.round(v * 10000) / 10000);
  const raw = (i: number): number[] => Array.from(row(test10k, i), (v) => Math.round(v * 255));
  const good: Message[] = Array.from({ length: 24 }, (_, i) => {
    const id = `g-${i}`;
    // Half as JSON arrays, half on the base64 fast path: both are checked.
    const input = i % 2 === 0 ? { features: unit(i) } : { features_b64: encodeFloat32Base64(unit(i)) };
    return { key: id, value: JSON.stringify({ id, input }) };
  });
  const bad: Message[] = [
    { key: 'raw-json', value: JSON.stringify({ id: 'raw-json', input: { features: raw(30) } }) },
    { key: 'raw-b64', value: JSON.stringify({ id: 'raw-b64', input: { features_b64: encodeFloat32Base64(raw(31)) } }) },
  ];
  const all = [...good.slice(0, 10), bad[0] as Message, ...good.slice(10, 17), bad[1] as Message, ...good.slice(17)];
  await produce(kafka, t.input, all);

  const scores = await reader(t.scores);
  const dlq = await reader(t.dlq);
  const w = await WorkerProcess.start({
    ...workerTopicEnv(broker.brokers, t),
    QUALM_BUNDLE_DIR: bundleDir,
    QUALM_MODEL_PATH: MODEL,
    QUALM_SESSION_TIMEOUT_MS: '10000',
    QUALM_HEARTBEAT_INTERVAL_MS: '1000',
  });
  workers.push(w);
  await scores.waitForCount(good.length, 'score records', 120_000);
  await dlq.waitForCount(bad.length, 'DLQ records');
  await waitFor(async () => (await committedOffset(kafka, t.group, t.input)) === all.length, `offsets committed to ${all.length}`);

  const s = scores.json<ScoreRecord>();
  assert.deepEqual(s.map((r) => r.id).sort(), good.map((m) => m.key as string).sort(), 'every good sample scored once, the raw ones not');
  assert.ok(s.every((r) => r.uncertainty >= 0 && r.uncertainty <= 1));

  assert.equal(dlq.messages.length, bad.length);
  for (const [i, m] of dlq.messages.entries()) {
    const h = readDlqHeaders(m.headers);
    assert.ok(h !== undefined);
    assert.equal(h.code, 'QUALM_OUT_OF_RANGE');
    const field = i === 0 ? 'input\\.features' : 'input\\.features_b64';
    assert.match(h.message, new RegExp(`^${field}\\[\\d+\\] is \\d+, outside the model's value range \\[0, 1\\]; the values run 0\\.\\.\\d+, like raw 0\\.\\.255 pixels: divide them by 255 before sending$`), h.message);
    assert.equal(h.source.topic, t.input);
    assert.equal(m.value?.toString(), (bad[i] as Message).value?.toString(), 'original bytes preserved');
  }
  // The DLQ counter has the new code among its labels, at 2.
  assert.match(await w.metrics(), /qualm_dlq_messages_total\{code="QUALM_OUT_OF_RANGE"\} 2\b/);
  assert.equal(w.child.exitCode, null, 'the worker is still up');
});
