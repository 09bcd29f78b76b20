// QUALM_BUNDLE_DIR=DIR node --import tsx bench/score.ts FILE.jsonl
//
// Throughput of `qualm score` on a JSONL file of samples, against two baselines measured in
// the same run on the same lines, with the bundle QUALM_BUNDLE_DIR/CURRENT names and the model
// at QUALM_MODEL_PATH:
//   - raw: OnnxEncoder.embedAll over the same feature rows in runs of QUALM_INFERENCE_BATCH
//     (no JSON, no search, no scoring): the encoder's own rate;
//   - worker: the worker's BatchScorer.process on the same lines as Kafka message values, in
//     batches of QUALM_INFERENCE_BATCH (parse, embed, kNN, score, review and score records
//     as JSON; no broker): the stream path without Kafka.
// Then `node bin/qualm.js score --in FILE --out /dev/null` as a separate process; its own
// summary gives per_s. For an image model (image_b64 lines) the raw baseline is left out (null). Last line (JSON): {"n":N,"raw_per_s":r,"worker_per_s":w,"score_per_s":s,"score_vs_worker":x,"score_vs_raw":y}
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../src/config/index.js';
import { OnnxEncoder } from '../src/encoder/index.js';
import { LocalBundleStore, loadCurrentFromStore } from '../src/index/index.js';
import { QualmMetrics } from '../src/metrics/index.js';
import { BatchScorer, createPolicy, type InMessage } from '../src/stream/index.js';

const file = process.argv[2];
if (file === undefined) throw new Error('usage: node --import tsx bench/score.ts FILE.jsonl');
const config = loadConfig(process.env);
const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
const n = lines.length;
const batch = config.inferenceBatch;

const encoder = await OnnxEncoder.open(config.modelPath, { intraOpThreads: config.intraOpThreads });
let rawPerS: number | null = null;
let workerPerS: number;
try {
  // The raw baseline needs rows the encoder takes as they are: features lines only (an image file has none).
  const inputs = lines.map((l) => (JSON.parse(l) as { input: { features?: number[] } }).input.features);
  if (encoder.inputKind !== 'image' && inputs.every((f) => f !== undefined)) {
    const dimIn = encoder.inputDim;
    const rows = new Float32Array(n * dimIn);
    inputs.forEach((f, i) => rows.set(f, i * dimIn));
    const t0 = performance.now();
    await encoder.embedAll(rows, n, batch);
    rawPerS = n / ((performance.now() - t0) / 1000);
  }

  const snapshot = await loadCurrentFromStore(new LocalBundleStore(config.bundleDir), { efSearch: config.efSearch, expectModelSha256: encoder.sha256 });
  const scorer = new BatchScorer({ ...config, scoresTopic: 'scores' }, encoder, () => snapshot, createPolicy(config), new QualmMetrics({ defaultMetrics: false }));
  const messages: InMessage[] = lines.map((l, i) => ({ key: null, value: Buffer.from(l), offset: String(i) }));
  let scored = 0;
  const t = performance.now();
  for (let s = 0; s < n; s += batch) scored += (await scorer.process('bench', 0, messages.slice(s, s + batch), () => Promise.resolve())).scored.length;
  workerPerS = scored / ((performance.now() - t) / 1000);
} finally {
  await encoder.close();
}

const r = spawnSync(process.execPath, ['bin/qualm.js', 'score', '--in', file, '--out', '/dev/null'], { encoding: 'utf8', env: process.env });
if (r.status !== 0) throw new Error(`qualm score failed (${r.status}): ${r.stderr}`);
const summary = JSON.parse(r.stderr.trim().split('\n').at(-1) as string) as { scored: number; per_s: number };
const round = (x: number, d = 0): number => Math.round(x * 10 ** d) / 10 ** d;
console.log(`raw embedAll: ${rawPerS === null ? 'n/a (not features)' : `${round(rawPerS)}/s`}; worker BatchScorer (no Kafka): ${round(workerPerS)}/s; qualm score: ${summary.per_s}/s over ${summary.scored}`);
console.log(
  JSON.stringify({
    n,
    raw_per_s: rawPerS === null ? null : round(rawPerS),
    worker_per_s: round(workerPerS),
    score_per_s: summary.per_s,
    score_vs_worker: round(summary.per_s / workerPerS, 2),
    score_vs_raw: rawPerS === null ? null : round(summary.per_s / rawPerS, 2),
  }),
);
