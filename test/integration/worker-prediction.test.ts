// The downstream model's prediction through a real worker: a real Kafka broker, the committed
// demo encoder, a real HNSW bundle with a `with_model` part (built by `qualm build-index
// --references` from references that carry a stand-in model's predictions), and `qualm worker`
// as a child process. Samples with a prediction (probs, logits, label + confidence) are scored
// by the combination with the model's signals; samples without one, or with one that does not
// fit the bundle, by the embedding-only fallback; a malformed one goes to the DLQ.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Kafka, Message } from 'kafkajs';
import { readDlqHeaders, type FileRef, type ReviewRecord, type ScoreRecord } from '../../src/contracts/index.js';
import { SLICE_FASHION_MNIST_DIR, loadFashionMnist, row } from '../../src/datasets/index.js';
import { startLocalKafka, type LocalKafka } from '../../src/local-kafka/index.js';
import { packageRoot } from '../../src/util/package-root.js';
import { seededRandom } from '../../src/util/random.js';
import { TopicReader, committedOffset, createTopics, produce, testKafka, uniqueWorkerTopics, waitFor, workerTopicEnv } from '../helpers/kafka.js';
import { WorkerProcess } from '../helpers/worker-process.js';

const ROOT = packageRoot();
const MODEL = join(ROOT, 'models', 'fmnist-simclr.onnx');
const dir = mkdtempSync(join(tmpdir(), 'qualm-it-worker-prediction-'));
const bundleDir = join(dir, 'bundles');
const cliEnv = { ...process.env, QUALM_BUNDLE_DIR: bundleDir, QUALM_MODEL_PATH: MODEL, QUALM_LOG_LEVEL: 'warn' };
let broker: LocalKafka;
let kafka: Kafka;
const workers: WorkerProcess[] = [];
const readers: TopicReader[] = [];

function qualm(args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [join(ROOT, 'bin/qualm.js'), ...args], { env: cliEnv, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
}

/** A stand-in classifier's probabilities over 10 labels: the true label on top 80% of the time, less peaked when wrong. */
function standIn(label: number, rnd: () => number): number[] {
  const wrong = rnd() < 0.2;
  const top = wrong ? (label + 1 + Math.floor(rnd() * 9)) % 10 : label;
  const peak = wrong ? 0.3 + 0.4 * rnd() : 0.6 + 0.4 * rnd();
  return Array.from({ length: 10 }, (_, c) => (c === top ? peak : (1 - peak) / 9));
}

const pixels = (set: ReturnType<typeof loadFashionMnist>, i: number): number[] => Array.from(row(set, i), (v) => Math.round(v * 10000) / 10000);

before(async () => {
  broker = await startLocalKafka();
  kafka = testKafka(broker.brokers);
  // References with labels and the stand-in model's predictions: build-index fits the with_model part from them.
  const rnd = seededRandom(29);
  const train = loadFashionMnist('train', [SLICE_FASHION_MNIST_DIR]);
  const refs: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const y = train.labels[i] as number;
    refs.push(JSON.stringify({ id: `ref-${i}`, input: { features: pixels(train, i) }, label: train.labelNames[y], prediction: { probs: standIn(y, rnd) } }));
  }
  writeFileSync(join(dir, 'refs.jsonl'), `${refs.join('\n')}\n`);
  const b = qualm(['build-index', '--references', join(dir, 'refs.jsonl')]);
  assert.equal(b.status, 0, b.stderr.slice(-3000));
});

