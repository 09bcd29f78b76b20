import assert from 'node:assert/strict';
import { test } from 'node:test';
import { INPUT_ERROR_CODES, encodeFloat32Base64, parseSample, type InputSpec } from '../../../src/contracts/index.js';

const spec: InputSpec = { inputKind: 'features', inputDim: 4, embeddingDim: 3, maxBytes: 300 };
const buf = (v: unknown): Buffer => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

/** Every code the failures in this file produced. */
const seen = new Set<string>();

function code(value: Buffer | null, key: Buffer | null = null): string {
  const r = parseSample(value, key, spec);
  assert.equal(r.ok, false, 'expected a parse failure');
  if (!r.ok) seen.add(r.code);
  return r.ok ? '' : r.code;
}

test('a well-formed sample parses with id, features and meta', () => {
  const r = parseSample(buf({ id: 's-1', input: { features: [0.1, 0.2, 0.3, 0.4] }, meta: { src: 'x' } }), null, spec);
  assert.ok(r.ok);
  assert.equal(r.sample.id, 's-1');
  assert.equal(r.sample.input.kind, 'features');
  assert.deepEqual(Array.from(r.sample.input.values), Array.from(Float32Array.from([0.1, 0.2, 0.3, 0.4])));
  assert.deepEqual(r.sample.meta, { src: 'x' });
});

test('the Kafka key is the fallback id', () => {
  const r = parseSample(buf({ input: { features: [1, 2, 3, 4] } }), Buffer.from('key-7'), spec);
  assert.ok(r.ok);
  assert.equal(r.sample.id, 'key-7');
});

test('features_b64 decodes little-endian float32', () => {
  const values = [1.5, -2, 0, 3.25];
  const r = parseSample(buf({ id: 'b', input: { features_b64: encodeFloat32Base64(values) } }), null, spec);
  assert.ok(r.ok);
  assert.deepEqual(Array.from(r.sample.input.values), values);
});

test('an embedding input skips the encoder and must have the embedding dimension', () => {
  const r = parseSample(buf({ id: 'e', input: { embedding: [1, 0, 0] } }), null, spec);
  assert.ok(r.ok);
  assert.equal(r.sample.input.kind, 'embedding');
  assert.equal(code(buf({ id: 'e', input: { embedding: [1, 0, 0, 0] } })), 'QUALM_WRONG_LENGTH');
});

test('every kind of bad input gets its own code', () => {
  assert.equal(code(null), 'QUALM_EMPTY');
  assert.equal(code(buf('{"id":"x","input":{"features":[1,2')), 'QUALM_BAD_JSON');
  assert.equal(code(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 'QUALM_BAD_JSON');
  assert.equal(code(buf('{"id":"x","input":{"features":[NaN,1,2,3]}}')), 'QUALM_NON_FINITE');
  assert.equal(code(buf('{"id":"x","input":{"features":[1,-Infinity,2,3]}}')), 'QUALM_NON_FINITE');
  assert.equal(code(buf({ id: 'x', input: { features: [1, null, 2, 3] } })), 'QUALM_NON_FINITE');
  assert.equal(code(buf({ id: 'x', input: { features_b64: encodeFloat32Base64([1, NaN, 2, 3]) } })), 'QUALM_NON_FINITE');
  assert.equal(code(buf({ id: 'x', input: { features: [1, 2, 3] } })), 'QUALM_WRONG_LENGTH');
  assert.equal(code(buf({ input: { features: [1, 2, 3, 4] } })), 'QUALM_MISSING_ID');
  assert.equal(code(buf({ id: 'x', input: { features: [1, 2, 3, 4] }, pad: 'y'.repeat(400) })), 'QUALM_OVERSIZE');
  assert.equal(code(buf([1, 2])), 'QUALM_BAD_SCHEMA');
  assert.equal(code(buf({ id: 'x', input: { features: [1, '2', 3, 4] } })), 'QUALM_BAD_SCHEMA');
  assert.equal(code(buf({ id: 'x', input: {} })), 'QUALM_BAD_SCHEMA');
  assert.equal(code(buf({ id: 'x', input: { features: [1, 2, 3, 4], embedding: [1, 0, 0] } })), 'QUALM_BAD_SCHEMA');
  assert.equal(code(buf({ id: 'x', input: { features: [1, 2, 3, 4] }, meta: 'no' })), 'QUALM_BAD_SCHEMA');
  assert.equal(code(buf({ id: 'x', input: { text: 'hello' } })), 'QUALM_UNSUPPORTED_INPUT');
  // INPUT_ERROR_CODES (the DLQ codes the metrics export from the start) is exactly this set.
  assert.deepEqual([...seen].sort(), [...INPUT_ERROR_CODES].sort());
});

test('failure messages are readable and specific', () => {
  const r = parseSample(buf({ id: 'x', input: { features: [1, 2, 3] } }), null, spec);
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.message, 'input.features has 3 values, the model expects 4');
});
