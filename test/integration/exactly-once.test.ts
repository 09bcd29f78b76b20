// QUALM_DELIVERY=exactly_once end to end: a real Kafka broker, the committed ONNX encoder, a
// real HNSW bundle, and `qualm worker` as a child process killed with SIGKILL again and again;
// and the worker in this process, whose transport loses the answer to one committed transaction.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Kafka, Message } from 'kafkajs';
import { sampleMix } from '../../src/cli/sample-mix.js';
import { loadConfig } from '../../src/config/index.js';
import { readDlqHeaders, type ReviewRecord, type ScoreRecord } from '../../src/contracts/index.js';
import { SLICE_FASHION_MNIST_DIR, loadFashionMnist, loadMnist } from '../../src/datasets/index.js';
import { OnnxEncoder } from '../../src/encoder/index.js';
import { LocalBundleStore, loadCurrentFromStore } from '../../src/index/index.js';
import { startLocalKafka, type LocalKafka } from '../../src/local-kafka/index.js';
import { createLogger } from '../../src/logging/index.js';
import { QualmMetrics } from '../../src/metrics/index.js';
import { StreamWorker } from '../../src/stream/index.js';
import { KafkajsTransport, transactionalId, type Transport } from '../../src/transport/index.js';
import { TopicReader, committedOffset, createTopics, produce, testKafka, uniqueWorkerTopics, waitFor, workerTopicEnv } from '../helpers/kafka.js';
import { buildSliceBundle, embedSlice } from '../helpers/bundles.js';
import { WorkerProcess } from '../helpers/worker-process.js';

const CONFIG = loadConfig(process.env);
const bundleDir = mkdtempSync(join(tmpdir(), 'qualm-eos-bundle-'));
let broker: LocalKafka;
let kafka: Kafka;
const workers: WorkerProcess[] = [];
const readers: TopicReader[] = [];

before(async () => {
  broker = await startLocalKafka();
  kafka = testKafka(broker.brokers);
  const refs = await embedSlice(CONFIG.modelPath);
  await buildSliceBundle(refs, bundleDir, 0, refs.count, { densityWeight: CONFIG.densityWeight, model: refs.model });
});

after(async () => {
  for (const r of readers) await r.stop().catch(() => undefined);
  for (const w of workers) await w.stop('SIGKILL').catch(() => undefined);
  await broker?.stop();
  rmSync(bundleDir, { recursive: true, force: true });
});

async function reader(topic: string, readUncommitted = false): Promise<TopicReader> {
  const r = await TopicReader.start(kafka, topic, { readUncommitted });
  readers.push(r);
  return r;
}

/** Input offsets of the records on a topic: a score's source, or a DLQ copy's source header. */
function sourceOffsets(r: TopicReader, kind: 'score' | 'dlq'): number[] {
  if (kind === 'score') return r.json<ScoreRecord>().map((s) => Number(s.source.offset));
  return r.messages.map((m) => {
    const info = readDlqHeaders(m.headers);
    assert.ok(info !== undefined, 'every DLQ record has its headers');
    return Number(info.source.offset);
  });
}

function duplicates(offsets: readonly number[]): number {
  return offsets.length - new Set(offsets).size;
}