after(async () => {
  for (const r of readers) await r.stop().catch(() => undefined);
  for (const w of workers) await w.stop('SIGKILL').catch(() => undefined);
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function reader(topic: string): Promise<TopicReader> {
  const r = await TopicReader.start(kafka, topic);
  readers.push(r);
  return r;
}

type Kind = 'probs' | 'logits' | 'label' | 'none' | 'unfit';

test('a worker scores samples with a prediction by the with_model combination (model signals, model_prediction_used 1), those without or with an unfit one by the fallback (0), DLQs a malformed one; the scores equal qualm score\'s', { timeout: 300_000 }, async () => {
  const version = readFileSync(join(bundleDir, 'CURRENT'), 'utf8').trim();
  const manifest = JSON.parse(readFileSync(join(bundleDir, version, 'manifest.json'), 'utf8')) as { scoring: { combination: { with_model?: { features: string[] } } } };
  assert.ok(manifest.scoring.combination.with_model !== undefined, 'the bundle has a with_model part');

  const rnd = seededRandom(31);
  const test10k = loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]);
  const kinds: Kind[] = ['probs', 'logits', 'label', 'none'];
  const kindOf = new Map<string, Kind>();
  const good: Message[] = [];
  for (let i = 0; i < 40; i++) {
    const id = `s-${i}`;
    const kind: Kind = i === 21 ? 'unfit' : (kinds[i % 4] as Kind);
    const probs = standIn(test10k.labels[i] as number, rnd);
    const top = probs.indexOf(Math.max(...probs));
    const prediction =
      kind === 'probs' ? { probs }
      : kind === 'logits' ? { logits: probs.map((p) => Math.log(p) + 3) }
      : kind === 'label' ? { label: test10k.labelNames[top], confidence: probs[top] }
      : kind === 'unfit' ? { probs: [0.25, 0.75] } // well-formed, but 2 classes against the bundle's 10
      : undefined;
    kindOf.set(id, kind);
    good.push({ key: id, value: JSON.stringify({ id, input: { features: pixels(test10k, i) }, ...(prediction === undefined ? {} : { prediction }) }) });
  }
  const malformed: Message = { key: 'bad', value: JSON.stringify({ id: 'bad', input: { features: pixels(test10k, 50) }, prediction: { probs: [0.5, 0.6] } }) };
  const all = [...good.slice(0, 17), malformed, ...good.slice(17)];

  const t = uniqueWorkerTopics();
  await createTopics(kafka, [t.input, t.review, t.scores, t.dlq]);
  await produce(kafka, t.input, all);
  const scores = await reader(t.scores);
  const dlq = await reader(t.dlq);
  const review = await reader(t.review);
  const w = await WorkerProcess.start({
    ...workerTopicEnv(broker.brokers, t),
    QUALM_BUNDLE_DIR: bundleDir,
    QUALM_MODEL_PATH: MODEL,
    QUALM_SESSION_TIMEOUT_MS: '10000',
    QUALM_HEARTBEAT_INTERVAL_MS: '1000',
  });
  workers.push(w);
  await scores.waitForCount(good.length, 'score records', 120_000);
  await dlq.waitForCount(1, 'DLQ records');
  await waitFor(async () => (await committedOffset(kafka, t.group, t.input)) === all.length, `offsets committed to ${all.length}`);

  // The malformed prediction: alone in the DLQ, with its code and the field named.
  assert.equal(dlq.messages.length, 1);
  const h = readDlqHeaders(dlq.messages[0]?.headers);
  assert.equal(h?.code, 'QUALM_BAD_PREDICTION');
  assert.match(h.message, /prediction\.probs sum to 1\.1, not 1/);
  assert.equal(dlq.messages[0]?.value?.toString(), malformed.value?.toString());

  const s = scores.json<ScoreRecord>();
  assert.deepEqual(s.map((r) => r.id).sort(), [...kindOf.keys()].sort(), 'every good sample scored once');
  for (const r of s) {
    const kind = kindOf.get(r.id) as Kind;
    const sig = r.signals;
    assert.ok(r.uncertainty >= 0 && r.uncertainty <= 1 && r.predicted_accuracy !== null, r.id);
    if (kind === 'probs' || kind === 'logits' || kind === 'label') {
      assert.equal(sig.model_prediction_used, 1, `${r.id} (${kind}): scored with the model's signals`);
      assert.ok(typeof sig.model_confidence === 'number' && sig.model_confidence > 0 && sig.model_confidence <= 1, `${r.id}: model_confidence ${sig.model_confidence}`);
      assert.ok(typeof sig.model_entropy === 'number' && sig.model_entropy >= 0 && sig.model_entropy <= 1, `${r.id}: model_entropy`);
      assert.ok(typeof sig.model_neighbor_agreement === 'number', `${r.id}: model_neighbor_agreement`);
    } else {
      assert.equal(sig.model_prediction_used, 0, `${r.id} (${kind}): the embedding-only fallback`);
      assert.equal(sig.model_confidence, null, r.id);
      assert.equal(sig.model_entropy, null, r.id);
      assert.equal(sig.model_neighbor_agreement, null, r.id);
    }
  }
  // The logits form is the probs form after a softmax: the same MSP as the probabilities it came from.
  const byId = new Map(s.map((r) => [r.id, r]));
  for (const [id, kind] of kindOf) {
    if (kind !== 'logits') continue;
    const probs = (JSON.parse(good.find((m) => m.key === id)?.value?.toString() ?? '{}') as { prediction: { logits: number[] } }).prediction.logits.map((l) => Math.exp(l - 3));
    assert.ok(Math.abs((byId.get(id)?.signals.model_confidence as number) - Math.max(...probs)) < 1e-6, id);
  }

  // Flagged samples' review records carry the same signals.
  const flagged = s.filter((r) => r.flagged);
  await review.waitForCount(flagged.length, 'review records');
  for (const r of review.json<ReviewRecord>()) assert.deepEqual(r.signals, byId.get(r.id)?.signals, r.id);

  // The worker's path scores exactly as qualm score does, the same bundle on the same inputs.
  writeFileSync(join(dir, 'same.jsonl'), `${good.map((m) => m.value?.toString()).join('\n')}\n`);
  const cli = qualm(['score', '--in', join(dir, 'same.jsonl')]);
  assert.equal(cli.status, 0, cli.stderr.slice(-3000));
  const offline = cli.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as ScoreRecord<FileRef>);
  assert.equal(offline.length, good.length);
  for (const o of offline) {
    const r = byId.get(o.id);
    assert.ok(r !== undefined, o.id);
    assert.ok(Math.abs(r.uncertainty - o.uncertainty) < 1e-9, `${o.id}: worker ${r.uncertainty} vs score ${o.uncertainty}`);
    assert.deepEqual(r.signals, o.signals, o.id);
    assert.equal(r.flagged, o.flagged, o.id);
  }
  assert.equal(w.child.exitCode, null, 'the worker is still up');
});
