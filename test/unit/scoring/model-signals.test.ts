import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Combination, Neighbors, ReferenceStats } from '../../../src/index/index.js';
import {
  MODEL_FEATURE_NAMES,
  applyIsotonic,
  checkCombination,
  combinedErrorProbability,
  fitGaussian,
  gaussianLogOdds,
  mahalanobis,
  modelFeatureVector,
  modelSignals,
  percentileRank,
  predictionSummary,
  scoreNeighbors,
  softmax,
  type ScoreOptions,
} from '../../../src/scoring/index.js';
import { gaussian as normal, seededRandom } from '../../../src/util/random.js';

const close = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test('softmax of logits sums to 1, keeps their order and survives large values', () => {
  const p = softmax([1000, 1001, 999]);
  close(p.reduce((s, v) => s + v, 0), 1, 'sum');
  assert.ok((p[1] as number) > (p[0] as number) && (p[0] as number) > (p[2] as number));
  close(p[1] as number, 1 / (1 + Math.exp(-1) + Math.exp(-2)), 'value');
});

test('probabilities, logits and label-plus-confidence give the label, the MSP and the normalised entropy', () => {
  const probs = [0.1, 0.7, 0.2];
  const s = predictionSummary({ probs }, 3);
  assert.equal(s.label, 1);
  close(s.confidence, 0.7, 'msp');
  close(s.entropy, -probs.reduce((h, p) => h + p * Math.log(p), 0) / Math.log(3), 'entropy');
  const logits = probs.map((p) => Math.log(p) + 5);
  const l = predictionSummary({ logits }, 3);
  assert.equal(l.label, 1);
  close(l.confidence, 0.7, 'msp from logits');
  close(l.entropy, s.entropy, 'entropy from logits');
  // The remaining 0.3 spread over the two other labels: (0.7, 0.15, 0.15).
  const c = predictionSummary({ label: 2, confidence: 0.7 }, 3);
  assert.equal(c.label, 2);
  close(c.entropy, -(0.7 * Math.log(0.7) + 0.3 * Math.log(0.15)) / Math.log(3), 'entropy of label + confidence');
  close(predictionSummary({ label: 0, confidence: 1 }, 4).entropy, 0, 'certain');
  close(predictionSummary({ probs: [0.25, 0.25, 0.25, 0.25] }, 4).entropy, 1, 'uniform');
  assert.throws(() => predictionSummary({ probs: [0.5, 0.5] }, 3), /2 probabilities, the bundle has 3 labels/);
  assert.throws(() => predictionSummary({ probs: [1] }, 1), /at least two labels/);
});

test('the neighbours\' agreement with the model is the distance-weighted vote share of its label, brute force', () => {
  const rnd = seededRandom(3);
  for (let t = 0; t < 50; t++) {
    const k = 1 + Math.floor(rnd() * 10);
    const labels = Array.from({ length: k }, () => Math.floor(rnd() * 5) - 1); // -1: unknown
    const distances = Array.from({ length: k }, () => rnd()).sort((a, b) => a - b);
    const probs = softmax(Array.from({ length: 4 }, () => rnd() * 4));
    const m = modelSignals({ probs }, labels, distances, 4);
    let mine = 0;
    let all = 0;
    labels.forEach((l, i) => {
      if (l < 0) return;
      const w = 1 / ((distances[i] as number) + 1e-3);
      all += w;
      if (l === m.label) mine += w;
    });
    close(m.neighborAgreement, all === 0 ? 0 : mine / all, `case ${t}`);
    const f = modelFeatureVector(m);
    assert.equal(f.length, MODEL_FEATURE_NAMES.length);
    close(f[0] as number, Math.log(1 - m.confidence + 1e-6), 'log msp feature');
    close(f[2] as number, 1 - m.neighborAgreement, 'disagreement feature');
  }
  assert.equal(modelSignals({ label: 1, confidence: 0.9 }, null, [0.1], 3).neighborAgreement, 0, 'an unlabelled bundle gives no agreement');
});

