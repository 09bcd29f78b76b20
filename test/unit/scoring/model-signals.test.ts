import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL_FEATURE_NAMES, modelFeatureVector, modelSignals, predictionSummary, softmax } from '../../../src/scoring/index.js';
import { seededRandom } from '../../../src/util/random.js';

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
