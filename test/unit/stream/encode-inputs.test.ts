import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SampleInput } from '../../../src/contracts/index.js';
import { encodeInputs, inputSpecFor, type InputEncoder } from '../../../src/stream/encode-inputs.js';

const DIM = 2;

/** Features rows embed to [sum, 1]; texts to [length, 2]; records every call. */
class FakeEncoder implements InputEncoder {
  readonly dim = DIM;
  readonly calls: string[] = [];
  constructor(
    readonly inputKind: 'features' | 'text',
    readonly inputDim: number,
  ) {}
  embedAll(features: Float32Array, n: number): Promise<Float32Array> {
    this.calls.push(`features:${n}`);
    const out = new Float32Array(n * DIM);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < this.inputDim; j++) s += features[i * this.inputDim + j] as number;
      out.set([s, 1], i * DIM);
    }
    return Promise.resolve(out);
  }
  async embedTexts(texts: readonly string[], opts: { readonly between?: (done: number) => Promise<void> | void }): Promise<Float32Array> {
    this.calls.push(`texts:${texts.length}`);
    await opts.between?.(texts.length);
    return Float32Array.from(texts.flatMap((t) => [t.length, 2]));
  }
}

test('texts go through embedTexts in one pass, embeddings pass through, order is kept', async () => {
  const enc = new FakeEncoder('text', 0);
  const inputs: SampleInput[] = [
    { kind: 'text', text: 'abc' },
    { kind: 'embedding', values: Float32Array.from([7, 7]) },
    { kind: 'text', text: 'hello' },
  ];
  let beats = 0;
  const out = await encodeInputs(enc, inputs, 16, () => {
    beats++;
    return Promise.resolve();
  });
  assert.deepEqual(out.map((z) => Array.from(z)), [[3, 2], [7, 7], [5, 2]]);
  assert.deepEqual(enc.calls, ['texts:2']);
  assert.equal(beats, 1, 'the heartbeat runs between text runs');
});

test('features go through embedAll; no encoder call when every input is an embedding', async () => {
  const enc = new FakeEncoder('features', 3);
  const out = await encodeInputs(
    enc,
    [
      { kind: 'features', values: Float32Array.from([1, 2, 3]) },
      { kind: 'features', values: Float32Array.from([0, 0, 1]) },
    ],
    16,
    () => Promise.resolve(),
  );
  assert.deepEqual(out.map((z) => Array.from(z)), [[6, 1], [1, 1]]);
  assert.deepEqual(enc.calls, ['features:2']);
  const none = new FakeEncoder('features', 3);
  await encodeInputs(none, [{ kind: 'embedding', values: Float32Array.from([1, 0]) }], 16, () => Promise.resolve());
  assert.deepEqual(none.calls, []);
});

test('inputSpecFor follows the encoder kind', () => {
  assert.deepEqual(inputSpecFor(new FakeEncoder('text', 0), 1000), { inputKind: 'text', embeddingDim: DIM, maxBytes: 1000 });
  assert.deepEqual(inputSpecFor(new FakeEncoder('features', 3), 1000), { inputKind: 'features', inputDim: 3, embeddingDim: DIM, maxBytes: 1000 });
  // An encoder that does not say its kind (older fakes) takes features.
  const plain: InputEncoder = { dim: DIM, inputDim: 4, embedAll: () => Promise.resolve(new Float32Array(0)) };
  assert.equal(inputSpecFor(plain, 10).inputKind, 'features');
});
