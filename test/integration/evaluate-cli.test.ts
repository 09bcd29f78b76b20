import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadFashionMnist, row, type ImageSet } from '../../src/datasets/index.js';
import { seededRandom } from '../../src/util/random.js';

/**
 * `qualm evaluate` on the user's own files, driven only through the CLI: real ONNX (the demo
 * encoder), real HNSW bundles, no Kafka. References and test set are JSONL in the input wire
 * format with class names as labels; the downstream "model" is the truth with exactly 20% of
 * the test labels flipped, its probabilities peaked on what it predicts.
 */

const N_REF = 1000;
const N_TEST = 300;
const N_WRONG = 60;
let dir = '';
let testIds: string[] = [];

function writeJsonl(path: string, set: ImageSet, start: number, n: number, prefix: string): string[] {
  const ids: string[] = [];
  const lines: string[] = [];
  for (let i = start; i < start + n; i++) {
    const id = `${prefix}-${i}`;
    ids.push(id);
    const features = Array.from(row(set, i), (v) => Math.round(v * 1000) / 1000);
    lines.push(JSON.stringify({ id, input: { features }, label: set.labelNames[set.labels[i] as number] }));
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
  return ids;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'qualm-evaluate-cli-'));
  writeJsonl(join(dir, 'refs.jsonl'), loadFashionMnist('train'), 0, N_REF, 'train');
  const testSet = loadFashionMnist('t10k');
  testIds = writeJsonl(join(dir, 'test.jsonl'), testSet, 0, N_TEST, 'test');
  // The references' label order is the sorted class names (they are not integers).
  const order = [...testSet.labelNames].sort();
  const rnd = seededRandom(7);
  const wrong = new Set<number>();
  while (wrong.size < N_WRONG) wrong.add(Math.floor(rnd() * N_TEST));
  const lines = testIds.map((id, i) => {
    const truth = order.indexOf(testSet.labelNames[testSet.labels[i] as number] as string);
    const predicted = wrong.has(i) ? (truth + 1 + Math.floor(rnd() * 9)) % 10 : truth;
    const peak = 0.5 + 0.45 * rnd();
    return JSON.stringify({ id, probs: order.map((_, c) => (c === predicted ? peak : (1 - peak) / 9)) });
  });
  writeFileSync(join(dir, 'preds.jsonl'), `${lines.join('\n')}\n`);
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const qualm = (args: string[]) =>
  spawnSync(process.execPath, ['bin/qualm.js', 'evaluate', ...args], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, QUALM_MODEL_PATH: 'models/fmnist-simclr.onnx' },
  });

interface Result {
  target: string;
  target_source: string;
  downstream_accuracy: number;
  probe_accuracy: number;
  n_ref: number;
  n_test: number;
  scores: Record<string, { auroc: number | null; aurc: number; kendall_tau: number | null } | undefined>;
  data: { predictions?: { form: string }; label_names?: string[] };
}

