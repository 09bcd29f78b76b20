import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import type { SampleInput } from '../../../src/contracts/index.js';
import type { ImageSpec } from '../../../src/encoder/index.js';
import { encodeInputs, inputSpecFor, type EncodedInput, type InputEncoder } from '../../../src/encoder/index.js';

const DIM = 2;

/** The embeddings as arrays; a rejected input as its code. */
const shown = (out: readonly EncodedInput[]): (number[] | string)[] => out.map((z) => (z instanceof Float32Array ? Array.from(z) : z.code));

/** A 2x2 grayscale image model taking flat rows of 4 raw pixel values (scale 1). */
const imageSpec: ImageSpec = {
  format_version: 2,
  name: 'tiny-image',
  version: '1',
  input_kind: 'image',
  input: { name: 'x', dtype: 'float32', shape: [-1, 4], layout: 'flat' },
  preprocess: { color: 'grayscale', size: { width: 2, height: 2 }, center_crop: false, scale: 1, mean: 0, std: 1, max_pixels: 1000 },
  output: { name: 'y', pooling: 'none', normalized: false },
  dim: DIM,
  metric: 'cosine',
};
const png = (pixels: number[], width = 2, height = 2): Promise<Buffer> =>
  sharp(Buffer.from(pixels), { raw: { width, height, channels: 1 } }).toColourspace('b-w').png().toBuffer();

/** Features rows embed to [sum, 1]; texts to [length, 2]; records every call. */
class FakeEncoder implements InputEncoder {
  readonly dim = DIM;
  readonly calls: string[] = [];
  constructor(
    readonly inputKind: 'features' | 'text' | 'image',
    readonly inputDim: number,
    readonly imageSpec?: ImageSpec,
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
  assert.deepEqual(shown(out), [[3, 2], [7, 7], [5, 2]]);
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
  assert.deepEqual(shown(out), [[6, 1], [1, 1]]);
  assert.deepEqual(enc.calls, ['features:2']);
  const none = new FakeEncoder('features', 3);
  await encodeInputs(none, [{ kind: 'embedding', values: Float32Array.from([1, 0]) }], 16, () => Promise.resolve());
  assert.deepEqual(none.calls, []);
});

test('inputSpecFor follows the encoder kind', () => {
  assert.deepEqual(inputSpecFor(new FakeEncoder('text', 0), 1000), { inputKind: 'text', embeddingDim: DIM, maxBytes: 1000, metric: 'cosine' });
  assert.deepEqual(inputSpecFor(new FakeEncoder('features', 3), 1000), { inputKind: 'features', inputDim: 3, embeddingDim: DIM, maxBytes: 1000, metric: 'cosine' });
  // A features model's value range reaches parseSample (the worker, score, build-index and the sources all take their spec from here).
  const ranged: InputEncoder = { dim: DIM, inputDim: 4, valueRange: [0, 1], embedAll: () => Promise.resolve(new Float32Array(0)) };
  assert.deepEqual(inputSpecFor(ranged, 10), { inputKind: 'features', inputDim: 4, embeddingDim: DIM, maxBytes: 10, metric: 'cosine', valueRange: [0, 1] });
  assert.ok(!('valueRange' in inputSpecFor({ ...ranged, inputKind: 'text' }, 10)), 'a text model has no value range');
  // The encoder's metric decides whether an all-zero embedding input means anything.
  assert.equal(inputSpecFor({ dim: DIM, inputDim: 4, metric: 'l2', embedAll: () => Promise.resolve(new Float32Array(0)) }, 10).metric, 'l2');
  // An encoder that does not say its kind (older fakes) takes features.
  const plain: InputEncoder = { dim: DIM, inputDim: 4, embedAll: () => Promise.resolve(new Float32Array(0)) };
  assert.equal(inputSpecFor(plain, 10).inputKind, 'features');
});

test('images are preprocessed and embedded in the same embedAll pass; a bad image is rejected with its code, the rest go on', async () => {
  const enc = new FakeEncoder('image', 4, imageSpec);
  const inputs: SampleInput[] = [
    { kind: 'image', bytes: await png([1, 2, 3, 4]) },
    { kind: 'image', bytes: Buffer.from('GIF89a not really') },
    { kind: 'embedding', values: Float32Array.from([7, 7]) },
    { kind: 'image', bytes: await png([10, 10, 10, 10, 10, 10], 3, 2) },
    { kind: 'image', bytes: await png([0, 0, 0, 5]) },
  ];
  let beats = 0;
  const out = await encodeInputs(enc, inputs, 16, () => {
    beats++;
    return Promise.resolve();
  });
  assert.deepEqual(shown(out), [[10, 1], 'QUALM_IMAGE_UNSUPPORTED_FORMAT', [7, 7], 'QUALM_IMAGE_BAD_SIZE', [5, 1]]);
  assert.deepEqual(enc.calls, ['features:2'], 'one pass for the two good images');
  assert.equal(beats, 1, 'a heartbeat after the preprocessing (the fake embedAll calls none)');
  const rejected = out[3];
  assert.ok(rejected !== undefined && !(rejected instanceof Float32Array));
  assert.equal(rejected.message, 'png image is 3x2; the model takes 2x2 (no centre crop in the manifest)');
  // Every image refused: no encoder call at all.
  const none = new FakeEncoder('image', 4, imageSpec);
  assert.deepEqual(shown(await encodeInputs(none, [{ kind: 'image', bytes: Buffer.from('nope') }], 16, () => Promise.resolve())), ['QUALM_IMAGE_UNDECODABLE']);
  assert.deepEqual(none.calls, []);
});