const stats: ReferenceStats = { k: 3, looMeanKnnQuantiles: [0.1, 0.2, 0.3], looKthKnnQuantiles: [0.1, 0.2, 0.3], looRelativeDensityQuantiles: [0.5, 1, 1.5], looScoreQuantiles: [0, 0.5, 1] };
const nb: Neighbors = { ids: ['a', 'b', 'c'], labels: [1, 1, 0], distances: [0.1, 0.15, 0.2], radii: [0.15, 0.15, 0.15], kthRadii: null };
const embeddingOnly: Combination = {
  kind: 'logistic',
  features: ['density_percentile', 'label_disagreement'],
  mean: [0.5, 0.2],
  scale: [0.3, 0.2],
  weights: [0.5, 1],
  bias: -1,
  isotonic: { x: [0, 1], y: [0.9, 0.1] },
  fit: {},
};
const withModel: Combination = {
  ...embeddingOnly,
  with_model: {
    features: ['label_disagreement', 'model_log_msp_uncertainty', 'model_entropy', 'model_neighbor_disagreement'],
    mean: [0.2, -3, 0.3, 0.2],
    scale: [0.2, 1, 0.2, 0.2],
    weights: [0.5, 1.5, 0.5, 1],
    bias: -2,
    isotonic: { x: [0, 1], y: [0.95, 0.05] },
    score_quantiles: [0, 0.1, 0.2, 0.5, 1],
    fit: {},
  },
};
const opts = (combination: Combination): ScoreOptions => ({ densityWeight: 0.5, numLabels: 2, combination, labelNames: ['cat', 'dog'] });

