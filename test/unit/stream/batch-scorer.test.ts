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
