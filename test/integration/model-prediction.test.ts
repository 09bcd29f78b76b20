import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { FileRef, ScoreRecord } from '../../src/contracts/index.js';
import { loadFashionMnist } from '../../src/datasets/index.js';
import { seededRandom } from '../../src/util/random.js';

/**
 * The downstream model's prediction on the real path: `qualm build-index --references` on
 * 2,000 Fashion-MNIST training images (real ONNX encoder, real HNSW), each with a label and a
 * `prediction` from a stand-in model (right 80% of the time, less confident when wrong), then
 * `qualm score` on test images with and without a prediction, and one malformed prediction.
 */

const dir = mkdtempSync(join(tmpdir(), 'qualm-model-prediction-'));
const env = { ...process.env, QUALM_BUNDLE_DIR: join(dir, 'bundles'), QUALM_LOG_LEVEL: 'warn' };
after(() => rmSync(dir, { recursive: true, force: true }));

function qualm(args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ['bin/qualm.js', ...args], { env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
}

/** A stand-in model's probabilities over 10 labels: the true one (or, 20% of the time, another) on top. */
function predict(label: number, rnd: () => number): { probs: number[]; wrong: boolean } {
  const wrong = rnd() < 0.2;
  const top = wrong ? (label + 1 + Math.floor(rnd() * 9)) % 10 : label;
  const peak = wrong ? 0.3 + 0.4 * rnd() : 0.6 + 0.4 * rnd();
  const probs = Array.from({ length: 10 }, (_, c) => (c === top ? peak : (1 - peak) / 9));
  return { probs, wrong };
}

test('build-index --references fits the combination with the model\'s signals from the references\' predictions; score uses it where a sample has one', { timeout: 300_000 }, () => {
  const rnd = seededRandom(13);
  const train = loadFashionMnist('train');
  const refs: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const y = train.labels[i] as number;
    const features = Array.from(train.pixels.subarray(i * 784, (i + 1) * 784));
    refs.push(JSON.stringify({ id: `ref-${i}`, input: { features }, label: train.labelNames[y], prediction: { probs: predict(y, rnd).probs } }));
  }
  writeFileSync(join(dir, 'refs.jsonl'), `${refs.join('\n')}\n`);
  const b = qualm(['build-index', '--references', join(dir, 'refs.jsonl')]);
  assert.equal(b.status, 0, b.stderr.slice(-3000));
  const version = readFileSync(join(dir, 'bundles', 'CURRENT'), 'utf8').trim();
  const manifest = JSON.parse(readFileSync(join(dir, 'bundles', version, 'manifest.json'), 'utf8')) as {
    scoring: { combination: { features: string[]; with_model?: { features: string[]; score_quantiles: number[]; fit: Record<string, unknown> } } };
  };
  const wm = manifest.scoring.combination.with_model;
  assert.ok(wm !== undefined, 'the bundle holds the combination with the model\'s signals');
  assert.deepEqual(wm.features.slice(-4), ['model_log_msp_uncertainty', 'model_entropy', 'model_neighbor_disagreement', 'model_gaussian_disagreement']);
  assert.ok(wm.features.includes('relative_mahalanobis_percentile'), 'the Gaussian\'s features, taken out of fold for the fit rows');
  assert.equal(wm.fit.model_source, "the references' own predictions");
  assert.ok((wm.fit.held_out_auroc as number) > 0.8, JSON.stringify(wm.fit));
  assert.ok(!manifest.scoring.combination.features.some((f) => f.startsWith('model_')), 'the fallback is embedding-only');

  const test10k = loadFashionMnist('t10k');
  const lines: string[] = [];
  const wrong = new Map<string, boolean>();
  for (let i = 0; i < 200; i++) {
    const y = test10k.labels[i] as number;
    const features = Array.from(test10k.pixels.subarray(i * 784, (i + 1) * 784));
    const p = predict(y, rnd);
    wrong.set(`t-${i}`, p.wrong);
    // Even rows carry a prediction (odd ones the label-and-confidence form for every 4th), the rest none.
    const prediction = i % 2 === 1 ? undefined : i % 4 === 2 ? { label: test10k.labelNames[p.probs.indexOf(Math.max(...p.probs))], confidence: Math.max(...p.probs) } : { probs: p.probs };
    lines.push(JSON.stringify({ id: `t-${i}`, input: { features }, ...(prediction === undefined ? {} : { prediction }) }));
  }
  lines.push(JSON.stringify({ id: 'bad', input: { features: Array.from(test10k.pixels.subarray(0, 784)) }, prediction: { probs: [0.5, 0.6] } }));
  writeFileSync(join(dir, 'test.jsonl'), `${lines.join('\n')}\n`);
  const strict = qualm(['score', '--in', join(dir, 'test.jsonl')]);
  assert.notEqual(strict.status, 0);
  assert.match(strict.stderr, /test\.jsonl:201: prediction\.probs sum to 1\.1, not 1/, strict.stderr.slice(-2000));
  const r = qualm(['score', '--in', join(dir, 'test.jsonl'), '--skip-invalid']);
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  assert.match(r.stderr, /QUALM_BAD_PREDICTION/, 'the skip summary names the code');
  const records = r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as ScoreRecord<FileRef>);
  assert.equal(records.length, 200);
  const withPred = records.filter((x) => Number(x.id.slice(2)) % 2 === 0);
  const without = records.filter((x) => Number(x.id.slice(2)) % 2 === 1);
  for (const x of withPred) {
    assert.equal(x.signals.model_prediction_used, 1, x.id);
    assert.ok(x.signals.model_confidence !== null && x.signals.model_entropy !== null && x.signals.model_neighbor_agreement !== null, x.id);
    assert.ok(x.uncertainty >= 0 && x.uncertainty <= 1 && x.predicted_accuracy !== null);
  }
  for (const x of without) {
    assert.equal(x.signals.model_prediction_used, 0, `${x.id}: scored by the embedding-only fallback`);
    assert.equal(x.signals.model_confidence, null);
  }
  // The with-model scores rank the stand-in model's own errors: its wrong rows are less certain on average.
  const mean = (xs: number[]): number => xs.reduce((s, v) => s + v, 0) / xs.length;
  const u = (w: boolean): number => mean(withPred.filter((x) => wrong.get(x.id) === w).map((x) => x.uncertainty));
  assert.ok(u(true) > u(false) + 0.2, `uncertainty of wrong ${u(true)} vs right ${u(false)}`);
});