test('an image input without an image spec is a program error, not a verdict', async () => {
  const enc = new FakeEncoder('features', 4);
  await assert.rejects(encodeInputs(enc, [{ kind: 'image', bytes: await png([1, 2, 3, 4]) }], 16, () => Promise.resolve()), /without an image spec/);
});

test('inputSpecFor gives image models the image spec', () => {
  assert.deepEqual(inputSpecFor(new FakeEncoder('image', 4, imageSpec), 5000), { inputKind: 'image', embeddingDim: DIM, maxBytes: 5000, metric: 'cosine' });
});

/** Refuses any run that holds a row with a value of 100 (as onnxruntime refuses an out-of-range index); `refusing` makes it refuse everything. */
class ChokingEncoder extends FakeEncoder {
  readonly refused = new WeakSet<Error>();
  runs = 0;
  embedded = 0;
  constructor(private readonly refusing = false) {
    super('features', 2);
  }
  override embedAll(features: Float32Array, n: number): Promise<Float32Array> {
    this.runs++;
    if (this.refusing || features.includes(100)) {
      const err = new Error(`refused a run of ${n}`);
      this.refused.add(err);
      return Promise.reject(err);
    }
    this.embedded++;
    return super.embedAll(features, n);
  }
  isInputFailure(err: unknown): boolean {
    return err instanceof Error && this.refused.has(err);
  }
  get hasEmbedded(): boolean {
    return this.embedded > 0;
  }
}

test('a run the model refuses is split until the inputs it chokes on stand alone: those are rejected (QUALM_INFERENCE_FAILED), the rest embedded', async () => {
  const rows = [[1, 1], [100, 0], [2, 2], [3, 3], [4, 4], [5, 5], [0, 100], [6, 6]];
  const enc = new ChokingEncoder();
  const out = await encodeInputs(enc, rows.map((r) => ({ kind: 'features' as const, values: Float32Array.from(r) })), 64, () => Promise.resolve());
  assert.deepEqual(shown(out), [[2, 1], 'QUALM_INFERENCE_FAILED', [4, 1], [6, 1], [8, 1], [10, 1], 'QUALM_INFERENCE_FAILED', [12, 1]]);
  assert.match((out[1] as { message: string }).message, /the model cannot embed this input: refused a run of 1/);
  assert.ok(enc.runs <= 2 * rows.length - 1, `${enc.runs} runs`);
  // Even a bad first input of a fresh encoder: the others' runs show that the model works.
  const first = new ChokingEncoder();
  const out2 = await encodeInputs(first, [[100, 1], [1, 1]].map((r) => ({ kind: 'features' as const, values: Float32Array.from(r) })), 64, () => Promise.resolve());
  assert.deepEqual(shown(out2), ['QUALM_INFERENCE_FAILED', [2, 1]]);
  // A batch without a bad input costs its one run.
  const clean = new ChokingEncoder();
  await encodeInputs(clean, [[1, 1], [2, 2]].map((r) => ({ kind: 'features' as const, values: Float32Array.from(r) })), 64, () => Promise.resolve());
  assert.equal(clean.runs, 1);
});

test('a model that refuses every input fails the call (a failure of the encoder, retried, never a DLQ verdict); other errors are thrown as they are', async () => {
  const inputs = [[1, 1], [2, 2], [3, 3]].map((r) => ({ kind: 'features' as const, values: Float32Array.from(r) }));
  await assert.rejects(encodeInputs(new ChokingEncoder(true), inputs, 64, () => Promise.resolve()), /refused a run of 1/);
  class Broken extends FakeEncoder {
    override embedAll(): Promise<Float32Array> {
      return Promise.reject(new Error('inference thread exited'));
    }
  }
  await assert.rejects(encodeInputs(new Broken('features', 2), inputs, 64, () => Promise.resolve()), /inference thread exited/);
});
