import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { seededRandom } from '../../../src/cli/sample-mix.js';
import { decodeFloat32Base64, type RecordSource, type Sample } from '../../../src/contracts/index.js';
import { normalizeRows } from '../../../src/encoder/index.js';
import type { IndexSnapshot } from '../../../src/index/index.js';
import { CSV_COLUMNS, Scorer, csvField, csvHeader, csvRow, type EncodeStage, type ScoreItem } from '../../../src/scorer/index.js';
import { FlagRules, TargetRatePolicy, ThresholdPolicy, bundleScoreOptions, scoreNeighbors } from '../../../src/scoring/index.js';
import { SIGNAL_WIRE_NAMES } from '../../../src/signals.js';
import { DIM, IdentityEmbedder, twoClusterBundle } from '../../helpers/two-clusters.js';

const root = mkdtempSync(join(tmpdir(), 'qualm-scorer-unit-'));
let snap: IndexSnapshot;
before(async () => {
  snap = await twoClusterBundle(root, { n: 400, seed: 7, modelVersion: '3' });
});
after(() => rmSync(root, { recursive: true, force: true }));

const threshold = (t = 0.5): FlagRules => new FlagRules({ uncertainty: new ThresholdPolicy(t), minPredictedAccuracy: null, oodRule: false, oodPercentile: 0.99 });
const features = (id: string, v: number[], meta?: Record<string, unknown>): Sample => ({ id, input: { kind: 'features', values: Float32Array.from(v) }, meta });
const NEAR = [1, 0.02, 0, 0, 0, 0, 0, 0];
const FAR = [0, 0, 0, 0, 0, 0, 0, 1];
const AT = new Date('2026-02-03T04:05:06Z');

test('one Scored per item, in order, with its own source; records and decisions agree', async () => {
  const embedder = new IdentityEmbedder('3');
  const scorer = new Scorer({ embedder, snapshot: () => snap, policy: threshold(), batch: 2, now: () => AT });
  const items: ScoreItem<RecordSource>[] = [
    { sample: features('near', NEAR, { a: 1 }), source: { file: 'in.jsonl', line: 1 } },
    { sample: features('far', FAR), source: { topic: 't', partition: 2, offset: '9' } },
    { sample: { id: 'emb', input: { kind: 'embedding', values: normalizeRows(Float32Array.from(NEAR), DIM) }, meta: undefined }, source: null },
  ];
  let beats = 0;
  const out = await scorer.score(items, () => {
    beats++;
    return Promise.resolve();
  });
  assert.deepEqual(embedder.runs, [2], 'the two feature inputs in one run; the embedding skips the encoder');
  assert.equal(beats, 1);
  assert.deepEqual(out.map((s) => s.sample.id), ['near', 'far', 'emb']);
  assert.deepEqual(out.map((s) => s.source), items.map((i) => i.source));
  const [near, far, emb] = out;
  assert.ok(near?.ok && far?.ok && emb?.ok);
  assert.equal(near.decision, null);
  assert.equal(near.review, null, 'no review record for an unflagged sample');
  assert.deepEqual(near.record.source, { file: 'in.jsonl', line: 1 });
  assert.deepEqual(near.record.meta, { a: 1 });
  assert.equal(near.record.scored_at, AT.toISOString());
  assert.equal(near.record.model_version, 'identity@3');
  assert.equal(near.record.index_version, snap.version);
  assert.equal(near.record.suggested_label, 'east');
  assert.equal(emb.record.meta, null);
  assert.equal(emb.record.source, null);
  assert.ok(Math.abs(emb.record.uncertainty - near.record.uncertainty) < 1e-6, 'an embedding input scores like its features twin');

  assert.ok(far.decision !== null && far.review !== null);
  assert.equal(far.record.flagged, true);
  assert.equal(far.record.reason, far.decision.reason);
  assert.equal(far.record.rule, 'threshold');
  assert.equal(far.review.reason, far.decision.reason);
  assert.deepEqual(far.review.source, { topic: 't', partition: 2, offset: '9' });
  assert.equal(far.review.flag_policy, 'threshold(0.5)');
  assert.equal(far.review.neighbors.length, 10);
  assert.deepEqual(far.review.signals, far.record.signals);
  assert.deepEqual(Object.keys(far.record.signals), SIGNAL_WIRE_NAMES);
  const z = decodeFloat32Base64(far.review.embedding.b64);
  assert.ok(z !== undefined && z.length === DIM);
  assert.ok(Math.abs((z[DIM - 1] as number) - 1) < 1e-6, 'the review carries the embedding itself');
});

