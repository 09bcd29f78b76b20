// docs/bring-your-own.md, run as written: every ```sh block of the page, in order, in one bash
// script in a temporary directory, against a real broker, the real models and real HNSW
// bundles. Then what the page says the run shows is checked on the files and topics it left.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readDlqHeaders, type ScoreRecord } from '../../src/contracts/index.js';
import { startLocalKafka, type LocalKafka } from '../../src/local-kafka/index.js';
import { freeLoopbackPort } from '../../src/util/ports.js';
import { TopicReader, testKafka } from '../helpers/kafka.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DOC = join(ROOT, 'docs', 'bring-your-own.md');

/** The page's ```sh blocks, in order. */
function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
}

let kafka: LocalKafka;
const dir = mkdtempSync(join(tmpdir(), 'qualm-it-byo-'));

before(async () => {
  kafka = await startLocalKafka();
});

after(async () => {
  await kafka?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the script with bash -euo pipefail in `cwd`; resolves with its exit code and output. */
function bash(script: string, cwd: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

/** The environment a user's shell would have: no QUALM_* or KAFKA_* settings of ours leak in. */
function userEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('QUALM_') && !k.startsWith('KAFKA_')) env[k] = v;
  return { ...env, ...extra };
}

test('docs/bring-your-own.md runs as written: a text encoder and an image encoder from files to a worker', { timeout: 900_000 }, async () => {
  const blocks = shellBlocks(readFileSync(DOC, 'utf8'));
  assert.ok(blocks.length >= 8, `expected the walk-through's blocks, found ${blocks.length}`);
  const port = await freeLoopbackPort();
  const run = await bash(blocks.join('\n'), dir, userEnv({ qualm_repo: ROOT, KAFKA_BROKERS: kafka.brokers.join(','), QUALM_METRICS_PORT: String(port) }));
  assert.equal(run.code, 0, `the walk-through failed:\n${run.out.slice(-6000)}`);

  // A: the text example.
  const texts = join(dir, 'byo', 'texts');
  assert.ok(existsSync(join(texts, 'bundles', 'CURRENT')), 'build-index wrote a bundle and its pointer');
  const textBundle = readFileSync(join(texts, 'bundles', 'CURRENT'), 'utf8').trim();
  const textManifest = JSON.parse(readFileSync(join(texts, 'bundles', textBundle, 'manifest.json'), 'utf8')) as { count: number; labels: { names: string[] } | null };
  assert.equal(textManifest.count, 1000);
  assert.deepEqual(textManifest.labels?.names, ['neg', 'pos']);
  const textScores = readFileSync(join(texts, 'scores.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ScoreRecord<null>);
  assert.equal(textScores.length, 200);
  const textEval = JSON.parse(readFileSync(join(texts, 'report', 'result.json'), 'utf8')) as { target: string; scores: Record<string, { auroc: number }> };
  assert.equal(textEval.target, 'predictions');
  for (const row of ['qualm', 'msp', 'entropy']) assert.ok(Number.isFinite(textEval.scores[row]?.auroc), `evaluate reports ${row}`);
  const client = testKafka(kafka.brokers);
  const textTopic = await TopicReader.start(client, 'reviews.scores');
  const textDlq = await TopicReader.start(client, 'reviews.dlq');
  try {
    await textTopic.waitForCount(200, 'text score records');
    await textDlq.waitForCount(1, 'text DLQ records');
    const d = textDlq.messages[0];
    assert.equal(d?.key?.toString(), 'blank-1');
    assert.equal(readDlqHeaders(d?.headers)?.code, 'QUALM_EMPTY_TEXT');
    // The worker and `qualm score` score the same texts alike (one Scorer behind both).
    const offline = new Map(textScores.map((r) => [r.id, r.uncertainty]));
    for (const m of textTopic.messages) {
      const r = JSON.parse(m.value?.toString() ?? '') as ScoreRecord;
      assert.ok(Math.abs((offline.get(r.id) ?? NaN) - r.uncertainty) < 1e-6, `text ${r.id}: worker ${r.uncertainty} vs score ${offline.get(r.id)}`);
    }
  } finally {
    await textTopic.stop();
    await textDlq.stop();
  }

  // B: the image example, PNG bytes as raw messages.
  const images = join(dir, 'byo', 'images');
  const csv = readFileSync(join(images, 'scores.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 501, 'a header and 500 rows');
  const header = (csv[0] as string).split(',');
  const [idCol, uCol] = [header.indexOf('id'), header.indexOf('uncertainty')];
  const offline = new Map(csv.slice(1).map((row) => row.split(',')).map((c) => [c[idCol] as string, Number(c[uCol])]));
  const imageEval = JSON.parse(readFileSync(join(images, 'report', 'result.json'), 'utf8')) as { target: string; downstream_accuracy: number; scores: Record<string, { auroc: number }> };
  assert.equal(imageEval.target, 'predictions');
  assert.ok(imageEval.downstream_accuracy > 0.7 && imageEval.downstream_accuracy < 0.95, `the pixel model's accuracy ${imageEval.downstream_accuracy}`);
  for (const row of ['qualm', 'msp', 'entropy']) assert.ok(Number.isFinite(imageEval.scores[row]?.auroc), `evaluate reports ${row}`);
  const imageTopic = await TopicReader.start(client, 'images.scores');
  const imageDlq = await TopicReader.start(client, 'images.dlq');
  try {
    await imageTopic.waitForCount(500, 'image score records');
    await imageDlq.waitForCount(2, 'image DLQ records');
    assert.equal(imageTopic.messages.length, 500);
    for (const m of imageTopic.messages) {
      const r = JSON.parse(m.value?.toString() ?? '') as ScoreRecord;
      assert.equal(m.key?.toString(), r.id, 'the Kafka key is the id of a raw image message');
      assert.ok(Math.abs((offline.get(r.id) ?? NaN) - r.uncertainty) < 1e-6, `image ${r.id}: worker ${r.uncertainty} vs score ${offline.get(r.id)}`);
    }
    const dlq = new Map(imageDlq.messages.map((m) => [m.key?.toString(), readDlqHeaders(m.headers)?.code]));
    assert.deepEqual(Object.fromEntries(dlq), { 'broken-1': 'QUALM_IMAGE_UNDECODABLE', 'truncated-1': 'QUALM_IMAGE_UNDECODABLE' });
  } finally {
    await imageTopic.stop();
    await imageDlq.stop();
  }
});

test("the README's 'Your own model' block runs as written from the checkout", { timeout: 300_000 }, async () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const from = readme.indexOf('### Your own model');
  assert.ok(from > 0, 'the README has the block');
  const block = shellBlocks(readme.slice(from))[0] ?? '';
  assert.ok(block?.includes('qualm build-index --references'), 'the first sh block after the heading is the one');
  const out = join(ROOT, 'var', 'byo');
  rmSync(out, { recursive: true, force: true });
  try {
    const run = await bash(block, ROOT, userEnv({}));
    assert.equal(run.code, 0, `the README block failed:\n${run.out.slice(-4000)}`);
    const lines = readFileSync(join(out, 'scores.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 500);
    const r = JSON.parse(lines[0] as string) as ScoreRecord<null>;
    assert.ok(r.uncertainty >= 0 && r.uncertainty <= 1 && r.model_version === 'encoder@1', JSON.stringify(r).slice(0, 300));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