test('scoreNeighbors: a bundle with a with-model part scores a sample with a prediction by it, and one without by the embedding-only part', () => {
  const prediction = { probs: [0.1, 0.9] };
  const used = scoreNeighbors(nb, stats, opts(withModel), undefined, prediction);
  const wm = withModel.with_model;
  assert.ok(wm !== undefined);
  assert.equal(used.signals.modelPredictionUsed, 1);
  close(used.signals.modelConfidence ?? NaN, 0.9, 'model confidence');
  const raw = combinedErrorProbability(wm, used.signals);
  close(used.rawScore, raw, 'raw score from the with-model part');
  close(used.predictedAccuracy ?? NaN, applyIsotonic(wm.isotonic, raw), 'its isotonic map');
  close(used.uncertainty, percentileRank(raw, wm.score_quantiles), 'its rank among the held-out references');
  // No prediction: the embedding-only part, as a bundle without with_model scores it, and the record says so.
  const fallback = scoreNeighbors(nb, stats, opts(withModel), undefined);
  const plain = scoreNeighbors(nb, stats, opts(embeddingOnly), undefined, prediction);
  assert.equal(fallback.signals.modelPredictionUsed, 0);
  assert.equal(fallback.signals.modelConfidence, null);
  close(fallback.rawScore, combinedErrorProbability(embeddingOnly, fallback.signals), 'fallback raw score');
  close(fallback.rawScore, plain.rawScore, 'the fallback is the embedding-only combination');
  assert.equal(plain.signals.modelPredictionUsed, null, 'a bundle without the part says none exists');
  close(plain.signals.modelConfidence ?? NaN, 0.9, 'the model signals are reported all the same');
  // A prediction that does not fit the bundle (three probabilities for two labels, an unknown label name) is not used.
  for (const bad of [{ probs: [0.2, 0.3, 0.5] }, { label: 'bird', confidence: 0.8 }]) {
    const s = scoreNeighbors(nb, stats, opts(withModel), undefined, bad);
    assert.equal(s.signals.modelPredictionUsed, 0, JSON.stringify(bad));
    close(s.rawScore, fallback.rawScore, 'scored as without a prediction');
  }
  // A label named as the bundle names it.
  const named = scoreNeighbors(nb, stats, opts(withModel), undefined, { label: 'dog', confidence: 0.9 });
  assert.equal(named.signals.modelPredictionUsed, 1);
  close(named.signals.modelNeighborAgreement ?? NaN, (1 / 0.101 + 1 / 0.151) / (1 / 0.101 + 1 / 0.151 + 1 / 0.201), 'agreement of the neighbours with "dog"');
  // A less confident model raises the error probability.
  assert.ok(scoreNeighbors(nb, stats, opts(withModel), undefined, { probs: [0.45, 0.55] }).rawScore > used.rawScore);
  assert.throws(() => checkCombination({ ...withModel, with_model: { ...wm, features: ['model_vibes', ...wm.features.slice(1)] } }), /with the model's signals uses features this qualm does not compute: model_vibes/);
  checkCombination(withModel);
});

test("gaussianLogOdds is the Gaussian's log-odds of the likeliest other label against the given one, brute force", () => {
  const rnd = seededRandom(17);
  for (let t = 0; t < 100; t++) {
    const classes = 2 + Math.floor(rnd() * 5);
    const d = Array.from({ length: classes }, () => rnd() * 50);
    const label = Math.floor(rnd() * classes);
    // Posteriors under equal priors are proportional to exp(-d / 2): the log of the best other one's over the label's.
    const post = d.map((v) => Math.exp(-v / 2));
    const bestOther = Math.max(...post.filter((_, c) => c !== label));
    close(gaussianLogOdds(d, label), Math.log(bestOther / (post[label] as number)), `case ${t}`);
  }
  close(gaussianLogOdds([10, 4], 0), 3, 'the Gaussian prefers label 1 by 3 nats');
  close(gaussianLogOdds([10, 4], 1), -3, 'and agrees with label 1 by 3 nats');
  assert.throws(() => gaussianLogOdds([1, 2], 2), RangeError);
  assert.throws(() => gaussianLogOdds([1], 0), RangeError);
});

test("scoreNeighbors gives a prediction's Gaussian log-odds from the bundle's Gaussian and the embedding, and its feature", () => {
  const dim = 3;
  const rnd = seededRandom(23);
  const n = 400;
  const x = new Float32Array(n * dim);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
  for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) x[i * dim + d] = normal(rnd) + (d === 0 ? 3 * (labels[i] as number) : 0);
  const params = fitGaussian(x, dim, labels, 2);
  const q = Array.from({ length: 11 }, (_, i) => i * 10);
  const gauss = { params, classDistanceQuantiles: q, relativeQuantiles: q.map((v) => v - 50) };
  const o: ScoreOptions = { ...opts(withModel), gaussian: gauss };
  for (let t = 0; t < 20; t++) {
    const z = [3 * rnd(), normal(rnd), normal(rnd)];
    const m = mahalanobis(params, z);
    const prediction = { probs: rnd() < 0.5 ? [0.8, 0.2] : [0.3, 0.7] };
    const label = (prediction.probs[0] as number) > 0.5 ? 0 : 1;
    const s = scoreNeighbors(nb, stats, o, z, prediction);
    close(s.signals.modelGaussianLogOdds ?? NaN, ((m.classDistances[label] as number) - (m.classDistances[1 - label] as number)) / 2, `case ${t}`);
    // Nearer the other class's mean, the Gaussian disagrees (positive log-odds).
    assert.equal((s.signals.modelGaussianLogOdds ?? NaN) > 0, m.nearestClass !== label, `case ${t}: sign`);
  }
  // Without the embedding (or the Gaussian) there is no log-odds, and its feature is 0 ("no opinion").
  const none = scoreNeighbors(nb, stats, o, undefined, { probs: [0.8, 0.2] });
  assert.equal(none.signals.modelGaussianLogOdds, null);
  const withFeature = { ...withModel.with_model!, features: [...withModel.with_model!.features, 'model_gaussian_disagreement'], mean: [...withModel.with_model!.mean, 0], scale: [...withModel.with_model!.scale, 1], weights: [...withModel.with_model!.weights, 0.7] };
  checkCombination({ ...withModel, with_model: withFeature });
  const z = [3, 0, 0];
  const s = scoreNeighbors(nb, stats, { ...o, combination: { ...withModel, with_model: withFeature } }, z, { probs: [0.8, 0.2] });
  const base = combinedErrorProbability(withModel.with_model!, s.signals);
  const logit = (p: number): number => Math.log(p / (1 - p));
  close(logit(s.rawScore) - logit(base), 0.7 * (s.signals.modelGaussianLogOdds ?? NaN), 'the feature enters the logit with its weight');
  assert.ok((s.signals.modelGaussianLogOdds ?? 0) > 0, 'a point at class 1 predicted as class 0: the Gaussian disagrees');
});
