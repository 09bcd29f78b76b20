// build-index --references and produce --from as a user runs them: the CLI in a temporary
// directory with QUALM_BUNDLE_DIR there, the committed ONNX encoder, real HNSW bundles and,
// for the topic source, a real Kafka broker.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { loadConfig } from '../../src/config/index.js';
import { FASHION_MNIST_LABELS, loadFashionMnist } from '../../src/datasets/index.js';
import { startLocalKafka, type LocalKafka } from '../../src/local-kafka/index.js';
import { seededRandom } from '../../src/util/random.js';
import { createTopics, testKafka, uniqueName } from '../helpers/kafka.js';
import { DEMO_IMAGE_MANIFEST } from '../helpers/image-manifest.js';

/** The committed encoder, as an absolute path: the commands run in the temporary directory. */
const MODEL = resolve(loadConfig(process.env).modelPath);
/** all-MiniLM-L6-v2 as scripts/fetch-minilm.sh caches it (npm test's pretest). */
const MINILM = fileURLToPath(new URL('../../.cache/minilm/model.onnx', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/qualm.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'qualm-sources-cli-'));
let broker: LocalKafka | undefined;
after(async () => {
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function qualm(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: { ...process.env, QUALM_BUNDLE_DIR: join(dir, 'bundles'), QUALM_MODEL_PATH: MODEL, QUALM_LOG_LEVEL: 'warn', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface Manifest {
  count: number;
  labels: { names: string[] } | null;
  source: { references: string; count: number; skipped: { total: number; byReason: Record<string, { count: number; first: string[] }> } };
}

function manifestOf(run: Run): { manifest: Manifest; ids: string[]; labels: number[] | null } {
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout.trim().split('\n').pop() as string) as { dir: string };
  const manifest = JSON.parse(readFileSync(join(out.dir, 'manifest.json'), 'utf8')) as Manifest;
  const ids = JSON.parse(readFileSync(join(out.dir, 'ids.json'), 'utf8')) as string[];
  let labels: number[] | null = null;
  try {
    labels = JSON.parse(readFileSync(join(out.dir, 'labels.json'), 'utf8')) as number[];
  } catch {
    labels = null;
  }
  return { manifest, ids, labels };
}

const test10k = loadFashionMnist('t10k');
const N = 300;
function featureLine(i: number, extra: Record<string, unknown> = {}): string {
  const values = Array.from(test10k.pixels.subarray(i * 784, (i + 1) * 784), (v) => Math.round(v * 255) / 255);
  return JSON.stringify({ id: `shirt-${i}`, input: { features: values }, label: FASHION_MNIST_LABELS[test10k.labels[i] as number], ...extra });
}

test('build-index --references on a JSONL file of Fashion-MNIST features with string labels', async () => {
  writeFileSync(join(dir, 'refs.jsonl'), Array.from({ length: N }, (_, i) => featureLine(i)).join('\n') + '\n');
  const { manifest, ids, labels } = manifestOf(await qualm(['build-index', '--references', 'refs.jsonl', '--k', '10']));
  assert.equal(manifest.count, N);
  assert.equal(manifest.source.references, 'refs.jsonl');
  assert.equal(manifest.source.count, N);
  assert.deepEqual(manifest.source.skipped, { total: 0, byReason: {} });
  const present = new Set(Array.from(test10k.labels.subarray(0, N), (l) => FASHION_MNIST_LABELS[l] as string));
  // Strings kept as given, in code-unit order.
  assert.deepEqual(manifest.labels?.names, [...present].sort());
  assert.deepEqual(ids.slice(0, 3), ['shirt-0', 'shirt-1', 'shirt-2']);
  assert.equal(manifest.labels?.names[labels?.[5] as number], FASHION_MNIST_LABELS[test10k.labels[5] as number]);
});

test('--subsample reservoir runs on the stream, stratified after a labels pass; --limit keeps the first records', async () => {
  interface Sub {
    method: string;
    of: number;
    kept: number;
  }
  const reservoir = manifestOf(await qualm(['build-index', '--references', 'refs.jsonl', '--subsample', 'reservoir', '--max-references', '100', '--seed', '3', '--k', '5']));
  assert.equal(reservoir.manifest.count, 100);
  assert.deepEqual((reservoir.manifest.source as unknown as { subsample: Sub }).subsample, { method: 'reservoir', size: 100, seed: 3, of: N, kept: 100 });
  const again = manifestOf(await qualm(['build-index', '--references', 'refs.jsonl', '--subsample', 'reservoir', '--max-references', '100', '--seed', '3', '--k', '5']));
  assert.deepEqual(again.ids, reservoir.ids, 'the same seed keeps the same references');
  // Stratified keeps at least 50 of every label: 1,200 images, about 120 per class.
  writeFileSync(join(dir, 'many.jsonl'), Array.from({ length: 1200 }, (_, i) => featureLine(i)).join('\n'));
  const stratified = manifestOf(await qualm(['build-index', '--references', 'many.jsonl', '--subsample', 'stratified', '--max-references', '700', '--k', '5']));
  assert.equal(stratified.manifest.count, 700);
  assert.deepEqual((stratified.manifest.source as unknown as { subsample: Sub }).subsample, { method: 'stratified', size: 700, seed: 1, of: 1200, kept: 700 });
  const perLabel = new Map<number, number>();
  for (const l of stratified.labels ?? []) perLabel.set(l, (perLabel.get(l) ?? 0) + 1);
  assert.equal(perLabel.size, 10);
  assert.ok(Math.min(...perLabel.values()) >= 50, `every label keeps 50: ${[...perLabel.values()].join(', ')}`);
  const tooSmall = await qualm(['build-index', '--references', 'refs.jsonl', '--subsample', 'stratified', '--max-references', '200']);
  assert.equal(tooSmall.code, 2);
  assert.match(tooSmall.stderr, /refs\.jsonl: a stratified sample of 200 cannot keep 50 of each of 10 labels/);
  const limited = manifestOf(await qualm(['build-index', '--references', 'refs.jsonl', '--limit', '40', '--k', '5']));
  assert.deepEqual(
    limited.ids,
    Array.from({ length: 40 }, (_, i) => `shirt-${i}`),
  );
});

test('a bad line stops the build naming file, line and field; --skip-invalid counts it in the manifest', async () => {
  const lines = Array.from({ length: 60 }, (_, i) => featureLine(i));
  lines[16] = JSON.stringify({ id: 'short', input: { features: [0.5, 0.5] }, label: 'Bag' });
  writeFileSync(join(dir, 'bad.jsonl'), lines.join('\n'));
  const failed = await qualm(['build-index', '--references', 'bad.jsonl', '--k', '5']);
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(failed.stderr, /\[QUALM_SOURCE_INVALID\] bad\.jsonl:17: input\.features has 2 values, the model expects 784/);
  lines[40] = featureLine(3);
  // Raw 0..255 pixels, against the demo encoder's declared value_range [0, 1].
  lines[25] = JSON.stringify({ id: 'raw', input: { features: Array.from(test10k.pixels.subarray(25 * 784, 26 * 784), (v) => Math.round(v * 255)) }, label: 'Bag' });
  writeFileSync(join(dir, 'bad.jsonl'), lines.join('\n'));
  const { manifest } = manifestOf(await qualm(['build-index', '--references', 'bad.jsonl', '--k', '5', '--skip-invalid']));
  assert.equal(manifest.count, 57);
  assert.deepEqual(manifest.source.skipped, {
    total: 3,
    byReason: { QUALM_OUT_OF_RANGE: { count: 1, first: ['bad.jsonl:26'] }, QUALM_WRONG_LENGTH: { count: 1, first: ['bad.jsonl:17'] }, duplicate_id: { count: 1, first: ['bad.jsonl:41'] } },
  });
  writeFileSync(join(dir, 'raw.jsonl'), [featureLine(0), lines[25]].join('\n'));
  const raw = await qualm(['build-index', '--references', 'raw.jsonl', '--k', '5']);
  assert.equal(raw.code, 1, raw.stderr);
  assert.match(raw.stderr, /\[QUALM_SOURCE_INVALID\] raw\.jsonl:2: input\.features\[\d+\] is \d+, outside the model's value range \[0, 1\]; .*divide them by 255 before sending/);
  writeFileSync(join(dir, 'dup.jsonl'), [...Array.from({ length: 10 }, (_, i) => featureLine(i)), featureLine(3)].join('\n'));
  const twice = await qualm(['build-index', '--references', 'dup.jsonl', '--k', '5']);
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /\[QUALM_SOURCE_INVALID\] dup\.jsonl:11: id "shirt-3" was given by an earlier record; reference ids must be unique/);
});

test('build-index --references on a .npy of embeddings with a CSV sidecar; numeric labels in numeric order', async () => {
  const n = 240;
  const d = 128;
  const rnd = seededRandom(7);
  const data = Buffer.alloc(n * d * 4);
  const csv = ['id,label'];
  for (let i = 0; i < n; i++) {
    const label = i % 12;
    // Twelve clusters: a shared direction per label plus noise.
    for (let j = 0; j < d; j++) data.writeFloatLE((j % 12 === label ? 1 : 0) + 0.2 * (rnd() - 0.5), (i * d + j) * 4);
    csv.push(`emb-${i},${label}`);
  }
  let dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${n}, ${d}), }`;
  dict += ' '.repeat(63 - ((10 + dict.length) % 64)) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(dict.length, 8);
  writeFileSync(join(dir, 'emb.npy'), Buffer.concat([head, Buffer.from(dict, 'latin1'), data]));
  writeFileSync(join(dir, 'emb.csv'), csv.join('\n') + '\n');
  const { manifest, ids, labels } = manifestOf(await qualm(['build-index', '--references', 'emb.npy', '--sidecar', 'emb.csv', '--k', '8']));
  assert.equal(manifest.count, n);
  assert.deepEqual(manifest.labels?.names, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11']);
  assert.equal(ids[13], 'emb-13');
  assert.equal(labels?.[13], 1);
  assert.equal(labels?.[11], 11);

  const short = await qualm(['build-index', '--references', 'emb.npy', '--sidecar', 'emb-short.csv'], {});
  assert.equal(short.code, 1);
  assert.match(short.stderr, /\[QUALM_SOURCE_INVALID\] sidecar emb-short\.csv: cannot read: ENOENT/);
  writeFileSync(join(dir, 'emb-short.csv'), csv.slice(0, n).join('\n'));
  const mismatch = await qualm(['build-index', '--references', 'emb.npy', '--sidecar', 'emb-short.csv']);
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.stderr, /sidecar emb-short\.csv has 239 entries, emb\.npy has 240 rows/);
});

test('text and image references: MiniLM on labelled texts, the demo encoder on PNG lines (a broken PNG named by its line)', async () => {
  const texts = Array.from({ length: 60 }, (_, i) => JSON.stringify({ id: `t${i}`, input: { text: `${i % 2 === 1 ? 'a wonderful, moving film' : 'a dull waste of an evening'}, review ${i}` }, label: i % 2 === 1 ? 'pos' : 'neg' }));
  writeFileSync(join(dir, 'texts.jsonl'), texts.join('\n'));
  const text = manifestOf(await qualm(['build-index', '--references', 'texts.jsonl', '--k', '5'], { QUALM_MODEL_PATH: MINILM }));
  assert.equal(text.manifest.count, 60);
  assert.deepEqual(text.manifest.labels?.names, ['neg', 'pos']);

  copyFileSync(MODEL, join(dir, 'fmnist-png.onnx'));
  writeFileSync(
    join(dir, 'fmnist-png.json'),
    JSON.stringify(DEMO_IMAGE_MANIFEST),
  );
  const lines: string[] = [];
  for (let i = 0; i < 80; i++) {
    const px = Buffer.alloc(784);
    for (let j = 0; j < 784; j++) px[j] = Math.round((test10k.pixels[i * 784 + j] as number) * 255);
    const png = await sharp(px, { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
    // Line 31 holds a PNG cut short: decoding fails in the encoder stage, not in parsing.
    const bytes = i === 30 ? png.subarray(0, 40) : png;
    lines.push(JSON.stringify({ id: `png-${i}`, input: { image_b64: bytes.toString('base64') }, label: FASHION_MNIST_LABELS[test10k.labels[i] as number] }));
  }
  writeFileSync(join(dir, 'pngs.jsonl'), lines.join('\n'));
  const env = { QUALM_MODEL_PATH: join(dir, 'fmnist-png.onnx') };
  const failed = await qualm(['build-index', '--references', 'pngs.jsonl', '--k', '5'], env);
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(failed.stderr, /\[QUALM_SOURCE_INVALID\] pngs\.jsonl:31: /);
  const image = manifestOf(await qualm(['build-index', '--references', 'pngs.jsonl', '--k', '5', '--skip-invalid'], env));
  assert.equal(image.manifest.count, 79);
  assert.equal(image.manifest.source.skipped.total, 1);
  const [reason] = Object.entries(image.manifest.source.skipped.byReason);
  assert.match(reason?.[0] ?? '', /^QUALM_IMAGE_/);
  assert.deepEqual(reason?.[1].first, ['pngs.jsonl:31']);
});

test('an unlabelled source builds a label-free bundle', async () => {
  writeFileSync(join(dir, 'plain.jsonl'), Array.from({ length: 50 }, (_, i) => JSON.stringify({ id: `p${i}`, input: { features: Array.from(test10k.pixels.subarray(i * 784, (i + 1) * 784)) } })).join('\n'));
  const { manifest, labels } = manifestOf(await qualm(['build-index', '--references', 'plain.jsonl', '--k', '5']));
  assert.equal(manifest.count, 50);
  assert.equal(manifest.labels, null);
  assert.equal(labels, null);
});

test('produce --from replays a file into a topic, and build-index --references topic:NAME reads it back', async () => {
  broker = await startLocalKafka();
  const kafka = testKafka(broker.brokers);
  const topic = uniqueName('sources-in');
  await createTopics(kafka, [topic]);
  const env = { KAFKA_BROKERS: broker.brokers.join(',') };
  const produced = await qualm(['produce', '--from', 'refs.jsonl', '--topic', topic, '--rate', '0', '--count', '120'], env);
  assert.equal(produced.code, 0, produced.stderr);
  assert.deepEqual(JSON.parse(produced.stdout.trim().split('\n').pop() as string), { from: 'refs.jsonl', topic, sent: 120, skipped: { total: 0, byReason: {} } });
  const { manifest, ids } = manifestOf(await qualm(['build-index', '--references', `topic:${topic}`, '--k', '5'], env));
  assert.equal(manifest.count, 120);
  assert.equal(manifest.source.references, `topic:${topic}`);
  assert.deepEqual(ids.slice(0, 2), ['shirt-0', 'shirt-1']);
  // The label travelled as meta.label, so the topic's records are unlabelled references.
  assert.equal(manifest.labels, null);

  // More messages than the topic reader holds (1,000): the consumer's batches wait for the build.
  const big = uniqueName('sources-big');
  await createTopics(kafka, [big], 2);
  const many = await qualm(['produce', '--from', 'builtin:fashion-mnist/t10k', '--topic', big, '--rate', '0', '--count', '2500'], env);
  assert.equal(many.code, 0, many.stderr);
  const fromTopic = manifestOf(await qualm(['build-index', '--references', `topic:${big}`, '--k', '5', '--batch', '64'], env));
  assert.equal(fromTopic.manifest.count, 2500);
  assert.deepEqual(new Set(fromTopic.ids), new Set(Array.from({ length: 2500 }, (_, i) => `fashion-mnist/t10k#${i}`)));
});
