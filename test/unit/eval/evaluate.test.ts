import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROBABILITY_SCORES, SCORE_NAMES, auroc, evaluateEmbeddings, roundResult, type EncodedSets, type EvaluationInput } from '../../../src/eval/index.js';
import { normalizeRows } from '../../../src/encoder/index.js';
import { seededRandom } from '../../../src/util/random.js';
import { BLOB_EVAL_SETTINGS, blobs } from '../../helpers/blobs.js';

const DIM = 16;


/** Another "encoder": the same points with a little independent noise, renormalised. */
function perturb(x: Float32Array, rnd: () => number): Float32Array {
  return normalizeRows(Float32Array.from(x, (v) => v + 0.05 * (rnd() - 0.5)), DIM);
}

test('evaluateEmbeddings builds real bundles and reports every score, metric and OOD number', async () => {
  const rnd = seededRandom(21);
  const centres = Array.from({ length: 4 }, () => Float32Array.from({ length: DIM }, () => rnd() * 2 - 1));
  const ref = blobs(800, centres, 0.6, rnd);
  const test = blobs(200, centres, 0.6, rnd);
  const ood = blobs(100, centres, 0.6, rnd, 3);
  const encoders: EncodedSets[] = [{ name: 'a', sha256: 'a'.repeat(64), ref: ref.x, test: test.x, ood: ood.x }];
  for (const name of ['b', 'c']) encoders.push({ name, sha256: name.repeat(64), ref: perturb(ref.x, rnd), test: perturb(test.x, rnd), ood: perturb(ood.x, rnd) });
  const phases = new Set<string>();
  const detail = await evaluateEmbeddings(
    {
      ...BLOB_EVAL_SETTINGS,
      dim: DIM,
      encoders,
      refIds: Array.from({ length: 800 }, (_, i) => `r${i}`),
      refLabels: ref.y,
      testLabels: test.y,
    },
    { onProgress: (phase) => phases.add(phase) },
  );
  const r = roundResult(detail.result);
  assert.equal(r.n_ref, 800);
  assert.equal(r.n_test, 200);
  assert.equal(r.n_ood, 100);
  assert.equal(r.k, 10);
  assert.ok(r.probe_accuracy > 0.5 && r.probe_accuracy < 1, 'the probe makes some errors');
  assert.ok(r.hnsw_recall_at_100 > 0.95);
  assert.equal(r.target, 'probe');
  assert.equal(r.downstream_accuracy, r.probe_accuracy);
  for (const name of SCORE_NAMES) {
    const m = r.scores[name];
    assert.ok(m !== undefined, `score ${name}`);
    assert.equal(m.decile_accuracy.length, 10);
    assert.ok(m.aurc >= r.oracle_aurc - 1e-9, `${name}: AURC ${m.aurc} below the oracle ${r.oracle_aurc}`);
    // The model's probabilities exist for the test set only.
    if ((PROBABILITY_SCORES as readonly string[]).includes(name)) assert.equal(r.ood[name], undefined, `ood ${name}`);
    else assert.ok(r.ood[name] !== undefined, `ood ${name}`);
  }
  // The probe's own confidence, qualm's combination with it, and their comparison.
  assert.equal(r.model_combination.fitted, true, JSON.stringify(r.model_combination));
  const pairs = r.msp_comparison?.pairs;
  assert.ok(pairs?.qualm !== undefined && pairs.qualm_with_model !== undefined && pairs.entropy !== undefined);
  const gap = (r.scores.qualm_with_model?.auroc ?? NaN) - (r.scores.msp?.auroc ?? NaN);
  assert.ok(Math.abs(pairs.qualm_with_model.auroc.delta - gap) < 2e-4, `${pairs.qualm_with_model.auroc.delta} vs ${gap} (rounded)`);
  assert.deepEqual(r.delta_vs_msp, { auroc: pairs.qualm_with_model.auroc.delta, ci95: pairs.qualm_with_model.auroc.ci95 });
  for (const p of Object.values(pairs)) for (const m of ['auroc', 'aurc', 'kendall_tau'] as const) assert.ok(p[m].ci95[0] <= p[m].ci95[1], JSON.stringify(p));
  // Without the pre-normalisation output the L2 norm is constant: no rank correlation, chance AUROC.
  assert.equal(r.scores.l2_norm?.kendall_tau, null);
  assert.equal(r.scores.l2_norm?.auroc, 0.5);
  // Shifted points are far from every reference: the distance scores find them.
  assert.ok((r.ood.kth_distance?.auroc ?? 0) > 0.9);
  assert.ok((r.ood.qualm_ood?.auroc ?? 0) > 0.9, JSON.stringify(r.ood));
  assert.equal(r.combination.fitted, true, JSON.stringify(r.combination));
  assert.ok(phases.has('probe') && phases.has('gmm fit'));
  JSON.parse(JSON.stringify(r));
});