test('exactly_once under repeated kill -9: a read_committed reader sees every input scored (or in the DLQ) exactly once, with its review record once', { timeout: 420_000 }, async () => {
  const t = uniqueWorkerTopics();
  await createTopics(kafka, [t.input, t.review, t.scores, t.dlq]);
  // Enough that the four kills land mid-stream however fast the worker is (it drains ~2,500 msg/s here).
  const n = 8000;
  const mix = sampleMix(loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]), loadMnist(), { oodShare: 0.3, malformedShare: 0.03, seed: 11, oversizeBytes: 0, idPrefix: 'e' });
  const inputs: Message[] = Array.from({ length: n }, () => {
    const m = mix.next().value as { key: string | null; value: string };
    return { key: m.key, value: m.value };
  });
  await produce(kafka, t.input, inputs);

  const scores = await reader(t.scores);
  const dlq = await reader(t.dlq);
  const review = await reader(t.review);
  // What a reader that ignores transactions sees: the aborted attempts too.
  const rawScores = await reader(t.scores, true);
  const env = {
    ...workerTopicEnv(broker.brokers, t),
    QUALM_BUNDLE_DIR: bundleDir,
    QUALM_MODEL_PATH: CONFIG.modelPath,
    QUALM_SESSION_TIMEOUT_MS: '6000',
    QUALM_HEARTBEAT_INTERVAL_MS: '1000',
    QUALM_DELIVERY: 'exactly_once',
    QUALM_INFERENCE_BATCH: '64',
  };
  const done = (): number => scores.messages.length + dlq.messages.length;

  const kills = 4;
  for (let i = 0; i < kills; i++) {
    const w = await WorkerProcess.start(env);
    workers.push(w);
    const from = done();
    // Killed while it is busy: some of its jobs committed, others published but not committed.
    await waitFor(() => done() >= from + 300, `kill ${i + 1}: 300 more inputs done (have ${done()})`, 120_000);
    await waitFor(() => rawScores.messages.length > scores.messages.length, `kill ${i + 1}: records of an open transaction`, 10_000).catch(() => undefined);
    const killed = await w.stop('SIGKILL');
    assert.equal(killed.signal, 'SIGKILL');
  }
  const committedAtLastKill = await committedOffset(kafka, t.group, t.input);
  assert.ok(committedAtLastKill > 0 && committedAtLastKill < n, `committed ${committedAtLastKill} of ${n} after ${kills} kills`);

  const last = await WorkerProcess.start(env);
  workers.push(last);
  await waitFor(() => done() >= n, `all ${n} inputs done (have ${done()})`, 240_000);
  await waitFor(async () => (await committedOffset(kafka, t.group, t.input)) === n, 'everything committed');
  // A short grace for any stray late record (there must be none).
  await new Promise((r) => setTimeout(r, 2000));

  const offsets = [...sourceOffsets(scores, 'score'), ...sourceOffsets(dlq, 'dlq')];
  assert.equal(duplicates(offsets), 0, 'no input is scored twice for a read_committed reader');
  assert.deepEqual(new Set(offsets), new Set(Array.from({ length: n }, (_, i) => i)), 'every input offset once');
  assert.ok(dlq.messages.length > 0, 'the malformed inputs are in the DLQ');

  const flagged = scores.json<ScoreRecord>().filter((s) => s.flagged).map((s) => s.id);
  const reviewed = review.json<ReviewRecord>().map((r) => r.id);
  assert.equal(reviewed.length, new Set(reviewed).size, 'each review record once');
  assert.deepEqual(new Set(reviewed), new Set(flagged), 'a review record for exactly the flagged scores');

  // The kills did leave work to redo: records of aborted transactions, which read_committed hides.
  const aborted = rawScores.messages.length - scores.messages.length;
  console.log(`exactly-once: ${kills} kills, committed ${committedAtLastKill} at the last; ${aborted} score records of aborted transactions hidden from read_committed`);
  assert.ok(aborted > 0, 'at least one kill landed inside a transaction (otherwise the test shows nothing)');
  assert.equal(duplicates(sourceOffsets(rawScores, 'score')) > 0, true, 'the read_uncommitted reader sees the redone inputs twice');
  assert.ok(last.log().includes(transactionalId('qualm', t.group, t.input, 0)), 'the worker names its transactional id in its log');
});

