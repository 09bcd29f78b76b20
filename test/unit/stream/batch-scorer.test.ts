import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { IndexSnapshot } from '../../../src/index/index.js';
import { QualmMetrics } from '../../../src/metrics/index.js';
import { FlagRules, ThresholdPolicy } from '../../../src/scoring/index.js';
import { BatchScorer, type InMessage } from '../../../src/stream/index.js';
import { decodeFloat32Base64, readDlqHeaders, type ReviewRecord, type ScoreRecord } from '../../../src/contracts/index.js';
import { DIM, IdentityEmbedder, twoClusterBundle } from '../../helpers/two-clusters.js';

const root = mkdtempSync(join(tmpdir(), 'qualm-scorer-'));
let snap: IndexSnapshot;
before(async () => {
  snap = await twoClusterBundle(root, { n: 500, seed: 1, modelVersion: '0' });
});
after(() => rmSync(root, { recursive: true, force: true }));

const msg = (offset: number, value: unknown, key: string | null = null): InMessage => ({
  offset: String(offset),
  key: key === null ? null : Buffer.from(key),
  value: typeof value === 'string' ? Buffer.from(value) : Buffer.from(JSON.stringify(value)),
});

test('a mixed batch: good samples scored, bad ones to the DLQ with reasons, far ones flagged', async () => {
  const embedder = new IdentityEmbedder('0');
  const scorer = new BatchScorer(
    { maxMessageBytes: 10_000, inferenceBatch: 2, scoresTopic: 'scores' },
    embedder,
    () => snap,
    new FlagRules({ uncertainty: new ThresholdPolicy(0.5), minPredictedAccuracy: null, oodRule: false, oodPercentile: 0.99 }),
    new QualmMetrics({ defaultMetrics: false }),
    () => new Date('2026-01-01T00:00:00Z'),
  );
  let beats = 0;
  const near = [1, 0.02, 0, 0, 0, 0, 0, 0];
  const far = [0, 0, 0, 0, 0, 0, 0, 1];
  const out = await scorer.process('in', 3, [
    msg(10, { id: 'near', input: { features: near }, meta: { source: 'a' } }),
    msg(11, '{"id":"broken"'),
    msg(12, { id: 'far', input: { features: far } }),
    msg(13, { id: 'short', input: { features: [1, 2] } }),
    msg(14, { input: { embedding: near } }, 'by-key'),
  ], () => {
    beats++;
    return Promise.resolve();
  });
  assert.deepEqual(embedder.runs, [2], 'two feature samples, one run of at most 2');
  assert.equal(beats, 1, 'a heartbeat after each inference run');
  assert.deepEqual(out.dlqCodes, ['QUALM_BAD_JSON', 'QUALM_WRONG_LENGTH']);
  const dlq = out.dlq.map((m) => readDlqHeaders(m.headers as Record<string, unknown>));
  assert.deepEqual(dlq.map((d) => d?.source), [
    { topic: 'in', partition: 3, offset: '11' },
    { topic: 'in', partition: 3, offset: '13' },
  ]);
  assert.equal(String(out.dlq[0]?.value), '{"id":"broken"', 'the original bytes go to the DLQ');

  const scores = out.scores.map((m) => JSON.parse(String(m.value)) as ScoreRecord);
  assert.deepEqual(scores.map((s) => s.id), ['near', 'far', 'by-key']);
  assert.deepEqual(out.scored.map((s) => s.uncertainty), scores.map((s) => s.uncertainty), 'one whole score per scored message, in order');
  assert.deepEqual(out.flaggedReasons, ['out_of_distribution']);
  const [nearS, farS, keyS] = scores;
  assert.ok(nearS && farS && keyS);
  assert.equal(nearS.flagged, false);
  assert.equal(nearS.rule, null);
  assert.equal(nearS.suggested_label, 'east');
  assert.equal(keyS.flagged, false, 'an embedding input scores like its features twin');
  assert.ok(Math.abs(keyS.uncertainty - nearS.uncertainty) < 1e-4, `${keyS.uncertainty} vs ${nearS.uncertainty}`);
  assert.equal(farS.flagged, true);
  assert.equal(farS.reason, 'out_of_distribution');
  assert.equal(farS.rule, 'threshold', 'the threshold fired (the out-of-distribution rule is off here)');
  assert.equal(farS.signals.density_percentile, 1);

  assert.equal(out.review.length, 1);
  const review = JSON.parse(String(out.review[0]?.value)) as ReviewRecord;
  assert.equal(review.id, 'far');
  assert.equal(review.neighbors.length, 10);
  assert.ok(review.neighbors.every((n) => n.label === 'east' || n.label === 'north'));
  assert.equal(review.index_version, snap.version);
  assert.equal(review.model_version, 'identity@0');
  assert.equal(review.scored_at, '2026-01-01T00:00:00.000Z');
  assert.deepEqual(review.source, { topic: 'in', partition: 3, offset: '12' });
  // The embedding travels with the review record, so a labelled item can become a reference.
  assert.equal(review.embedding.model_sha256, 'e'.repeat(64));
  assert.equal(review.embedding.dim, DIM);
  assert.equal(decodeFloat32Base64(review.embedding.b64)?.length, DIM);
  assert.match(review.explanation, /Unlike the training data/);
  assert.equal(review.flag_policy, 'threshold(0.5)');
  assert.equal(review.rule, 'threshold');
  assert.equal(review.signals.mahalanobis_percentile, null, 'a bundle without a Gaussian');
});

