// Images as images, end to end: the committed encoder behind a format 2 image manifest (PNG
// bytes decoded and preprocessed by sharp) against the same encoder behind its format 1
// features manifest; then `qualm worker` on a real broker consuming raw PNG messages and
// image_b64 JSON messages, with bad images in the DLQ. No fakes: real ONNX, HNSW, Kafka.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { crc32 } from 'node:zlib';
import type { Kafka, Message } from 'kafkajs';
import sharp from 'sharp';
import { loadConfig } from '../../src/config/index.js';
import { INPUT_FORMAT_HEADER, readDlqHeaders, type ScoreRecord, type SourceRef } from '../../src/contracts/index.js';
import { SLICE_FASHION_MNIST_DIR, loadFashionMnist } from '../../src/datasets/index.js';
import { OnnxEncoder, preprocessImages, type ImageSpec } from '../../src/encoder/index.js';
import { loadCurrentBundle } from '../../src/index/index.js';
import { startLocalKafka, type LocalKafka } from '../../src/local-kafka/index.js';
import { Scorer, type ScoreItem } from '../../src/scorer/index.js';
import { createPolicy } from '../../src/stream/index.js';
import { encodeInputs } from '../../src/encoder/index.js';
import { buildSliceBundle, embedSlice, type SliceRefs } from '../helpers/bundles.js';
import { TopicReader, committedOffset, createTopics, produce, testKafka, uniqueWorkerTopics, waitFor, workerTopicEnv } from '../helpers/kafka.js';
import { WorkerProcess } from '../helpers/worker-process.js';
import { DEMO_IMAGE_MANIFEST } from '../helpers/image-manifest.js';

const CONFIG = loadConfig({});
const FEATURES_MODEL = 'models/fmnist-simclr.onnx';
const dir = mkdtempSync(join(tmpdir(), 'qualm-it-images-'));
const IMAGE_MODEL = join(dir, 'fmnist-png.onnx');
const bundleDir = join(dir, 'bundles');

const IMAGE_MANIFEST = DEMO_IMAGE_MANIFEST;

const test10k = loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]);
const N = Math.min(500, test10k.n);

