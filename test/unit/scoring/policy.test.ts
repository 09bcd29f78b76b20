import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../../src/cli/sample-mix.js';
import { FlagRules, TargetRatePolicy, ThresholdPolicy, explain, flagReason, type Signals } from '../../../src/scoring/index.js';

test('threshold policy flags at or above the threshold', () => {
  const p = new ThresholdPolicy(0.6);
  assert.equal(p.decide(0.59), false);
  assert.equal(p.decide(0.6), true);
  assert.equal(p.decide(1), true);
  assert.throws(() => new ThresholdPolicy(1.2), RangeError);
});

test('target-rate policy flags about the target share of stationary traffic', () => {
  const rnd = seededRandom(5);
  const p = new TargetRatePolicy(0.1, 1000, 0.5);
  let flagged = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) if (p.decide(rnd())) flagged++;
  assert.ok(Math.abs(flagged / n - 0.1) < 0.01, `flag rate ${flagged / n}`);
});

test('target-rate policy follows drift: the share stays on target after the scale changes', () => {
  const rnd = seededRandom(6);
  const p = new TargetRatePolicy(0.05, 500, 0.5);
  for (let i = 0; i < 2000; i++) p.decide(rnd() * 0.2);
  let flagged = 0;
  // Traffic moves to a higher range: after one window, the cut has moved with it.
  for (let i = 0; i < 500; i++) p.decide(0.5 + rnd() * 0.5);
  for (let i = 0; i < 4000; i++) if (p.decide(0.5 + rnd() * 0.5)) flagged++;
  assert.ok(Math.abs(flagged / 4000 - 0.05) < 0.015, `flag rate ${flagged / 4000}`);
});

test('target-rate policy uses the fallback threshold while warming up', () => {
  const p = new TargetRatePolicy(0.1, 1000, 0.7, 10);
  assert.equal(p.cut(), 0.7);
  assert.equal(p.decide(0.69), false);
  assert.equal(p.decide(0.71), true);
});

test('maximal uncertainty is always flagged, even when it fills the window', () => {
  const p = new TargetRatePolicy(0.1, 20, 0.5, 5);
  for (let i = 0; i < 50; i++) assert.equal(p.decide(1), true);
});

const sig = (densityPercentile: number, labelAgreement: number | null): Signals => ({
  meanKnnDistance: 0.2,
  kthKnnDistance: 0.3,
  densityPercentile,
  relativeDensity: 1,
  relativeDensityPercentile: densityPercentile,
  labelAgreement,
  labelEntropy: labelAgreement === null ? null : 1 - labelAgreement,
  kthKnnPercentile: densityPercentile,
  labelMargin: labelAgreement,
  reverseNeighborConsistency: null,
  mahalanobisPercentile: null,
  relativeMahalanobisPercentile: null,
  modelConfidence: null,
  modelEntropy: null,
  modelNeighborAgreement: null,
  modelPredictionUsed: null,
  modelGaussianLogOdds: null,
});

test('flag reasons', () => {
  assert.equal(flagReason(sig(0.995, 1), 0.99), 'out_of_distribution');
  assert.equal(flagReason(sig(0.3, 0.4), 0.99), 'ambiguous_neighborhood');
  assert.equal(flagReason(sig(0.9, 0.95), 0.99), 'low_density');
  assert.equal(flagReason(sig(0.9, null), 0.99), 'low_density');
  assert.match(explain('ambiguous_neighborhood', sig(0.3, 0.4), 'Shirt'), /40\.0% of the weighted vote goes to Shirt/);
  assert.match(explain('out_of_distribution', sig(0.995, 1), null), /99\.5%/);
});

const scored = (uncertainty: number, predictedAccuracy: number | null, densityPercentile: number, labelAgreement: number | null = 0.9) => ({
  uncertainty,
  predictedAccuracy,
  signals: sig(densityPercentile, labelAgreement),
});

