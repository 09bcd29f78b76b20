import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { InputSpec } from '../../../src/contracts/index.js';
import { FASHION_MNIST_LABELS, loadFashionMnist } from '../../../src/datasets/index.js';
import { openSource, type SourceRecord } from '../../../src/sources/index.js';
import { errorOf } from './helpers.js';

const IMAGES: InputSpec = { inputKind: 'features', inputDim: 784, embeddingDim: 128, maxBytes: 1 << 20 };
const TEXT: InputSpec = { inputKind: 'text', embeddingDim: 384, maxBytes: 1 << 20 };

async function first(spec: string, inputSpec: InputSpec, n: number): Promise<{ records: SourceRecord[]; labelNames: readonly string[] | undefined; name: string }> {
  const source = await openSource(spec, { spec: inputSpec, skipInvalid: false });
  const records: SourceRecord[] = [];
  for await (const r of source.records()) {
    records.push(r);
    if (records.length === n) break;
  }
  return { records, labelNames: source.labelNames, name: source.name };
}

test('builtin:fashion-mnist is the training split with its class names and the demo bundle ids', async () => {
  const { records, labelNames, name } = await first('builtin:fashion-mnist', IMAGES, 3);
  const train = loadFashionMnist('train');
  assert.equal(name, 'builtin:fashion-mnist/train');
  assert.deepEqual(labelNames, FASHION_MNIST_LABELS);
  assert.deepEqual(
    records.map((r) => [r.id, r.label, r.where]),
    [0, 1, 2].map((i) => [`fashion-mnist/train#${i}`, FASHION_MNIST_LABELS[train.labels[i] as number], `fashion-mnist/train#${i}`]),
  );
  const input = records[1]?.input;
  assert.ok(input?.kind === 'features');
  assert.deepEqual(input.values, train.pixels.subarray(784, 1568));
});

test('builtin:fashion-mnist/t10k, builtin:mnist and builtin:imdb/test give their splits', async () => {
  assert.equal((await first('builtin:fashion-mnist/t10k', IMAGES, 1)).records[0]?.id, 'fashion-mnist/t10k#0');
  const mnist = await first('builtin:mnist', IMAGES, 10);
  assert.deepEqual(
    mnist.records.map((r) => r.label),
    ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  );
  const imdb = await first('builtin:imdb/test', TEXT, 1);
  assert.deepEqual(imdb.labelNames, ['neg', 'pos']);
  assert.equal(imdb.records[0]?.id, 'imdb/test#0');
  assert.equal(imdb.records[0]?.input.kind, 'text');
});

test('an unknown built-in, an unknown split or the wrong model kind is refused', async () => {
  assert.match(await errorOf(() => first('builtin:cifar', IMAGES, 1)), /builtin:cifar: unknown built-in source; the built-ins are fashion-mnist\[\/train\|t10k\], mnist, imdb\[\/train\|test\], spam-assassin/);
  assert.match(await errorOf(() => first('builtin:fashion-mnist/test', IMAGES, 1)), /fashion-mnist has the splits train, t10k, not "test"/);
  assert.match(await errorOf(() => first('builtin:imdb', IMAGES, 1)), /builtin:imdb\/train: gives texts, the model takes features/);
  assert.match(await errorOf(() => first('builtin:mnist', TEXT, 1)), /builtin:mnist: gives 784 grey-level features per image, the model takes text/);
});