test('with the downstream model\'s predictions, their errors are ranked, and msp and entropy join the baselines', async () => {
  const rnd = seededRandom(5);
  const centres = Array.from({ length: 3 }, () => Float32Array.from({ length: DIM }, () => rnd() * 2 - 1));
  const ref = blobs(600, centres, 0.5, rnd);
  const test = blobs(150, centres, 0.5, rnd);
  const base: EvaluationInput = {
    setup: 'blobs',
    dim: DIM,
    encoders: [{ name: 'a', sha256: 'a'.repeat(64), ref: ref.x, test: test.x, ood: null }],
    refIds: Array.from({ length: 600 }, (_, i) => `r${i}`),
    refLabels: ref.y,
    testLabels: test.y,
    labelNames: ['x', 'y', 'z'],
    k: 10,
    densityWeight: 0.9,
    efSearch: 50,
    probe: { epochs: 5, batchSize: 64, learningRate: 0.05, weightDecay: 1e-4, seed: 1 },
    gmm: { components: 3, maxIter: 10, tol: 1e-4, varianceFloor: 1e-6, kmeansIter: 5, seed: 1 },
    combinationFit: { minHeldOut: 100 },
  };
  // A "model" wrong on every 4th point, less confident where it is wrong.
  const wrong = Float64Array.from({ length: 150 }, (_, i) => (i % 4 === 0 ? 1 : 0));
  const labels = Int32Array.from(test.y, (y, i) => (wrong[i] === 1 ? (y + 1) % 3 : y));
  const probs = new Float64Array(150 * 3);
  labels.forEach((l, i) => {
    const peak = wrong[i] === 1 ? 0.4 + 0.19 * rnd() : 0.6 + 0.4 * rnd();
    for (let c = 0; c < 3; c++) probs[i * 3 + c] = c === l ? peak : (1 - peak) / 2;
  });
  const probe = await evaluateEmbeddings(base);
  const own = await evaluateEmbeddings({ ...base, predictions: { labels, probs, source: 'preds.jsonl' } });
  assert.equal(own.result.target, 'predictions');
  assert.equal(own.result.target_source, 'preds.jsonl');
  assert.deepEqual([...own.error01], [...wrong], 'the ranked error is the model\'s, not the probe\'s');
  assert.ok(Math.abs(own.result.downstream_accuracy - (1 - 38 / 150)) < 1e-12, 'points 0, 4, ..., 148 are wrong');
  assert.ok(Math.abs(own.result.test_error_rate - 38 / 150) < 1e-12);
  // The probe and qualm's scores do not depend on whose errors are ranked.
  assert.equal(own.result.probe_accuracy, probe.result.probe_accuracy);
  assert.deepEqual([...(own.test.qualm ?? [])], [...(probe.test.qualm ?? [])]);
  assert.notDeepEqual([...own.error01], [...probe.error01]);
  // msp and entropy: per point from the probabilities, and their metrics against the model's errors.
  const msp = own.test.msp;
  const entropy = own.test.entropy;
  assert.ok(msp !== undefined && entropy !== undefined);
  for (let i = 0; i < 150; i++) {
    const row = [0, 1, 2].map((c) => probs[i * 3 + c] as number);
    assert.ok(Math.abs((msp[i] as number) - (1 - Math.max(...row))) < 1e-12);
    assert.ok(Math.abs((entropy[i] as number) + row.reduce((h, p) => h + p * Math.log(p), 0)) < 1e-12);
  }
  assert.equal(own.result.scores.msp?.auroc, auroc(msp, wrong));
  assert.equal(own.result.scores.msp?.auroc, 1, 'every wrong point is less confident than every right one');
  assert.equal(own.result.scores.entropy?.auroc, 1, 'the entropy of (p, (1 - p) / 2, (1 - p) / 2) falls as p rises above 1/3');
  // The probe's run ranks the probe's errors by the probe's own confidence.
  assert.ok(probe.result.scores.msp !== undefined && probe.result.scores.qualm_with_model !== undefined);
  assert.ok(own.result.delta_vs_msp !== null, 'the predictions file\'s probabilities feed qualm_with_model too');
  // Label-only predictions: the model's errors, no msp or entropy, and a one-hot Brier (2 per error).
  const hard = await evaluateEmbeddings({ ...base, predictions: { labels, probs: null, source: 'preds.csv' } });
  assert.deepEqual([...hard.error01], [...wrong]);
  assert.equal(hard.result.scores.msp, undefined);
  assert.equal(hard.result.scores.qualm_with_model, undefined);
  assert.equal(hard.result.delta_vs_msp, null);
  assert.ok(Math.abs(hard.result.mean_brier - (2 * 38) / 150) < 1e-12);
  await assert.rejects(evaluateEmbeddings({ ...base, predictions: { labels: labels.subarray(1), probs: null, source: 'short' } }), /do not match the test set/);
});
