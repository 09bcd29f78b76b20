import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePrediction, parseSample, type InputSpec } from '../../../src/contracts/index.js';

const spec: InputSpec = { inputKind: 'features', inputDim: 2, embeddingDim: 2, maxBytes: 4096 };
const msg = (prediction: unknown): Buffer => Buffer.from(JSON.stringify({ id: 's', input: { features: [1, 2] }, prediction }));

test('a sample carries its model\'s probabilities, logits or label and confidence; without one it has none', () => {
  const probs = parseSample(msg({ probs: [0.2, 0.8] }), null, spec);
  assert.ok(probs.ok);
  assert.deepEqual(probs.sample.prediction, { probs: [0.2, 0.8] });
  const logits = parseSample(msg({ logits: [-3, 2.5, 0] }), null, spec);
  assert.ok(logits.ok);
  assert.deepEqual(logits.sample.prediction, { logits: [-3, 2.5, 0] });
  const label = parseSample(msg({ label: 'Bag', confidence: 0.75 }), null, spec);
  assert.ok(label.ok);
  assert.deepEqual(label.sample.prediction, { label: 'Bag', confidence: 0.75 });
  const index = parseSample(msg({ label: 3, confidence: 1 }), null, spec);
  assert.ok(index.ok);
  assert.deepEqual(index.sample.prediction, { label: 3, confidence: 1 });
  const none = parseSample(Buffer.from(JSON.stringify({ id: 's', input: { features: [1, 2] } })), null, spec);
  assert.ok(none.ok);
  assert.equal('prediction' in none.sample, false);
  const nul = parseSample(msg(null), null, spec);
  assert.ok(nul.ok && nul.sample.prediction === undefined, 'null is the same as absent');
});

test('a malformed prediction goes to the DLQ as QUALM_BAD_PREDICTION, the message naming what is wrong', () => {
  const cases: [unknown, RegExp][] = [
    [[0.2, 0.8], /must be an object/],
    [{}, /exactly one of probs, logits or label, got none/],
    [{ probs: [0.5, 0.5], logits: [1, 2] }, /got probs, logits/],
    [{ probs: [1] }, /has 1 values; a classifier's output has at least two/],
    [{ probs: [0.5, '0.5'] }, /probs\[1\] is "0.5", not a finite number/],
    [{ probs: [1.2, -0.2] }, /probs\[0\] is 1.2, outside \[0, 1\]/],
    [{ probs: [0.5, 0.4] }, /sum to 0.9, not 1/],
    [{ logits: 'x' }, /logits must be an array/],
    [{ logits: [1, null] }, /logits\[1\] is null/],
    [{ label: '', confidence: 0.5 }, /label must be a label name or a non-negative integer/],
    [{ label: -1, confidence: 0.5 }, /non-negative integer/],
    [{ label: 'Bag' }, /confidence must be a number in \[0, 1\] beside the label, got nothing/],
    [{ label: 'Bag', confidence: 1.5 }, /confidence must be a number in \[0, 1\]/],
    [{ probs: [0.5, 0.5], confidence: 0.5 }, /unknown key confidence/],
    [{ probs: [0.5, 0.5], extra: 1 }, /unknown key extra/],
  ];
  for (const [raw, message] of cases) {
    const p = parsePrediction(raw);
    assert.equal(p.ok, false, JSON.stringify(raw));
    if (p.ok) continue;
    assert.equal(p.code, 'QUALM_BAD_PREDICTION');
    assert.match(p.message, message);
    const r = parseSample(msg(raw), null, spec);
    assert.ok(!r.ok && r.code === 'QUALM_BAD_PREDICTION' && r.message.startsWith('prediction'), JSON.stringify(r));
  }
  // Probabilities within the tolerance of 1 are accepted as given.
  assert.ok(parsePrediction({ probs: [0.3333, 0.3333, 0.3333] }).ok);
});
