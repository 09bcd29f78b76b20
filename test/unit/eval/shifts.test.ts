import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluateEmbeddings, renderReport, type EncodedSets } from '../../../src/eval/index.js';
import { seededRandom } from '../../../src/util/random.js';
import { BLOB_EVAL_SETTINGS, blobs } from '../../helpers/blobs.js';

const DIM = 16;


test('the OOD rule on held-out data and the shifted sets, through real bundles: stronger shifts are flagged more and detected better', async () => {
  const rnd = seededRandom(31);
  const centres = Array.from({ length: 4 }, () => Float32Array.from({ length: DIM }, () => rnd() * 2 - 1));
  const ref = blobs(1200, centres, 0.5, rnd);
  const testSet = blobs(600, centres, 0.5, rnd);
  // The "corruption": the first 300 test rows again (same labels: i % 4), moved further and further.
  const rows = Int32Array.from({ length: 300 }, (_, i) => i);
  const sets = [1, 2, 4].map((shift, s) => ({ family: 'push', severity: s + 1, level: `shift ${shift}`, embeddings: blobs(300, centres, 0.5, seededRandom(40 + s), shift).x }));
  const encoders: EncodedSets[] = [{ name: 'a', sha256: 'a'.repeat(64), ref: ref.x, test: testSet.x, ood: null }];
  const detail = await evaluateEmbeddings({
    ...BLOB_EVAL_SETTINGS,
    dim: DIM,
    encoders,
    refIds: Array.from({ length: 1200 }, (_, i) => `r${i}`),
    refLabels: ref.y,
    testLabels: testSet.y,
    flagging: { flagThreshold: 0.9, oodRule: true, oodPercentile: 0.95, shiftWindow: 50 },
    shifts: { kind: 'image', rows, sets },
  });
  const r = detail.result;
  const rule = r.ood_rule;
  assert.equal(rule.percentile, 0.95);
  assert.equal(rule.gaussian_cross_fit_folds, 5);
  assert.equal(r.ood_rule_in_distribution_rate, rule.in_distribution.rule);
  // 600 held-out points at nominal 5%: binomial sd 0.9 points.
  assert.ok(r.ood_rule_in_distribution_rate > 0.01 && r.ood_rule_in_distribution_rate < 0.09, `in-distribution rate ${r.ood_rule_in_distribution_rate}`);
  assert.equal(rule.ood_set, null);
  const s = r.shifts;
  assert.ok(s !== undefined);
  assert.equal(s.n_rows, 300);
  assert.equal(s.sets.length, 3);
  const [mild, mid, far] = s.sets as [(typeof s.sets)[number], (typeof s.sets)[number], (typeof s.sets)[number]];
  assert.ok(mild.flag_rate < mid.flag_rate && mid.flag_rate < far.flag_rate, `flag rates ${mild.flag_rate} ${mid.flag_rate} ${far.flag_rate}`);
  assert.ok(far.flag_rate > 0.8 && far.detection_auroc.qualm_ood > 0.9, JSON.stringify(far));
  assert.ok(mild.detection_auroc.qualm_ood < far.detection_auroc.qualm_ood);
  assert.ok(far.ood_rule.mean_percentile > mild.ood_rule.mean_percentile);
  assert.ok(far.flag_rate >= far.sample_flag_rate, 'the shift window only adds flags');
  assert.deepEqual(s.non_monotone_families, [], `clean ${s.clean.flag_rate}, ${s.sets.map((x) => x.flag_rate).join(' ')}`);
  assert.ok(Math.abs(mild.calibration_gap - (mild.mean_predicted_accuracy - mild.probe_accuracy)) < 1e-12);
  // The rows' true labels (i % 4) and the probe's predicted-label shares, per set.
  assert.deepEqual(s.label_names, ['0', '1', '2', '3']);
  assert.deepEqual(s.label_share, [0.25, 0.25, 0.25, 0.25]);
  for (const row of [s.clean, ...s.sets]) {
    assert.equal(row.predicted_label_share.length, 4);
    assert.ok(Math.abs(row.predicted_label_share.reduce((a, b) => a + b, 0) - 1) < 1e-9, JSON.stringify(row.predicted_label_share));
  }
  // On clean, well-separated blobs the probe is mostly right, so it predicts each label for about a quarter of the rows.
  for (const v of s.clean.predicted_label_share) assert.ok(v > 0.15 && v < 0.35, JSON.stringify(s.clean.predicted_label_share));
  const md = renderReport(r, null, { command: 'qualm evaluate', efSearch: 50, densityWeight: 0.9 });
  assert.match(md, /## The out-of-distribution rule on held-out data/);
  assert.match(md, /## Covariate shifts \(--shifts\)/);
  assert.match(md, /\| push 3 \(shift 4\) \|/);
  assert.match(md, /300 test rows \(true labels: 0 25\.0%\), /, 'four labels: the largest share');
});