test('without a scores topic only review and DLQ records are made', async () => {
  const scorer = new BatchScorer(
    { maxMessageBytes: 10_000, inferenceBatch: 64, scoresTopic: undefined },
    new IdentityEmbedder('0'),
    () => snap,
    new FlagRules({ uncertainty: new ThresholdPolicy(0.5), minPredictedAccuracy: null, oodRule: false, oodPercentile: 0.99 }),
    new QualmMetrics({ defaultMetrics: false }),
  );
  const out = await scorer.process('in', 0, [msg(0, { id: 'x', input: { features: [1, 0, 0, 0, 0, 0, 0, 0] } })], () => Promise.resolve());
  assert.equal(out.scores.length, 0);
  assert.equal(out.scored.length, 1);
});

const rules = (): FlagRules => new FlagRules({ uncertainty: new ThresholdPolicy(0.5), minPredictedAccuracy: null, oodRule: false, oodPercentile: 0.99 });
const deepMeta = (levels: number): Buffer => Buffer.from(`{"id":"deep","input":{"features":[1,0,0,0,0,0,0,0]},"meta":${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}}`);

test('regression: a sample whose meta is 5,000 levels deep goes to the DLQ alone; the batch around it is scored (its records used to overflow JSON.stringify and stop the partition)', async () => {
  const scorer = new BatchScorer({ maxMessageBytes: 100_000, inferenceBatch: 64, scoresTopic: 'scores' }, new IdentityEmbedder('0'), () => snap, rules(), new QualmMetrics({ defaultMetrics: false }));
  const out = await scorer.process(
    'in',
    0,
    [msg(0, { id: 'before', input: { features: [1, 0, 0, 0, 0, 0, 0, 0] } }), { key: null, value: deepMeta(5000), offset: '1' }, msg(2, { id: 'after', input: { features: [0, 1, 0, 0, 0, 0, 0, 0] } })],
    () => Promise.resolve(),
  );
  assert.deepEqual(out.dlqCodes, ['QUALM_META_TOO_DEEP']);
  assert.deepEqual(out.dlq[0]?.value, deepMeta(5000), 'the DLQ copy is the original, byte for byte');
  assert.deepEqual(out.scores.map((m) => m.key), ['before', 'after']);
});

test('a sample whose meta JSON.stringify cannot write, even with the depth limit lifted, goes to the DLQ alone', async () => {
  const scorer = new BatchScorer(
    { maxMessageBytes: 1_000_000, inferenceBatch: 64, scoresTopic: 'scores', maxMetaDepth: 1_000_000, maxMetaBytes: 1_000_000 },
    new IdentityEmbedder('0'),
    () => snap,
    rules(),
    new QualmMetrics({ defaultMetrics: false }),
  );
  const out = await scorer.process('in', 0, [{ key: null, value: deepMeta(100_000), offset: '7' }, msg(8, { id: 'fine', input: { features: [1, 0, 0, 0, 0, 0, 0, 0] } })], () => Promise.resolve());
  assert.deepEqual(out.dlqCodes, ['QUALM_META_TOO_DEEP']);
  assert.match(readDlqHeaders(out.dlq[0]?.headers)?.message ?? '', /too deeply to be written as JSON/);
  assert.deepEqual(out.scores.map((m) => m.key), ['fine']);
});

