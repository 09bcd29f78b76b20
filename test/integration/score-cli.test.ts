import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import type { FileRef, ReviewRecord, ScoreRecord } from '../../src/contracts/index.js';
import { loadFashionMnist } from '../../src/datasets/index.js';
import { OnnxEncoder } from '../../src/encoder/index.js';
import { LocalBundleStore, loadCurrentFromStore } from '../../src/index/index.js';
import { QualmMetrics } from '../../src/metrics/index.js';
import { CSV_COLUMNS } from '../../src/scorer/index.js';
import { SIGNAL_WIRE_NAMES } from '../../src/signals.js';
import { BatchScorer, createPolicy } from '../../src/stream/index.js';

/**
 * `qualm score` as a user runs it: a real bundle built by `qualm build-index --limit 2000` in a
 * temporary QUALM_BUNDLE_DIR, the real ONNX encoder and HNSW index, a JSONL file of
 * Fashion-MNIST test images (features) with malformed lines among them. No Kafka.
 */

const N = 300;
/** 1-based lines of the file that are malformed: bad JSON, a wrong length, NaN spelt as a string. */
const BAD_LINES = new Map<number, string>([
  [41, '{"id":"broken","input":{"features":[0.1,'],
  [150, '{"id":"short","input":{"features":[1,2,3]}}'],
  [233, '{"id":"nan","input":{"features":"NaN"}}'],
]);

const dir = mkdtempSync(join(tmpdir(), 'qualm-score-cli-'));
const bundleDir = join(dir, 'bundles');
const input = join(dir, 'test.jsonl');
const env = { ...process.env, QUALM_BUNDLE_DIR: bundleDir, QUALM_LOG_LEVEL: 'warn' };
/** The good lines: line number and the JSON written there. */
const good: { line: number; id: string; json: string }[] = [];

function qualm(args: string[], stdin?: string): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ['bin/qualm.js', ...args], { env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...(stdin === undefined ? {} : { input: stdin }) });
}

function summaryOf(stderr: string): Record<string, unknown> {
  const last = stderr.trim().split('\n').at(-1) as string;
  return JSON.parse(last) as Record<string, unknown>;
}

const lines = (stdout: string): string[] => stdout.split('\n').filter((l) => l !== '');

/** A record without the two fields that say where and when it was scored. */
function placeless(r: ScoreRecord<FileRef> | ScoreRecord): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...r };
  delete copy.source;
  delete copy.scored_at;
  return copy;
}