test('evaluate --references --test --predictions ranks the downstream model\'s errors, with its msp and entropy', { timeout: 120_000 }, () => {
  const out = join(dir, 'out');
  const r = qualm(['--references', join(dir, 'refs.jsonl'), '--test', join(dir, 'test.jsonl'), '--predictions', join(dir, 'preds.jsonl'), '--json', '--out', out]);
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  const result = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Result;
  assert.equal(result.target, 'predictions');
  assert.match(result.target_source, /preds\.jsonl$/);
  assert.equal(result.n_ref, N_REF);
  assert.equal(result.n_test, N_TEST);
  assert.ok(Math.abs(result.downstream_accuracy - 0.8) <= 0.01, `downstream accuracy ${result.downstream_accuracy}`);
  assert.ok(result.probe_accuracy > 0.6 && result.probe_accuracy !== result.downstream_accuracy, `probe accuracy ${result.probe_accuracy}`);
  assert.equal(result.data.predictions?.form, 'probabilities');
  assert.deepEqual(result.data.label_names, [...loadFashionMnist('t10k').labelNames].sort());
  for (const name of ['qualm', 'msp', 'entropy', 'avgdist_k1', 'random']) {
    const m = result.scores[name];
    assert.ok(m !== undefined && typeof m.aurc === 'number', `no ${name} row: ${JSON.stringify(Object.keys(result.scores))}`);
  }
  const report = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(report, /## Errors of the downstream model's predictions on the test set/);
  assert.match(report, /^\| msp \|/m);
  assert.match(report, /^\| entropy \|/m);
  assert.ok(existsSync(join(out, 'result.json')));
});

test('evaluate names a test id without a prediction, and --skip-invalid drops it and says how many', { timeout: 120_000 }, () => {
  const partial = join(dir, 'partial.csv');
  const order = [...loadFashionMnist('t10k').labelNames].sort();
  // A label-only CSV for every test id but the first two.
  writeFileSync(partial, `id,label\n${testIds.slice(2).map((id) => `${id},${JSON.stringify(order[0])}`).join('\n')}\n`);
  const args = ['--references', join(dir, 'refs.jsonl'), '--test', join(dir, 'test.jsonl'), '--predictions', partial, '--json', '--out', join(dir, 'out-partial')];
  const strict = qualm(args);
  assert.equal(strict.status, 1, strict.stderr.slice(-2000));
  assert.match(strict.stderr, /\[QUALM_PREDICTIONS_INVALID\] .*partial\.csv: 2 of 300 test ids have no prediction: "test-0", "test-1"/);
  const lenient = qualm([...args, '--skip-invalid']);
  assert.equal(lenient.status, 0, lenient.stderr.slice(-2000));
  assert.match(lenient.stderr, /2 test records without a prediction dropped/);
  const result = JSON.parse(lenient.stdout.trim().split('\n').at(-1) as string) as Result;
  assert.equal(result.n_test, N_TEST - 2);
  assert.equal(result.data.predictions?.form, 'labels');
  assert.equal(result.scores.msp, undefined, 'no probabilities, no msp');
});

test('evaluate refuses unlabelled references and a test label the references lack, naming the record', { timeout: 60_000 }, () => {
  const lines = readFileSync(join(dir, 'test.jsonl'), 'utf8').trim().split('\n').slice(0, 20);
  const refs = join(dir, 'small-refs.jsonl');
  writeFileSync(refs, `${lines.slice(0, 10).join('\n')}\n`);
  const unlabelled = join(dir, 'unlabelled.jsonl');
  writeFileSync(unlabelled, `${lines.slice(0, 3).join('\n')}\n${JSON.stringify({ ...(JSON.parse(lines[3] as string) as object), label: undefined })}\n`);
  const sock = join(dir, 'sock.jsonl');
  writeFileSync(sock, `${lines.slice(10, 12).join('\n')}\n${JSON.stringify({ ...(JSON.parse(lines[12] as string) as object), id: 'odd-one', label: 'Sock' })}\n`);
  const a = qualm(['--references', unlabelled, '--test', sock]);
  assert.equal(a.status, 2, a.stderr);
  assert.match(a.stderr, /unlabelled\.jsonl:4: the references need a label on every record; "test-3" has none/);
  const b = qualm(['--references', refs, '--test', sock]);
  assert.equal(b.status, 2, b.stderr);
  assert.match(b.stderr, /sock\.jsonl:3: test label "Sock" of "odd-one" is not among the references' labels/);
});

test('evaluate on precomputed embeddings (the encoder skipped), integer labels, an OOD set and a p_<label> CSV', { timeout: 60_000 }, () => {
  const rnd = seededRandom(3);
  const DIM = 128;
  const centres = Array.from({ length: 4 }, () => Array.from({ length: DIM }, () => rnd() * 2 - 1));
  const g = (): number => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  // Integer labels in the file; the references' order is numeric (0, 1, 2, 3), and norms vary for the l2_norm baseline.
  const write = (path: string, n: number, prefix: string, shift: number): void => {
    const lines = Array.from({ length: n }, (_, i) => {
      const c = i % 4;
      const scale = 0.5 + rnd();
      const embedding = (centres[c] as number[]).map((v, d) => Math.round(scale * (v + 0.8 * g() + (d === 0 ? shift : 0)) * 1e4) / 1e4);
      return JSON.stringify({ id: `${prefix}${i}`, input: { embedding }, label: c });
    });
    writeFileSync(path, `${lines.join('\n')}\n`);
  };
  write(join(dir, 'emb-refs.jsonl'), 600, 'r', 0);
  write(join(dir, 'emb-test.jsonl'), 120, 't', 0);
  write(join(dir, 'emb-ood.jsonl'), 60, 'o', 6);
  // The downstream model: right on 3 of 4 points, columns in a shuffled order.
  const rows = Array.from({ length: 120 }, (_, i) => {
    const truth = i % 4;
    const pred = i % 4 === 1 && i % 8 === 1 ? (truth + 1) % 4 : truth;
    const p = [0, 1, 2, 3].map((c) => (c === pred ? 0.7 : 0.1));
    return `${(p[3] as number).toFixed(2)},t${i},${p.slice(0, 3).map((v) => v.toFixed(2)).join(',')}`;
  });
  writeFileSync(join(dir, 'emb-preds.csv'), `p_3,id,p_0,p_1,p_2\n${rows.join('\n')}\n`);
  const r = qualm(['--references', join(dir, 'emb-refs.jsonl'), '--test', join(dir, 'emb-test.jsonl'), '--ood', join(dir, 'emb-ood.jsonl'), '--predictions', join(dir, 'emb-preds.csv'), '--json', '--out', join(dir, 'out-emb')]);
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  const result = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Result & { n_ood: number; l2_norm_of: string; ood: Record<string, unknown> };
  assert.deepEqual(result.data.label_names, ['0', '1', '2', '3']);
  assert.equal(result.target, 'predictions');
  assert.equal(result.downstream_accuracy, 1 - 15 / 120, 'points 1, 9, 17, ... are wrong');
  assert.equal(result.n_ood, 60);
  assert.match(result.l2_norm_of, /the embedding inputs as given/);
  assert.ok(result.scores.msp !== undefined && result.scores.l2_norm !== undefined);
  assert.ok(result.ood.qualm_ood !== undefined && result.ood.msp === undefined, 'msp exists only where the model predicted: the test set');
});
