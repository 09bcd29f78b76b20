import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { COMBINATION_FEATURES, COMBINATION_FEATURE_NAMES, type Signals } from '../../../src/scoring/index.js';
import { FEATURE_SOURCES, METRIC_SIGNALS, SIGNALS, SIGNAL_KEYS, SIGNAL_WIRE_NAMES, signalsWire } from '../../../src/signals.js';

const signals: Signals = {
  meanKnnDistance: 0.1,
  kthKnnDistance: 0.2,
  densityPercentile: 0.3,
  relativeDensity: 1.1,
  relativeDensityPercentile: 0.4,
  labelAgreement: 0.9,
  labelEntropy: 0.15,
  kthKnnPercentile: 0.35,
  labelMargin: 0.8,
  reverseNeighborConsistency: 0.7,
  mahalanobisPercentile: 0.5,
  relativeMahalanobisPercentile: null,
  modelConfidence: 0.8,
  modelEntropy: 0.3,
  modelNeighborAgreement: null,
  modelPredictionUsed: null,
  modelGaussianLogOdds: -2.5,
};

test('signalsWire gives every signal under its wire name, in table order, nulls kept', () => {
  const wire = signalsWire(signals);
  assert.deepEqual(Object.keys(wire), SIGNAL_WIRE_NAMES);
  assert.equal(wire.mean_knn_distance, 0.1);
  assert.equal(wire.kth_knn_percentile, 0.35);
  assert.equal(wire.relative_mahalanobis_percentile, null);
  assert.equal(new Set(SIGNAL_WIRE_NAMES).size, SIGNAL_KEYS.length, 'wire names are unique');
  for (const name of SIGNAL_WIRE_NAMES) assert.match(name, /^[a-z]+(_[a-z]+)*$/, `${name} is snake_case`);
});

test('the record key order is the one the records always had (wire compatibility)', () => {
  assert.deepEqual(SIGNAL_WIRE_NAMES, [
    'mean_knn_distance',
    'kth_knn_distance',
    'density_percentile',
    'relative_density',
    'relative_density_percentile',
    'label_agreement',
    'label_entropy',
    'kth_knn_percentile',
    'label_margin',
    'reverse_neighbor_consistency',
    'mahalanobis_percentile',
    'relative_mahalanobis_percentile',
    'model_confidence',
    'model_entropy',
    'model_neighbor_agreement',
    'model_prediction_used',
    'model_gaussian_log_odds',
  ]);
});

test('combination features come from the table: each from its signal, oriented, a missing signal giving 1', () => {
  assert.deepEqual(Object.keys(COMBINATION_FEATURES), COMBINATION_FEATURE_NAMES);
  assert.deepEqual(new Set(COMBINATION_FEATURE_NAMES), new Set(Object.keys(FEATURE_SOURCES)));
  assert.equal(COMBINATION_FEATURES.log_mean_knn_distance(signals), Math.log(0.1 + 1e-6));
  assert.equal(COMBINATION_FEATURES.label_disagreement(signals), 1 - 0.9);
  assert.equal(COMBINATION_FEATURES.kth_percentile(signals), 0.35);
  assert.equal(COMBINATION_FEATURES.relative_mahalanobis_percentile(signals), 1);
  assert.equal(COMBINATION_FEATURES.label_entropy({ ...signals, labelEntropy: null }), 1);
  for (const [name, { key }] of Object.entries(FEATURE_SOURCES)) assert.ok(SIGNAL_KEYS.includes(key), `${name} reads ${key}`);
});

test('the metric labels are the signals in [0, 1] the table marks, by wire name', () => {
  assert.deepEqual(
    METRIC_SIGNALS.map((m) => m.label),
    ['density_percentile', 'relative_density_percentile', 'label_agreement', 'reverse_neighbor_consistency', 'mahalanobis_percentile'],
  );
  for (const m of METRIC_SIGNALS) assert.equal(SIGNALS[m.key].wire, m.label);
});

test("the README's review record example and docs/metrics.md name exactly the table's signals", () => {
  const readme = readFileSync('README.md', 'utf8');
  const block = /"signals": \{([^}]*)\}/.exec(readme);
  assert.ok(block, 'README has a review record example with signals');
  const keys = [...(block[1] as string).matchAll(/"([a-z_]+)":/g)].map((m) => m[1]);
  assert.deepEqual(keys, SIGNAL_WIRE_NAMES, 'README review record signals, in record order');
  const row = readFileSync('docs/metrics.md', 'utf8').split('\n').find((l) => l.startsWith('| `qualm_signal`'));
  assert.ok(row, 'docs/metrics.md has the qualm_signal row');
  const named = [...row.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]).filter((n) => n !== 'qualm_signal' && n !== 'signal');
  assert.deepEqual(named, METRIC_SIGNALS.map((m) => m.label), 'docs/metrics.md qualm_signal labels');
});
