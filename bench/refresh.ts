// npm run bench:refresh [-- --n 200000 --swaps 3 --rate 200]
//
// A worker (`qualm worker` as a child process, the real broker) scores a steady stream while
// new reference bundles of --n references are published beside it: --swaps good versions, then
// a corrupted one (bad checksum) and one built for another encoder, which must be refused.
// Measures the longest gap between consecutive batch completions around each swap, against the
// longest gap of the same stream before any publication (the baseline, same run), and checks
// that every message sent was scored exactly once. Last line:
//   {"swaps":S,"max_stall_ms":m,"refused":R,"lost":0}
// The stream sends `embedding` inputs (the encoder is skipped): what is measured is the refresh,
// not ONNX inference. The bundles' manifests name the real encoder, which the worker verifies.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Message } from 'kafkajs';
import { loadConfig } from '../src/config/index.js';
import { encodeFloat32Base64, type ScoreRecord } from '../src/contracts/index.js';
import { OnnxEncoder } from '../src/encoder/index.js';
import { buildBundle, movePointer, MANIFEST_FILE, type BundleManifest } from '../src/index/index.js';
import { startLocalKafka } from '../src/local-kafka/index.js';
import { referenceScorer } from '../src/scoring/index.js';
import { gaussian, seededRandom } from '../src/util/random.js';
import { TopicReader, createTopics, produce, testKafka, uniqueWorkerTopics, waitFor, workerTopicEnv } from '../test/helpers/kafka.js';
import { WorkerProcess } from '../test/helpers/worker-process.js';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '200000' }, swaps: { type: 'string', default: '3' }, rate: { type: 'string', default: '200' } },
});
const N = Number(values.n);
const SWAPS = Number(values.swaps);
const RATE = Number(values.rate);
const CLUSTERS = 50;

/** Unit vectors around `CLUSTERS` random centres: a stand-in for an encoder's embedding space. */
function mixture(n: number, dim: number, seed: number, centres: Float32Array): Float32Array {
  const rnd = seededRandom(seed);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rnd() * CLUSTERS);
    let norm = 0;
    for (let d = 0; d < dim; d++) {
      const v = (centres[c * dim + d] as number) + 0.35 * gaussian(rnd);
      out[i * dim + d] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    for (let d = 0; d < dim; d++) out[i * dim + d] = (out[i * dim + d] as number) / norm;
  }
  return out;
}

/**
 * Publishes a copy of bundle `from` as version `to`: the same files, a manifest naming `to`, then the pointer.
 * The copies are asynchronous: a synchronous copy of a large bundle would block this process's
 * event loop, and with it the load generator, whose pause would then be measured as the worker's stall.
 */
async function publishCopy(dir: string, from: string, to: string, edit: (m: BundleManifest) => void = () => undefined): Promise<void> {
  const staging = mkdtempSync(join(tmpdir(), 'qualm-bench-stage-'));
  await cp(join(dir, from), join(staging, to), { recursive: true });
  const path = join(staging, to, MANIFEST_FILE);
  const manifest = JSON.parse(readFileSync(path, 'utf8')) as BundleManifest;
  manifest.version = to;
  manifest.created_at = new Date().toISOString();
  edit(manifest);
  writeFileSync(path, JSON.stringify(manifest, null, 2) + '\n');
  await cp(join(staging, to), join(dir, to), { recursive: true });
  await rm(staging, { recursive: true, force: true });
  await movePointer(dir, to);
}

interface LogEvent {
  /** Milliseconds since the epoch (the logs carry ISO times). */
  time: number;
  event?: string;
  to?: string;
  version?: string;
  loadMs?: number;
}

function events(log: string): LogEvent[] {
  const out: LogEvent[] = [];
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const e = JSON.parse(line) as Omit<LogEvent, 'time'> & { time: string };
      out.push({ ...e, time: Date.parse(e.time) });
    } catch {
      // A line cut by the end of the buffer.
    }
  }
  return out;
}

