// Text end to end: all-MiniLM-L6-v2 (real ONNX, real tokenizer), a real HNSW bundle of IMDB
// train reviews, a real Kafka broker, and `qualm worker` as a child process scoring IMDB test
// reviews, SpamAssassin spam and malformed text inputs.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Kafka, Message } from 'kafkajs';
import { loadConfig } from '../../src/config/index.js';
import { readDlqHeaders, type ReviewRecord, type ScoreRecord } from '../../src/contracts/index.js';
import { balancedSubsample, loadImdb, loadSpamAssassin, subsetTexts, type TextSet } from '../../src/datasets/index.js';
import { OnnxEncoder } from '../../src/encoder/index.js';
import { buildBundle } from '../../src/index/index.js';
import { startLocalKafka, type LocalKafka } from '../../src/local-kafka/index.js';
import { referenceScorer } from '../../src/scoring/index.js';
import { packageRoot } from '../../src/util/package-root.js';
import { TopicReader, committedOffset, createTopics, produce, testKafka, uniqueWorkerTopics, waitFor, workerTopicEnv } from '../helpers/kafka.js';
import { WorkerProcess } from '../helpers/worker-process.js';

const MINILM_DIR = join(packageRoot(), '.cache', 'minilm');
const MODEL = join(MINILM_DIR, 'model.onnx');
const CONFIG = loadConfig(process.env);
/** Short texts keep the test quick (a 256-token text takes about 0.1 s on one core). */
const SHORT = 600;
const N_REFS = 300;
const N_REVIEWS = 40;
const N_SPAM = 40;

const bundleDir = mkdtempSync(join(tmpdir(), 'qualm-it-text-'));
let broker: LocalKafka | undefined;
let kafka: Kafka;
let encoder: OnnxEncoder | undefined;
const workers: WorkerProcess[] = [];
const readers: TopicReader[] = [];

/** n texts of `set` no longer than `maxChars`, balanced by label, seeded. */
function pick(set: TextSet, n: number, seed: number, maxChars: number): TextSet {
  const fits = set.texts.flatMap((t, i) => (t.length <= maxChars ? [i] : []));
  const short = subsetTexts(set, fits);
  return subsetTexts(short, balancedSubsample(short.labels, n, seed));
}

before(async () => {
  // A missing model is a failure with the way out, never a skip.
  for (const f of ['model.onnx', 'model.json', 'tokenizer.json']) {
    if (!existsSync(join(MINILM_DIR, f))) {
      throw new Error(`all-MiniLM-L6-v2 is not in ${MINILM_DIR} (${f} is missing): fetch it with  bash scripts/fetch-minilm.sh`);
    }
  }
  broker = await startLocalKafka();
  kafka = testKafka(broker.brokers);
  encoder = await OnnxEncoder.open(MODEL);
  // The reference bundle: short IMDB train reviews, labelled neg/pos, through the real builder.
  const refs = pick(loadImdb('train'), N_REFS, 11, SHORT);
  const t0 = Date.now();
  const emb = await encoder.embedTexts(refs.texts);
  console.log(`embedded ${refs.n} reference reviews in ${Date.now() - t0} ms`);
  await buildBundle(bundleDir, {
    embeddings: emb,
    dim: encoder.dim,
    ids: refs.ids,
    labels: Array.from(refs.labels),
    labelNames: refs.labelNames,
    model: { name: encoder.manifest.name, version: encoder.manifest.version, sha256: encoder.sha256 },
    source: { test: 'text integration', data: refs.origin },
    k: 20,
    densityWeight: CONFIG.densityWeight,
    referenceScore: referenceScorer({ densityWeight: CONFIG.densityWeight, numLabels: refs.labelNames.length }),
  });
});

after(async () => {
  for (const r of readers) await r.stop().catch(() => undefined);
  for (const w of workers) await w.stop('SIGKILL').catch(() => undefined);
  await encoder?.close();
  await broker?.stop();
  rmSync(bundleDir, { recursive: true, force: true });
});

const cosine = (z: Float32Array, dim: number, a: number, b: number): number => {
  let s = 0;
  for (let d = 0; d < dim; d++) s += (z[a * dim + d] as number) * (z[b * dim + d] as number);
  return s;
};