test('flag rules: the out-of-distribution rule fires beyond every reference, whatever the policy', () => {
  const every = new FlagRules({ uncertainty: new ThresholdPolicy(0.9), minPredictedAccuracy: null, oodRule: true, oodPercentile: 1 });
  assert.deepEqual(every.decide(scored(0.1, 0.99, 1)), { rule: 'beyond_references', reason: 'out_of_distribution' });
  assert.equal(every.decide(scored(0.1, 0.99, 0.999)), null, 'inside the farthest reference: the policy decides');
  assert.deepEqual(every.decide(scored(0.95, 0.99, 0.3, 0.4)), { rule: 'threshold', reason: 'ambiguous_neighborhood' });
  assert.equal(every.name, 'threshold(0.9) + beyond_references(1)');
  const rules = new FlagRules({ uncertainty: new ThresholdPolicy(0.9), minPredictedAccuracy: null, oodRule: true, oodPercentile: 0.99 });
  assert.deepEqual(rules.decide(scored(0.1, 0.99, 0.995)), { rule: 'beyond_references', reason: 'out_of_distribution' });
  assert.equal(rules.decide(scored(0.1, 0.99, 0.985)), null);
  const off = new FlagRules({ uncertainty: new ThresholdPolicy(0.9), minPredictedAccuracy: null, oodRule: false, oodPercentile: 0.99 });
  assert.equal(off.decide(scored(0.1, 0.99, 1)), null);
  assert.deepEqual(off.decide(scored(0.95, 0.99, 0.995)), { rule: 'threshold', reason: 'out_of_distribution' });
  // With the bundle's Gaussian, the Mahalanobis percentile is what counts.
  const maha = { ...scored(0.1, 0.99, 0.2), signals: { ...sig(0.2, 0.9), mahalanobisPercentile: 0.999, relativeMahalanobisPercentile: 0.5 } };
  assert.deepEqual(rules.decide(maha), { rule: 'beyond_references', reason: 'out_of_distribution' });
  assert.match(explain('out_of_distribution', maha.signals, null), /\(Mahalanobis distance\) than 99\.9%/);
  // The kNN density counts too, with the Gaussian (regression: a contrast-reduced image far from every reference but near a class mean went unflagged).
  const dense = { ...scored(0.1, 0.99, 0.999), signals: { ...sig(0.999, 0.9), mahalanobisPercentile: 0.5, relativeMahalanobisPercentile: 0.999 } };
  assert.deepEqual(rules.decide(dense), { rule: 'beyond_references', reason: 'out_of_distribution' });
  assert.match(explain('out_of_distribution', dense.signals, null), /further from its neighbours than 99\.9%/);
  const inside = { ...scored(0.1, 0.99, 0.994), signals: { ...sig(0.994, 0.9), mahalanobisPercentile: 0.994, relativeMahalanobisPercentile: 0.999 } };
  assert.equal(rules.decide(inside), null, 'each measure at 0.994 is inside its split level sqrt(0.99) = 0.99499');
});

test('flag rules: minimum predicted accuracy replaces the uncertainty policy, and falls back to it without predictions', () => {
  const rules = new FlagRules({ uncertainty: new ThresholdPolicy(0.9), minPredictedAccuracy: 0.6, oodRule: true, oodPercentile: 0.99 });
  assert.deepEqual(rules.decide(scored(0.2, 0.55, 0.5)), { rule: 'min_predicted_accuracy', reason: 'low_predicted_accuracy' });
  assert.equal(rules.decide(scored(0.99, 0.6, 0.5)), null, 'high uncertainty alone does not flag under this policy');
  assert.deepEqual(rules.decide(scored(0.2, 0.9, 1)), { rule: 'beyond_references', reason: 'out_of_distribution' });
  assert.deepEqual(rules.decide(scored(0.95, null, 0.5, null)), { rule: 'threshold', reason: 'low_density' }, 'an unlabelled bundle has no predicted accuracy: the threshold decides');
  assert.equal(rules.decide(scored(0.5, null, 0.5, null)), null);
  assert.throws(() => new FlagRules({ uncertainty: new ThresholdPolicy(0.9), minPredictedAccuracy: 0, oodRule: true, oodPercentile: 0.99 }), RangeError);
  assert.match(explain('low_predicted_accuracy', sig(0.5, 0.4), 'Shirt', 0.42), /right only 42\.0% .*40\.0% .* Shirt/);
});

test('flag rules: a target rate keeps seeing every sample, also those the OOD rule takes', () => {
  const rules = new FlagRules({ uncertainty: new TargetRatePolicy(0.5, 10, 0.9, 4), minPredictedAccuracy: null, oodRule: true, oodPercentile: 0.99 });
  for (let i = 0; i < 10; i++) assert.equal(rules.decide(scored(0.1, null, 1))?.rule, 'beyond_references');
  // Past warm-up (the fallback 0.9 would not flag 0.5): the window of ten 0.1 cuts at 0.1.
  assert.equal(rules.decide(scored(0.5, null, 0.2))?.rule, 'target_rate');
  assert.equal(rules.decide(scored(0.05, null, 0.2)), null);
});