/** The worker's transport, whose `nth` transaction commits for real and then throws, as when the broker's answer to EndTxn is lost. */
function losingOneCommitAnswer(real: Transport, nth: number): { transport: Transport; lied: () => boolean } {
  let commits = 0;
  return {
    lied: () => commits >= nth,
    transport: {
      groupConsumer: (o) => real.groupConsumer(o),
      publisher: () => real.publisher(),
      partitionTransactions: (o) => {
        const txs = real.partitionTransactions(o);
        return {
          commit: async (work, timers) => {
            await txs.commit(work, timers);
            if (++commits === nth) throw new Error('simulated: the answer to EndTxn was lost (the transaction did commit)');
          },
          settle: (topic, partition) => txs.settle(topic, partition),
          retain: (owned) => txs.retain(owned),
          close: () => txs.close(),
        };
      },
      readToEnd: (topic, onRecord, opts) => real.readToEnd(topic, onRecord, opts),
      follow: (topics, onRecord) => real.follow(topics, onRecord),
      ensureTopics: (topics) => real.ensureTopics(topics),
      isRebalance: (err) => real.isRebalance(err),
    },
  };
}

test('exactly_once, a commit that did commit but reported a failure: the worker reads on from the committed offset, and nothing is written twice', { timeout: 180_000 }, async () => {
  const t = uniqueWorkerTopics();
  await createTopics(kafka, [t.input, t.review, t.scores, t.dlq]);
  const n = 600;
  const mix = sampleMix(loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]), loadMnist(), { oodShare: 0.2, malformedShare: 0.03, seed: 12, oversizeBytes: 0, idPrefix: 'doubt' });
  await produce(
    kafka,
    t.input,
    Array.from({ length: n }, () => {
      const m = mix.next().value as { key: string | null; value: string };
      return { key: m.key, value: m.value };
    }),
  );
  const config = loadConfig({
    ...workerTopicEnv(broker.brokers, t),
    QUALM_BUNDLE_DIR: bundleDir,
    QUALM_MODEL_PATH: CONFIG.modelPath,
    QUALM_DELIVERY: 'exactly_once',
    QUALM_INFERENCE_BATCH: '32',
    QUALM_FROM_BEGINNING: 'true',
  });
  const lines: string[] = [];
  const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
  const encoder = await OnnxEncoder.open(config.modelPath);
  const snapshot = await loadCurrentFromStore(new LocalBundleStore(bundleDir), { efSearch: config.efSearch, expectModelSha256: encoder.sha256 });
  const { transport, lied } = losingOneCommitAnswer(KafkajsTransport.fromConfig(config, logger), 1);
  const worker = new StreamWorker({ config, transport, embedder: encoder, snapshot: () => snapshot, metrics: new QualmMetrics({ defaultMetrics: false }), logger });
  const scores = await reader(t.scores);
  const dlq = await reader(t.dlq);
  try {
    await worker.start();
    await waitFor(() => scores.messages.length + dlq.messages.length >= n, `all ${n} inputs done`, 120_000);
    await new Promise((r) => setTimeout(r, 2000)); // a duplicate would be written by now
  } finally {
    await worker.close();
    await encoder.close();
  }
  assert.ok(lied(), 'the first transaction reported a failure after committing');
  const offsets = [...sourceOffsets(scores, 'score'), ...sourceOffsets(dlq, 'dlq')];
  assert.equal(duplicates(offsets), 0, 'no input is written twice');
  assert.deepEqual(new Set(offsets), new Set(Array.from({ length: n }, (_, i) => i)), 'every input once');
  const resync = lines.map((l) => JSON.parse(l) as { event?: string; fetchedFrom?: string; committed?: string }).find((l) => l.event === 'partition_resync');
  assert.ok(resync !== undefined, `the worker says it read on from the committed offset; its log:\n${lines.filter((l) => !l.includes('"level":20')).join('').slice(-6000)}`);
  assert.ok(BigInt(resync.committed ?? '0') > BigInt(resync.fetchedFrom ?? '0'), `it skipped the committed job (${resync.fetchedFrom} -> ${resync.committed})`);
});
