import assert from 'node:assert/strict';
import { test } from 'node:test';
import { wireMessage } from '../../../src/cli/commands/produce.js';
import { parseSample } from '../../../src/contracts/index.js';
import { SPEC } from './helpers.js';

test('produce --from writes a record as the wire format parseSample reads back, the label in meta.label', () => {
  const m = wireMessage({ id: 'a', input: { kind: 'features', values: Float32Array.from([0.5, 0.25, 0, 1]) }, label: 'cat', meta: { k: 1 }, where: 'f:1' });
  assert.equal(m.key, 'a');
  assert.deepEqual(JSON.parse(String(m.value)), { id: 'a', input: { features: [0.5, 0.25, 0, 1] }, meta: { k: 1, label: 'cat' } });
  const back = parseSample(Buffer.from(String(m.value)), null, SPEC);
  assert.ok(back.ok);
  assert.deepEqual(Array.from((back.sample.input as { values: Float32Array }).values), [0.5, 0.25, 0, 1]);
});

test('text, embedding and image records, with and without labels and meta', () => {
  assert.deepEqual(JSON.parse(String(wireMessage({ id: 't', input: { kind: 'text', text: 'hi' }, where: 'x' }).value)), { id: 't', input: { text: 'hi' } });
  assert.deepEqual(JSON.parse(String(wireMessage({ id: 'e', input: { kind: 'embedding', values: Float32Array.from([1, 0, 0]) }, label: '3', where: 'x' }).value)), {
    id: 'e',
    input: { embedding: [1, 0, 0] },
    meta: { label: '3' },
  });
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47]);
  assert.deepEqual(JSON.parse(String(wireMessage({ id: 'i', input: { kind: 'image', bytes: png }, where: 'x' }).value)), { id: 'i', input: { image_b64: png.toString('base64') } });
});