test('a record that cannot be written as JSON fails its own message (QUALM_RECORD_UNSERIALIZABLE), not the batch', async (t) => {
  // A fake for this unit: JSON.stringify throws for one sample's records, as it would for any
  // value it cannot write; every input the parser lets through is writable today.
  const batch = [msg(0, { id: 'poison', input: { features: [0, 0, 0, 0, 0, 0, 0, 1] } }), msg(1, { id: 'fine', input: { features: [1, 0, 0, 0, 0, 0, 0, 0] } })];
  const real = JSON.stringify;
  t.mock.method(JSON, 'stringify', (value: unknown, ...rest: unknown[]) => {
    if (typeof value === 'object' && value !== null && (value as { id?: unknown }).id === 'poison') throw new RangeError('Maximum call stack size exceeded');
    return real(value, ...(rest as [undefined]));
  });
  const scorer = new BatchScorer({ maxMessageBytes: 10_000, inferenceBatch: 64, scoresTopic: 'scores' }, new IdentityEmbedder('0'), () => snap, rules(), new QualmMetrics({ defaultMetrics: false }));
  const out = await scorer.process('in', 0, batch, () => Promise.resolve());
  t.mock.restoreAll();
  assert.deepEqual(out.dlqCodes, ['QUALM_RECORD_UNSERIALIZABLE']);
  assert.match(readDlqHeaders(out.dlq[0]?.headers)?.message ?? '', /its score record cannot be written as JSON: .*Maximum call stack/);
  assert.deepEqual(out.scores.map((m) => m.key), ['fine']);
  assert.equal(out.review.length, 0, 'the poisoned sample, far from the references, would have been flagged; nothing of it is published');
  assert.equal(out.scored.length, 1, 'the failed sample is not counted as scored');
});

test('a DLQ copy larger than QUALM_MAX_DLQ_BYTES is cut to fit, with its original length in qualm-dlq-truncated; smaller ones stay whole', async () => {
  const scorer = new BatchScorer(
    { maxMessageBytes: 1000, inferenceBatch: 64, scoresTopic: undefined, maxDlqBytes: 4096 },
    new IdentityEmbedder('0'),
    () => snap,
    rules(),
    new QualmMetrics({ defaultMetrics: false }),
  );
  const huge = Buffer.alloc(50_000, 0x61);
  const small = Buffer.alloc(2000, 0x62);
  const out = await scorer.process(
    'in',
    1,
    [
      { key: Buffer.from('k-huge'), value: huge, offset: '40', headers: { trace: 'abc' } },
      { key: Buffer.from('k-small'), value: small, offset: '41' },
    ],
    () => Promise.resolve(),
  );
  assert.deepEqual(out.dlqCodes, ['QUALM_OVERSIZE', 'QUALM_OVERSIZE']);
  const [cut, whole] = out.dlq;
  const size = (m: typeof cut): number =>
    (m?.key?.length ?? 0) + ((m?.value as Buffer | null)?.length ?? 0) + Object.entries(m?.headers ?? {}).reduce((n, [k, v]) => n + k.length + Buffer.byteLength(String(v)), 0);
  assert.ok(size(cut) <= 4096, `the cut copy is ${size(cut)} bytes`);
  assert.equal(cut?.headers?.['qualm-dlq-truncated'], '50000');
  assert.deepEqual(cut?.value, huge.subarray(0, (cut?.value as Buffer).length), 'a prefix of the original');
  assert.ok((cut?.value as Buffer).length > 3000, 'as much of it as fits');
  assert.equal(cut?.headers?.trace, 'abc', "the original's headers are kept");
  assert.deepEqual(readDlqHeaders(cut?.headers)?.source, { topic: 'in', partition: 1, offset: '40' }, 'where the whole original is');
  assert.deepEqual(whole?.value, small);
  assert.equal(whole?.headers?.['qualm-dlq-truncated'], undefined);
});
