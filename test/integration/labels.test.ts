// Reviewed items come back: the worker flags samples on the real broker, a (stand-in) reviewer
// labels them on the labels topic, build-index --labels folds them into the next bundle on top
// of the current one without embedding anything again, and the running worker swaps it in.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import type { Kafka, Message } from 'kafkajs';
import { sampleMix } from '../../src/cli/sample-mix.js';
import { loadConfig } from '../../src/config/index.js';
import { decodeFloat32Base64, parseLabelRecord, type ReviewRecord, type ScoreRecord } from '../../src/contracts/index.js';
import { SLICE_FASHION_MNIST_DIR, loadFashionMnist, loadMnist } from '../../src/datasets/index.js';
import { loadCurrentBundle } from '../../src/index/index.js';
import { startLocalKafka, type LocalKafka } from '../../src/local-kafka/index.js';
import { buildSliceBundle, embedSlice } from '../helpers/bundles.js';
import { TopicReader, createTopics, produce, testKafka, uniqueName, uniqueWorkerTopics, waitFor, workerTopicEnv } from '../helpers/kafka.js';
import { WorkerProcess } from '../helpers/worker-process.js';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '../../bin/qualm.js');
const CONFIG = loadConfig(process.env);
const bundleDir = mkdtempSync(join(tmpdir(), 'qualm-labels-'));
let broker: LocalKafka;
let kafka: Kafka;
let worker: WorkerProcess | undefined;
const readers: TopicReader[] = [];

before(async () => {
  broker = await startLocalKafka();
  kafka = testKafka(broker.brokers);
});

after(async () => {
  for (const r of readers) await r.stop().catch(() => undefined);
  await worker?.stop('SIGKILL').catch(() => undefined);
  await broker?.stop();
  rmSync(bundleDir, { recursive: true, force: true });
});

test('labels of reviewed samples become references of the next bundle, which the running worker swaps in', { timeout: 300_000 }, async () => {
  const refs = await embedSlice(CONFIG.modelPath);
  const v1 = await buildSliceBundle(refs, bundleDir, 0, 3000, { version: 'v1', densityWeight: CONFIG.densityWeight });
  const t = { ...uniqueWorkerTopics(), labels: uniqueName('labels') };
  await createTopics(kafka, [t.input, t.review, t.scores, t.dlq]);
  const env = {
    ...workerTopicEnv(broker.brokers, t),
    QUALM_LABELS_TOPIC: t.labels,
    QUALM_BUNDLE_DIR: bundleDir,
    QUALM_MODEL_PATH: CONFIG.modelPath,
    QUALM_REFRESH_INTERVAL_MS: '300',
  };
  worker = await WorkerProcess.start(env);
  const w = worker;
  const review = await TopicReader.start(kafka, t.review);
  const scores = await TopicReader.start(kafka, t.scores);
  readers.push(review, scores);

  // Fashion-MNIST test images with 30% MNIST digits: plenty get flagged by a 3000-reference bundle.
  const mix = sampleMix(loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]), loadMnist(), { oodShare: 0.3, malformedShare: 0, seed: 11, oversizeBytes: 0, idPrefix: 'lab' });
  const first: Message[] = Array.from({ length: 400 }, () => {
    const m = mix.next().value as { key: string | null; value: string };
    return { key: m.key, value: m.value };
  });
  await produce(kafka, t.input, first);
  await scores.waitForCount(400, 'scores of the first round');
  // The review records were written with the scores, but the review topic's reader may be a fetch behind.
  await review.waitForCount(scores.json<ScoreRecord>().filter((s) => s.flagged).length, 'the review records of the first round');
  const flagged = review.json<ReviewRecord>();
  const fashionFlagged = flagged.filter((r) => r.meta?.source === 'fashion-mnist/t10k');
  assert.ok(fashionFlagged.length >= 10, `${fashionFlagged.length} Fashion-MNIST samples flagged`);

  // A stand-in reviewer labels 60 flagged samples with their ground truth; one more label is malformed.
  const labelled = await run(process.execPath, [BIN, 'label', '--simulate', '60', '--reviewer', 'it'], { env: { ...process.env, ...env } });
  const published = JSON.parse(labelled.stdout.trim().split('\n').pop() ?? '{}') as { published: number };
  assert.equal(published.published, Math.min(60, flagged.length));
  await produce(kafka, t.labels, [{ key: 'junk', value: '{"id": "x"' }]);

  const built = await run(process.execPath, [BIN, 'build-index', '--labels'], { env: { ...process.env, ...env } });
  const res = JSON.parse(built.stdout.trim().split('\n').pop() ?? '{}') as { version: string; from: string; count: number; added: number; skipped: Record<string, number> };
  const labels = await (async () => {
    const r = await TopicReader.start(kafka, t.labels);
    readers.push(r);
    await r.waitForCount(published.published + 1, 'label records');
    return r.messages.flatMap((m) => {
      const parsed = parseLabelRecord(m.value);
      return parsed.ok ? [parsed.record] : [];
    });
  })();
  // Fashion-MNIST labels are in the bundle's label set; MNIST digits' are not and are counted out.
  const expectedAdded = labels.filter((l) => refs.labelNames.includes(l.label)).length;
  assert.equal(res.from, v1);
  assert.equal(res.added, expectedAdded);
  assert.equal(res.count, 3000 + expectedAdded);
  assert.equal(res.skipped.unknown_label ?? 0, labels.length - expectedAdded);
  assert.equal(res.skipped.bad_label_record, 1);

  // The running worker swaps the new bundle in; it holds the reviewed samples under their labels.
  await waitFor(async () => new RegExp(`^qualm_bundle_info\\{version="${res.version}"`, 'm').test(await w.metrics()), `worker serves ${res.version}`, 60_000);
  const snap = await loadCurrentBundle(bundleDir, { efSearch: 64 });
  assert.equal(snap.version, res.version);
  const byId = new Map(flagged.map((r) => [r.id, r]));
  for (const l of labels.filter((x) => refs.labelNames.includes(x.label))) {
    const r = byId.get(l.id);
    assert.ok(r);
    // Searching with the embedding the review record carried finds the new reference itself, labelled as reviewed.
    const embedding = decodeFloat32Base64(r.embedding.b64);
    assert.equal(embedding?.length, refs.dim);
    const nb = snap.search(embedding ?? [], 1);
    assert.equal(nb.ids[0], `review:${l.id}`);
    assert.equal(snap.labelName(nb.labels?.[0] ?? -1), l.label);
  }

  // Folding again adds nothing: every label is already a reference.
  const again = await run(process.execPath, [BIN, 'build-index', '--labels'], { env: { ...process.env, ...env } });
  const res2 = JSON.parse(again.stdout.trim().split('\n').pop() ?? '{}') as { version: string | null; added: number; skipped: Record<string, number> };
  assert.equal(res2.version, null);
  assert.equal(res2.added, 0);
  assert.equal(res2.skipped.already_a_reference, expectedAdded);
  const manifest = JSON.parse(readFileSync(join(bundleDir, res.version, 'manifest.json'), 'utf8')) as { source: { reviewed_labels?: { added?: number } } };
  assert.equal(manifest.source.reviewed_labels?.added, expectedAdded, 'the manifest records where the new references came from');
  assert.deepEqual(await w.stop('SIGTERM'), { code: 0, signal: null });
  worker = undefined;
});