/**
 * The worker's largest event-loop delay since the previous scrape, in ms: prom-client's
 * nodejs_eventloop_lag_max_seconds, whose histogram is reset at every scrape.
 */
async function loopLagMaxMs(w: WorkerProcess): Promise<number> {
  const m = /^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(await w.metrics());
  return m === null ? Number.NaN : Math.round(Number(m[1]) * 1000 * 10) / 10;
}

/** Longest gap between consecutive times that fall in [from, to]. */
function maxGap(times: readonly number[], from: number, to: number): number {
  const inside = times.filter((t) => t >= from && t <= to);
  let gap = 0;
  for (let i = 1; i < inside.length; i++) gap = Math.max(gap, (inside[i] as number) - (inside[i - 1] as number));
  return gap;
}

const config = loadConfig(process.env);
const encoder = await OnnxEncoder.open(config.modelPath);
const model = { name: encoder.manifest.name, version: encoder.manifest.version, sha256: encoder.sha256 };
const dim = encoder.dim;
await encoder.close();

const bundleDir = mkdtempSync(join(tmpdir(), 'qualm-bench-refresh-'));
const broker = await startLocalKafka();
const kafka = testKafka(broker.brokers);
let worker: WorkerProcess | undefined;
let scores: TopicReader | undefined;
try {
  const centres = mixture(CLUSTERS, dim, 1, new Float32Array(CLUSTERS * dim));
  const t0 = Date.now();
  await buildBundle(
    bundleDir,
    {
      embeddings: mixture(N, dim, 2, centres),
      dim,
      ids: Array.from({ length: N }, (_, i) => `bench#${i}`),
      labels: null,
      labelNames: null,
      model,
      source: { bench: 'refresh', n: N },
      k: config.k,
      densityWeight: config.densityWeight,
      referenceScore: referenceScorer({ densityWeight: config.densityWeight, numLabels: 0 }),
    },
    { version: 'b0' },
  );
  console.log(`built a ${N}-reference bundle in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const topics = uniqueWorkerTopics();
  await createTopics(kafka, [topics.input, topics.review, topics.scores, topics.dlq]);
  scores = await TopicReader.start(kafka, topics.scores);
  worker = await WorkerProcess.start({
    ...workerTopicEnv(broker.brokers, topics),
    QUALM_BUNDLE_DIR: bundleDir,
    QUALM_REFRESH_INTERVAL_MS: '500',
    QUALM_LOG_LEVEL: 'debug',
  });
  const w = worker;

  // The steady stream: RATE embedding messages a second, in ticks of 100 ms, until told to stop.
  const queries = mixture(20_000, dim, 3, centres);
  let sent = 0;
  let streaming = true;
  /** When each send of the load generator was acknowledged: its own gaps, to tell them from the worker's. */
  const sendTimes: number[] = [];
  const perTick = Math.max(1, Math.round(RATE / 10));
  const stream = (async () => {
    const start = Date.now();
    while (streaming) {
      const due = Math.floor(((Date.now() - start) / 1000) * RATE) - sent;
      if (due > 0) {
        const batch: Message[] = [];
        for (let i = 0; i < Math.min(due, perTick * 5); i++) {
          const q = (sent + i) % 20_000;
          const id = `m-${sent + i}`;
          batch.push({ key: id, value: JSON.stringify({ id, input: { embedding: encodeFloat32Base64(queries.subarray(q * dim, (q + 1) * dim)) } }) });
        }
        await produce(kafka, topics.input, batch);
        sent += batch.length;
        sendTimes.push(Date.now());
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  const baselineFrom = Date.now() + 2000;
  await new Promise((r) => setTimeout(r, 2000));
  await loopLagMaxMs(w);
  await new Promise((r) => setTimeout(r, 10_000));
  const baselineTo = Date.now();
  const baselineLoopLag = await loopLagMaxMs(w);
  const swapLoopLag: number[] = [];

  const publish: { version: string; at: number }[] = [];
  for (let s = 1; s <= SWAPS; s++) {
    const version = `b${s}`;
    publish.push({ version, at: Date.now() });
    await loopLagMaxMs(w);
    await publishCopy(bundleDir, 'b0', version);
    await waitFor(() => events(w.log()).some((e) => e.event === 'bundle_swapped' && e.to === version), `swap to ${version}`, 120_000);
    await new Promise((r) => setTimeout(r, 1000));
    swapLoopLag.push(await loopLagMaxMs(w));
    await new Promise((r) => setTimeout(r, 2000));
  }
  // A corrupted bundle (one reference id altered after its checksum was taken), and one built for another encoder.
  await publishCopy(bundleDir, 'b0', 'bad-checksum', () => undefined);
  const ids = join(bundleDir, 'bad-checksum', 'ids.json');
  writeFileSync(ids, readFileSync(ids, 'utf8').replace('"bench#7"', '"bench#X"'));
  await waitFor(() => events(w.log()).some((e) => e.event === 'bundle_refused' && e.version === 'bad-checksum'), 'bad-checksum refused', 120_000);
  await publishCopy(bundleDir, 'b0', 'other-model', (m) => {
    m.model.sha256 = 'f'.repeat(64);
  });
  await waitFor(() => events(w.log()).some((e) => e.event === 'bundle_refused' && e.version === 'other-model'), 'other-model refused', 120_000);
  await new Promise((r) => setTimeout(r, 3000));

  streaming = false;
  await stream;
  const reader = scores;
  await waitFor(() => reader.messages.length >= sent, `${sent} scores (have ${reader.messages.length})`, 180_000);
  await new Promise((r) => setTimeout(r, 2000));
  const scored = reader.json<ScoreRecord>();
  const distinct = new Set(scored.map((r) => r.id));
  const lost = sent - [...distinct].filter((id) => /^m-\d+$/.test(id) && Number(id.slice(2)) < sent).length;
  const duplicated = scored.length - distinct.size;

  const log = events(w.log());
  const batchTimes = log.filter((e) => e.event === 'batch_done').map((e) => e.time);
  const swaps = log.filter((e) => e.event === 'bundle_swapped');
  const refused = log.filter((e) => e.event === 'bundle_refused').length;
  const baseline = maxGap(batchTimes, baselineFrom, baselineTo);
  let maxStall = 0;
  for (const s of swaps) {
    // From the start of the load (the swap event time minus its load time) to a second after.
    const stall = maxGap(batchTimes, s.time - (s.loadMs ?? 0) - 1000, s.time + 1000);
    const sendGap = maxGap(sendTimes, s.time - (s.loadMs ?? 0) - 1000, s.time + 1000);
    console.log(`swap to ${s.to}: load ${s.loadMs} ms, longest gap between batches around it ${stall} ms (between the load generator's sends: ${sendGap} ms)`);
    maxStall = Math.max(maxStall, stall);
  }
  console.log(`worker event-loop delay, max: ${swapLoopLag.map((x) => `${x} ms`).join(', ')} from publication to 1 s after each swap; ${baselineLoopLag} ms over the baseline's 10 s`);
  console.log(`baseline (no publication, same stream): longest gap between batches ${baseline} ms (between sends: ${maxGap(sendTimes, baselineFrom, baselineTo)} ms)`);
  console.log(`around swaps: ${maxStall} ms = ${(maxStall / Math.max(1, baseline)).toFixed(2)}x the baseline`);
  console.log(`sent ${sent}, scored ${scored.length} (${distinct.size} distinct), lost ${lost}, duplicated ${duplicated}; versions seen: ${[...new Set(scored.map((r) => r.index_version))].join(', ')}`);
  console.log(JSON.stringify({ swaps: swaps.length, max_stall_ms: maxStall, refused, lost }));
  await w.stop('SIGTERM');
  worker = undefined;
} finally {
  await scores?.stop().catch(() => undefined);
  await worker?.stop('SIGKILL').catch(() => undefined);
  await broker.stop();
  rmSync(bundleDir, { recursive: true, force: true });
}