test('MiniLM text embeddings: sentence-transformers values, unit norm, independent of the batch they run in', async () => {
  const enc = encoder as OnnxEncoder;
  assert.equal(enc.inputKind, 'text');
  assert.equal(enc.dim, 384);
  assert.equal(enc.maxTokens, 256);
  const texts = ['A man is eating food.', 'A man is eating a piece of bread.', 'The new movie is awesome.', 'The stock market fell sharply today.'];
  const z = await enc.embedTexts(texts);
  // sentence-transformers' all-MiniLM-L6-v2 gives 0.7553 for this pair (its documentation's example).
  assert.ok(Math.abs(cosine(z, 384, 0, 1) - 0.7553) < 2e-3, `cos = ${cosine(z, 384, 0, 1)}`);
  assert.ok(cosine(z, 384, 0, 3) < 0.2);
  for (let r = 0; r < texts.length; r++) assert.ok(Math.abs(Math.sqrt(cosine(z, 384, r, r)) - 1) < 1e-5);
  // Alone (no padding) and in a run padded to a 256-token text: the same vector.
  const long = 'word '.repeat(400);
  const alone = await enc.embedTexts([texts[2] as string]);
  const padded = await enc.embedTexts([long, texts[2] as string], { batch: 2 });
  for (let d = 0; d < 384; d++) assert.ok(Math.abs((alone[d] as number) - (padded[384 + d] as number)) < 1e-4, 'padding does not change an embedding');
  // The un-normalised mean-pooled vector is the normalised one times its norm.
  const raw = await enc.embedTexts([texts[2] as string], { normalize: false });
  const norm = Math.hypot(...raw);
  assert.ok(norm > 1.5, `mean-pooled norm ${norm}`);
  for (let d = 0; d < 384; d++) assert.ok(Math.abs((raw[d] as number) / norm - (alone[d] as number)) < 1e-5);
  // A text model refuses features, with a code.
  await assert.rejects(enc.embed(new Float32Array(4), 1), { code: 'QUALM_MODEL_INVALID' });
});