before(() => {
  const b = qualm(['build-index', '--limit', '2000']);
  assert.equal(b.status, 0, b.stderr.slice(-2000));
  const t = loadFashionMnist('t10k');
  const out: string[] = [];
  for (let i = 0, line = 1; i < N; line++) {
    const bad = BAD_LINES.get(line);
    if (bad !== undefined) {
      out.push(bad);
      continue;
    }
    const features = Array.from(t.pixels.subarray(i * 784, (i + 1) * 784));
    const json = JSON.stringify({ id: `fm-test-${i}`, input: { features }, label: t.labelNames[t.labels[i] as number], meta: { row: i } });
    good.push({ line, id: `fm-test-${i}`, json });
    out.push(json);
    i++;
  }
  writeFileSync(input, `${out.join('\n')}\n`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('a malformed line is an error naming the file and line (exit 1)', { timeout: 120_000 }, () => {
  const r = qualm(['score', '--in', input]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`QUALM_SOURCE_INVALID\\] ${input.replaceAll('/', '\\/')}:41: `), r.stderr);
});

test('--skip-invalid: one score record per good line, the bad lines reported with their numbers and counted', { timeout: 120_000 }, () => {
  const r = qualm(['score', '--in', input, '--skip-invalid']);
  assert.equal(r.status, 0, r.stderr);
  const records = lines(r.stdout).map((l) => JSON.parse(l) as ScoreRecord<FileRef>);
  assert.equal(records.length, N);
  assert.deepEqual(records.map((x) => x.id), good.map((g) => g.id));
  assert.deepEqual(records.map((x) => x.source), good.map((g) => ({ file: input, line: g.line })));
  const keys = ['id', 'meta', 'uncertainty', 'predicted_accuracy', 'flagged', 'reason', 'rule', 'signals', 'suggested_label', 'index_version', 'model_version', 'scored_at', 'source'];
  for (const x of records) {
    assert.deepEqual(Object.keys(x), keys);
    assert.deepEqual(Object.keys(x.signals), SIGNAL_WIRE_NAMES);
    assert.ok(x.uncertainty >= 0 && x.uncertainty <= 1);
    assert.equal(x.flagged, x.reason !== null);
    assert.equal(x.model_version, 'fmnist-simclr@1');
  }
  for (const line of BAD_LINES.keys()) assert.match(r.stderr, new RegExp(`${input.replaceAll('/', '\\/')}:${line}\\b`), `line ${line} is reported`);
  const s = summaryOf(r.stderr);
  assert.equal(s.scored, N);
  assert.equal(s.written, N);
  assert.equal(s.skipped, BAD_LINES.size);
  assert.equal(s.flagged, records.filter((x) => x.flagged).length);
  assert.ok(s.flagged > 0, 'some test images are flagged');
  assert.ok((s.per_s as number) > 0);
  assert.ok(typeof s.seconds === 'number');
});

test('--flagged-only writes the review records of the flagged samples; --format csv the header from the signal table', { timeout: 120_000 }, () => {
  const all = lines(qualm(['score', '--in', input, '--skip-invalid']).stdout).map((l) => JSON.parse(l) as ScoreRecord<FileRef>);
  const r = qualm(['score', '--in', input, '--skip-invalid', '--flagged-only', '--out', join(dir, 'review.jsonl')]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '', 'records go to --out, not stdout');
  const reviews = lines(readFileSync(join(dir, 'review.jsonl'), 'utf8')).map((l) => JSON.parse(l) as ReviewRecord<FileRef>);
  assert.deepEqual(reviews.map((x) => x.id), all.filter((x) => x.flagged).map((x) => x.id));
  for (const x of reviews) {
    assert.ok(x.neighbors.length > 0 && x.explanation.length > 0 && x.embedding.dim === 128);
    assert.equal(typeof x.source.file, 'string');
  }

  const c = qualm(['score', '--in', input, '--skip-invalid', '--format', 'csv']);
  assert.equal(c.status, 0, c.stderr);
  const rows = lines(c.stdout);
  assert.equal(rows[0], CSV_COLUMNS.join(','));
  assert.deepEqual(rows[0]?.split(',').slice(7), SIGNAL_WIRE_NAMES);
  assert.equal(rows.length, 1 + N);
  const first = rows[1]?.split(',') ?? [];
  assert.equal(first[0], all[0]?.id);
  assert.equal(Number(first[1]), all[0]?.uncertainty);

  const f = qualm(['score', '--in', input, '--skip-invalid', '--format', 'csv', '--flagged-only']);
  assert.equal(lines(f.stdout).length, 1 + reviews.length);
  const u = qualm(['score', '--in', input, '--format', 'xml']);
  assert.equal(u.status, 2, 'a bad flag value is a usage error');
});

test('stdin (--in -) gives the same records, with source file "-"', { timeout: 120_000 }, () => {
  const text = `${good.slice(0, 50).map((g) => g.json).join('\n')}\n`;
  const r = qualm(['score', '--in', '-'], text);
  assert.equal(r.status, 0, r.stderr);
  const fromStdin = lines(r.stdout).map((l) => JSON.parse(l) as ScoreRecord<FileRef>);
  const fromFile = lines(qualm(['score', '--in', input, '--skip-invalid']).stdout)
    .slice(0, 50)
    .map((l) => JSON.parse(l) as ScoreRecord<FileRef>);
  assert.deepEqual(fromStdin.map((x) => x.source), fromStdin.map((_, i) => ({ file: '-', line: i + 1 })));
  assert.deepEqual(fromStdin.map(placeless), fromFile.map(placeless));
});

test("qualm score and the worker's BatchScorer give the same records for the same samples (but source and stamp)", { timeout: 120_000 }, async () => {
  const take = good.slice(0, 120);
  const r = qualm(['score', '--in', '-'], `${take.map((g) => g.json).join('\n')}\n`);
  assert.equal(r.status, 0, r.stderr);
  const offline = lines(r.stdout).map((l) => JSON.parse(l) as ScoreRecord<FileRef>);

  const config = loadConfig(env);
  const encoder = await OnnxEncoder.open(config.modelPath, { intraOpThreads: config.intraOpThreads });
  try {
    const snapshot = await loadCurrentFromStore(new LocalBundleStore(bundleDir), { efSearch: config.efSearch, expectModelSha256: encoder.sha256 });
    const scorer = new BatchScorer({ ...config, scoresTopic: 'scores' }, encoder, () => snapshot, createPolicy(config), new QualmMetrics({ defaultMetrics: false }));
    const messages = take.map((g, i) => ({ key: null, value: Buffer.from(g.json), offset: String(i) }));
    const out = await scorer.process('in', 0, messages, () => Promise.resolve());
    assert.equal(out.dlq.length, 0);
    const online = out.scores.map((m) => JSON.parse(String(m.value)) as ScoreRecord);
    assert.equal(online.length, offline.length);
    online.forEach((on, i) => {
      const off = offline[i] as ScoreRecord<FileRef>;
      assert.deepEqual(on.source, { topic: 'in', partition: 0, offset: String(i) });
      assert.deepEqual(placeless(off), placeless(on), `record ${i} (${on.id})`);
      assert.ok(Object.keys(placeless(on)).length === 11);
    });
  } finally {
    await encoder.close();
  }
});