/** Test image i as a grayscale PNG of its 0..255 pixel values (the slice holds value/255). */
function png(i: number): Promise<Buffer> {
  const px = Buffer.alloc(784);
  for (let j = 0; j < 784; j++) px[j] = Math.round((test10k.pixels[i * 784 + j] as number) * 255);
  return sharp(px, { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w').png().toBuffer();
}

function features(i: number): Float32Array {
  return test10k.pixels.slice(i * 784, (i + 1) * 784);
}

let pngs: Buffer[];
let featuresEncoder: OnnxEncoder;
let imageEncoder: OnnxEncoder;
let broker: LocalKafka | undefined;
let worker: WorkerProcess | undefined;
const readers: TopicReader[] = [];

before(async () => {
  copyFileSync(FEATURES_MODEL, IMAGE_MODEL);
  writeFileSync(join(dir, 'fmnist-png.json'), JSON.stringify(IMAGE_MANIFEST, null, 2));
  pngs = await Promise.all(Array.from({ length: N }, (_, i) => png(i)));
  featuresEncoder = await OnnxEncoder.open(FEATURES_MODEL);
  imageEncoder = await OnnxEncoder.open(IMAGE_MODEL);
});

after(async () => {
  for (const r of readers) await r.stop().catch(() => undefined);
  await worker?.stop('SIGKILL').catch(() => undefined);
  await featuresEncoder?.close();
  await imageEncoder?.close();
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

test('PNG bytes through the image manifest embed as the same pixels through the features manifest', async () => {
  assert.equal(imageEncoder.inputKind, 'image');
  assert.equal(imageEncoder.inputDim, 784);
  const spec = imageEncoder.imageSpec as ImageSpec;
  // The preprocessing alone gives back the slice's pixel values.
  const prepared = await preprocessImages(spec, pngs);
  prepared.forEach((r, i) => {
    assert.ok(r.ok, `image ${i}: ${r.ok ? '' : r.message}`);
    assert.ok(maxAbsDiff(r.values, features(i)) < 1e-7, `pixels of image ${i}`);
  });
  const fromPng = await encodeInputs(imageEncoder, pngs.map((bytes) => ({ kind: 'image' as const, bytes })), 128, () => Promise.resolve());
  const fromFeatures = await featuresEncoder.embedAll(test10k.pixels.subarray(0, N * 784), N, 128);
  let worst = 0;
  fromPng.forEach((z, i) => {
    assert.ok(z instanceof Float32Array, `image ${i} embedded`);
    worst = Math.max(worst, maxAbsDiff(z, fromFeatures.subarray(i * 128, (i + 1) * 128)));
  });
  console.log(`${N} images: largest embedding difference PNG vs features ${worst.toExponential(2)}`);
  assert.ok(worst <= 1e-5, `largest difference ${worst}`);
});

test('worker: raw PNG messages and image_b64 JSON score as the same images sent as features; bad images go to the DLQ; offsets committed', { timeout: 300_000 }, async () => {
  broker = await startLocalKafka();
  const kafka: Kafka = testKafka(broker.brokers);
  // A bundle from the slice's training images, embedded by the features path (the same ONNX file).
  const refs: SliceRefs = await embedSlice(FEATURES_MODEL);
  await buildSliceBundle(refs, bundleDir, 0, refs.count, { densityWeight: CONFIG.densityWeight });

  const t = uniqueWorkerTopics();
  await createTopics(kafka, [t.input, t.review, t.scores, t.dlq]);
  const RAW = 150;
  const B64 = 50;
  const messages: Message[] = [];
  for (let i = 0; i < RAW; i++) messages.push({ key: `png-${i}`, value: pngs[i] as Buffer });
  for (let i = RAW; i < RAW + B64; i++) {
    messages.push({ key: null, value: JSON.stringify({ id: `b64-${i}`, input: { image_b64: (pngs[i] as Buffer).toString('base64') }, meta: { i } }), headers: { [INPUT_FORMAT_HEADER]: 'json' } });
  }
  const gif = await sharp(Buffer.alloc(28 * 28, 9), { raw: { width: 28, height: 28, channels: 1 } }).gif().toBuffer();
  const wrongSize = await sharp(Buffer.alloc(30 * 30, 9), { raw: { width: 30, height: 30, channels: 1 } }).png().toBuffer();
  // A decompression bomb's header: it claims 10000x10000 pixels (CRC fixed up), over the default 40 megapixels.
  const bomb = Buffer.from(pngs[0] as Buffer);
  bomb.writeUInt32BE(10_000, 16);
  bomb.writeUInt32BE(10_000, 20);
  bomb.writeUInt32BE(crc32(bomb.subarray(12, 29)), 29);
  const bad: [Message, string][] = [
    [{ key: 'bad-truncated', value: (pngs[1] as Buffer).subarray(0, 120) }, 'QUALM_IMAGE_UNDECODABLE'],
    [{ key: 'bad-random', value: Buffer.from('this is not an image at all') }, 'QUALM_IMAGE_UNDECODABLE'],
    [{ key: 'bad-gif', value: gif }, 'QUALM_IMAGE_UNSUPPORTED_FORMAT'],
    [{ key: 'bad-size', value: wrongSize }, 'QUALM_IMAGE_BAD_SIZE'],
    [{ key: null, value: pngs[2] as Buffer }, 'QUALM_MISSING_ID'],
    [{ key: 'bad-header', value: pngs[3] as Buffer, headers: { [INPUT_FORMAT_HEADER]: 'png' } }, 'QUALM_BAD_INPUT_FORMAT'],
    [{ key: 'bad-b64', value: JSON.stringify({ id: 'bad-b64', input: { image_b64: 'bm90IGFuIGltYWdl' } }), headers: { [INPUT_FORMAT_HEADER]: Buffer.from('json') } }, 'QUALM_IMAGE_UNDECODABLE'],
    [{ key: 'bad-bomb', value: bomb }, 'QUALM_IMAGE_TOO_LARGE'],
  ];
  const all: Message[] = [];
  // The bad messages interleaved with the good ones (after messages 10, 35, 60, ...).
  messages.forEach((m, i) => {
    all.push(m);
    const b = i % 25 === 10 ? bad[(i - 10) / 25] : undefined;
    if (b !== undefined) all.push(b[0]);
  });
  assert.equal(all.length, RAW + B64 + bad.length);
  await produce(kafka, t.input, all);

  const scores = await TopicReader.start(kafka, t.scores);
  const dlq = await TopicReader.start(kafka, t.dlq);
  readers.push(scores, dlq);
  worker = await WorkerProcess.start({
    ...workerTopicEnv(broker.brokers, t),
    QUALM_BUNDLE_DIR: bundleDir,
    QUALM_MODEL_PATH: IMAGE_MODEL,
    QUALM_INPUT_FORMAT: 'image',
    QUALM_SESSION_TIMEOUT_MS: '10000',
    QUALM_HEARTBEAT_INTERVAL_MS: '1000',
  });
  await scores.waitForCount(RAW + B64, 'score records', 120_000);
  await dlq.waitForCount(bad.length, 'DLQ records');
  await waitFor(async () => (await committedOffset(kafka, t.group, t.input)) === all.length, `offsets committed to ${all.length}`);

  // DLQ: each bad image with its code, its original bytes and a readable reason.
  const byKey = new Map(dlq.messages.map((m) => [m.key?.toString() ?? '(no key)', m]));
  for (const [m, code] of bad) {
    const got = byKey.get(m.key?.toString() ?? '(no key)');
    assert.ok(got !== undefined, `DLQ record for ${String(m.key)}`);
    const info = readDlqHeaders(got.headers);
    assert.equal(info?.code, code, `code of ${String(m.key)}: ${info?.message}`);
    assert.ok((info?.message.length ?? 0) > 10, 'a readable reason');
    assert.deepEqual(got.value, Buffer.isBuffer(m.value) ? m.value : Buffer.from(m.value as string), 'original bytes preserved');
  }

  // The same images through the features path, scored in-process against the same bundle.
  const snap = await loadCurrentBundle(bundleDir, { efSearch: CONFIG.efSearch });
  const scorer = new Scorer({ embedder: featuresEncoder, snapshot: () => snap, policy: createPolicy(CONFIG), batch: 128 });
  const items: ScoreItem<SourceRef>[] = Array.from({ length: RAW + B64 }, (_, i) => ({
    sample: { id: i < RAW ? `png-${i}` : `b64-${i}`, input: { kind: 'features', values: features(i) }, meta: undefined },
    source: { topic: 'offline', partition: 0, offset: String(i) },
  }));
  const expected = new Map((await scorer.score(items)).map((s) => [s.sample.id, s]));
  const got = scores.json<ScoreRecord>();
  assert.equal(got.length, RAW + B64, 'exactly one score per good image');
  let worst = 0;
  for (const r of got) {
    const e = expected.get(r.id);
    assert.ok(e !== undefined && e.ok, `an expected score for ${r.id}`);
    worst = Math.max(worst, Math.abs(r.uncertainty - e.score.uncertainty), Math.abs(r.signals.mean_knn_distance - e.score.signals.meanKnnDistance));
    assert.equal(r.suggested_label, e.record.suggested_label, `suggested label of ${r.id}`);
    if (r.id.startsWith('b64-')) assert.deepEqual(r.meta, { i: Number(r.id.slice(4)) });
    else assert.equal(r.meta, null);
  }
  console.log(`${got.length} worker scores vs features path: largest difference ${worst.toExponential(2)}`);
  assert.ok(worst <= 1e-4, `largest score difference ${worst}`);
  const metrics = await worker.metrics();
  assert.match(metrics, /qualm_dlq_messages_total\{code="QUALM_IMAGE_UNDECODABLE"\} 3/);
});