test('the worker scores text samples once each, sends malformed text to the DLQ, and finds spam less certain than reviews', { timeout: 120_000 }, async () => {
  const t = uniqueWorkerTopics();
  await createTopics(kafka, [t.input, t.review, t.scores, t.dlq]);
  const reviews = pick(loadImdb('test'), N_REVIEWS, 12, SHORT);
  const spam = pick(loadSpamAssassin(['spam-1', 'spam-2']), N_SPAM, 13, 20_000);
  const good: Message[] = [
    ...reviews.texts.map((text, i) => ({ key: `r-${i}`, value: JSON.stringify({ id: `r-${i}`, input: { text }, meta: { source: 'imdb/test', label: reviews.labelNames[reviews.labels[i] as number] } }) })),
    ...spam.texts.map((text, i) => ({ key: `m-${i}`, value: JSON.stringify({ id: `m-${i}`, input: { text }, meta: { source: 'spam-assassin' } }) })),
  ];
  const bad: [Message, string][] = [
    [{ key: 'b1', value: JSON.stringify({ id: 'b1', input: { text: 42 } }) }, 'QUALM_BAD_SCHEMA'],
    [{ key: 'b2', value: JSON.stringify({ id: 'b2', input: { text: ' \n\t ' } }) }, 'QUALM_EMPTY_TEXT'],
    [{ key: 'b3', value: JSON.stringify({ id: 'b3', input: { text: 'too long '.repeat(8000) } }) }, 'QUALM_TEXT_TOO_LONG'],
    [{ key: 'b4', value: JSON.stringify({ id: 'b4', input: { features: [0.1, 0.2] } }) }, 'QUALM_UNSUPPORTED_INPUT'],
    [{ key: 'b5', value: JSON.stringify({ id: 'b5', input: { text: '' } }) }, 'QUALM_EMPTY_TEXT'],
  ];
  // Reviews and mails alternate, malformed messages in between.
  const all: Message[] = [];
  for (let i = 0; i < N_REVIEWS; i++) {
    all.push(good[i] as Message, good[N_REVIEWS + i] as Message);
    if (i % 8 === 3) all.push((bad[Math.floor(i / 8)] as [Message, string])[0]);
  }
  assert.equal(all.length, good.length + bad.length);
  await produce(kafka, t.input, all);

  const scores = await TopicReader.start(kafka, t.scores);
  const dlq = await TopicReader.start(kafka, t.dlq);
  const review = await TopicReader.start(kafka, t.review);
  readers.push(scores, dlq, review);
  const t0 = Date.now();
  const w = await WorkerProcess.start({
    ...workerTopicEnv((broker as LocalKafka).brokers, t),
    QUALM_BUNDLE_DIR: bundleDir,
    QUALM_MODEL_PATH: MODEL,
    QUALM_SESSION_TIMEOUT_MS: '10000',
    QUALM_HEARTBEAT_INTERVAL_MS: '1000',
  });
  workers.push(w);
  await scores.waitForCount(good.length, 'score records', 90_000);
  await dlq.waitForCount(bad.length, 'DLQ records');
  await waitFor(async () => (await committedOffset(kafka, t.group, t.input)) === all.length, `offsets committed to ${all.length}`);
  console.log(`worker scored ${good.length} texts in ${Date.now() - t0} ms (start included)`);

  const s = scores.json<ScoreRecord>();
  assert.equal(s.length, good.length, 'exactly one score per valid text');
  assert.deepEqual(new Set(s.map((r) => r.id)), new Set(good.map((m) => m.key)));
  assert.ok(s.every((r) => r.model_version === 'all-MiniLM-L6-v2@1' && r.uncertainty >= 0 && r.uncertainty <= 1));
  assert.ok(s.every((r) => r.suggested_label === 'neg' || r.suggested_label === 'pos'));
  const codes = dlq.messages.map((m) => readDlqHeaders(m.headers as Record<string, unknown>));
  assert.deepEqual(
    codes.map((c) => c?.code),
    bad.map(([, code]) => code),
  );
  for (const [i, c] of codes.entries()) {
    assert.ok(c !== undefined && c.message.length > 10, 'a readable reason');
    assert.equal(dlq.messages[i]?.value?.toString(), (bad[i] as [Message, string])[0].value?.toString(), 'original bytes preserved');
  }

  // Spam is far from movie reviews: higher uncertainty on average, and flagged more often.
  const of = (source: string): ScoreRecord[] => s.filter((r) => r.meta?.source === source);
  const mean = (rs: ScoreRecord[]): number => rs.reduce((a, r) => a + r.uncertainty, 0) / rs.length;
  const flaggedShare = (rs: ScoreRecord[]): number => rs.filter((r) => r.flagged).length / rs.length;
  const [rv, sp] = [of('imdb/test'), of('spam-assassin')];
  console.log(
    `mean uncertainty: reviews ${mean(rv).toFixed(3)}, spam ${mean(sp).toFixed(3)}; flagged: reviews ${flaggedShare(rv).toFixed(3)}, spam ${flaggedShare(sp).toFixed(3)}; ` +
      `mean density percentile: reviews ${(rv.reduce((a, r) => a + r.signals.density_percentile, 0) / rv.length).toFixed(3)}, spam ${(sp.reduce((a, r) => a + r.signals.density_percentile, 0) / sp.length).toFixed(3)}`,
  );
  assert.ok(mean(sp) > mean(rv) + 0.2, `spam ${mean(sp)} vs reviews ${mean(rv)}`);
  assert.ok(flaggedShare(sp) > flaggedShare(rv), `flagged spam ${flaggedShare(sp)} vs reviews ${flaggedShare(rv)}`);

  // Flagged samples have complete review records, with the IMDB references as neighbours.
  const flagged = new Set(s.filter((r) => r.flagged).map((r) => r.id));
  await review.waitForCount(flagged.size, 'review records');
  const reviewsOut = review.json<ReviewRecord>();
  assert.deepEqual(new Set(reviewsOut.map((r) => r.id)), flagged);
  for (const r of reviewsOut) {
    assert.equal(r.neighbors.length, 20);
    assert.ok(r.neighbors.every((n) => n.ref_id.startsWith('imdb/train#') && (n.label === 'neg' || n.label === 'pos')));
    assert.equal(r.embedding.dim, 384);
  }
  assert.deepEqual(await w.stop('SIGTERM'), { code: 0, signal: null });
});