test('the score is what scoreNeighbors gives on the snapshot (the Scorer adds no arithmetic of its own)', async () => {
  const scorer = new Scorer({ embedder: new IdentityEmbedder('3'), snapshot: () => snap, policy: threshold(), batch: 64 });
  const rnd = seededRandom(3);
  const samples = Array.from({ length: 20 }, (_, i) => features(`s${i}`, Array.from({ length: DIM }, () => rnd() - 0.2)));
  const out = await scorer.score(samples.map((sample) => ({ sample, source: null })));
  out.forEach((s, i) => {
    assert.ok(s.ok);
    const z = normalizeRows(Float32Array.from((samples[i]?.input as { values: Float32Array }).values), DIM);
    const want = scoreNeighbors(snap.search(z), snap.stats, bundleScoreOptions(snap), z);
    assert.equal(s.score.uncertainty, want.uncertainty);
    assert.equal(s.record.uncertainty, want.uncertainty);
    assert.equal(s.record.signals.density_percentile, want.signals.densityPercentile);
  });
});

test('an input the encoder stage refuses is a Rejected value in its place; the others are scored', async () => {
  const embedder = new IdentityEmbedder('3');
  const encode: EncodeStage = (inputs) =>
    Promise.resolve(inputs.map((inp, i) => (i === 1 ? { code: 'QUALM_IMAGE_UNDECODABLE' as const, message: 'not an image' } : normalizeRows(Float32Array.from((inp as { values: Float32Array }).values), DIM))));
  const scorer = new Scorer({ embedder, snapshot: () => snap, policy: threshold(), batch: 8, encode });
  const out = await scorer.score([
    { sample: features('a', NEAR), source: { file: 'f', line: 1 } },
    { sample: features('b', NEAR), source: { file: 'f', line: 2 } },
    { sample: features('c', FAR), source: { file: 'f', line: 3 } },
  ]);
  assert.deepEqual(out.map((s) => s.ok), [true, false, true]);
  const bad = out[1];
  assert.ok(bad !== undefined && !bad.ok);
  assert.equal(bad.code, 'QUALM_IMAGE_UNDECODABLE');
  assert.equal(bad.message, 'not an image');
  assert.deepEqual(bad.source, { file: 'f', line: 2 });
  assert.equal(bad.sample.id, 'b');
  const short: EncodeStage = () => Promise.resolve([]);
  await assert.rejects(new Scorer({ embedder, snapshot: () => snap, policy: threshold(), batch: 8, encode: short }).score([{ sample: features('a', NEAR), source: null }]), /0 results for 1 inputs/);
});

test('a stateful policy sees the samples in order across calls; the snapshot is read once per call', async () => {
  let reads = 0;
  const policy = new FlagRules({ uncertainty: new TargetRatePolicy(0.5, 4, 2, 4), minPredictedAccuracy: null, oodRule: false, oodPercentile: 0.99 });
  const stages: string[] = [];
  const scorer = new Scorer({
    embedder: new IdentityEmbedder('3'),
    snapshot: () => {
      reads++;
      return snap;
    },
    policy,
    batch: 4,
    metrics: {
      time: (stage) => {
        stages.push(stage);
        return () => undefined;
      },
    },
  });
  // The fallback threshold 2 flags nothing during warm-up; afterwards the top half of the window is flagged.
  const first = await scorer.score([NEAR, NEAR, NEAR, NEAR].map((v, i) => ({ sample: features(`w${i}`, v), source: null })));
  const second = await scorer.score([{ sample: features('far', FAR), source: null }]);
  assert.equal(reads, 2);
  assert.deepEqual(stages, ['embed', 'search', 'score', 'embed', 'search', 'score']);
  assert.ok(first.every((s) => s.ok && s.decision === null), 'warm-up: nothing flagged');
  assert.ok(second[0]?.ok && second[0].decision?.rule === 'target_rate', 'after warm-up the window decides');
  assert.deepEqual(await scorer.score([]), []);
  assert.equal(reads, 2, 'an empty call reads nothing');
});

test('CSV: the header is the record columns then every signal; fields quoted per RFC 4180, null empty', async () => {
  assert.deepEqual(CSV_COLUMNS.slice(0, 7), ['id', 'uncertainty', 'predicted_accuracy', 'flagged', 'reason', 'rule', 'suggested_label']);
  assert.deepEqual(CSV_COLUMNS.slice(7), SIGNAL_WIRE_NAMES);
  assert.equal(csvHeader().split(',').length, 7 + SIGNAL_WIRE_NAMES.length);
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('two\nlines'), '"two\nlines"');
  assert.equal(csvField(null), '');
  assert.equal(csvField(false), 'false');
  const scorer = new Scorer({ embedder: new IdentityEmbedder('3'), snapshot: () => snap, policy: threshold(), batch: 8 });
  const [s] = await scorer.score([{ sample: features('id,"1"', FAR), source: null }]);
  assert.ok(s?.ok);
  const row = csvRow(s.record);
  assert.ok(row.startsWith('"id,""1""",'), row);
  const cells = row.replace(/^"id,""1""",/, 'ID,').split(',');
  assert.equal(cells.length, CSV_COLUMNS.length);
  assert.equal(cells[3], 'true');
  assert.equal(Number(cells[1]), s.record.uncertainty);
  assert.equal(cells[CSV_COLUMNS.indexOf('mahalanobis_percentile')], '', 'a null signal is an empty cell');
});
