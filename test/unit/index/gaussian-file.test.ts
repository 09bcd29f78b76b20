import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeGaussian, encodeGaussian } from '../../../src/index/gaussian-file.js';
import { fitGaussian } from '../../../src/scoring/index.js';
import { gaussian, seededRandom } from '../../../src/util/random.js';

/** The refusal reason; fails the test when the bytes decode. */
function reason(result: ReturnType<typeof decodeGaussian>): string {
  assert.equal(typeof result, 'string', 'the bytes should have been refused');
  return result as string;
}

function fitted() {
  const rnd = seededRandom(2);
  const dim = 4;
  const n = 200;
  const x = Float32Array.from({ length: n * dim }, () => gaussian(rnd));
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  return fitGaussian(x, dim, labels, 3);
}

test('the Gaussian file round-trips every parameter exactly', () => {
  const g = fitted();
  const back = decodeGaussian(encodeGaussian(g), g.dim, g.classes);
  assert.ok(typeof back !== 'string', typeof back === 'string' ? back : '');
  assert.deepEqual(back, g);
});

test('a bad Gaussian file is refused with the reason', () => {
  const g = fitted();
  const bytes = encodeGaussian(g);
  assert.match(reason(decodeGaussian(bytes.subarray(8), g.dim, g.classes)), /holds 376 bytes, expected 384/);
  assert.match(reason(decodeGaussian(bytes, g.dim, g.classes + 1)), /expected 416/);
  const nan = Buffer.from(bytes);
  nan.writeDoubleLE(Number.NaN, 16);
  assert.match(reason(decodeGaussian(nan, g.dim, g.classes)), /non-finite value at byte 16/);
  const flat = Buffer.from(bytes);
  flat.writeDoubleLE(0, (g.dim + 1) * 8); // the class factor's diagonal at 1
  assert.match(reason(decodeGaussian(flat, g.dim, g.classes)), /non-positive diagonal at 1/);
  assert.throws(() => encodeGaussian({ ...g, globalMean: new Float64Array(1) }), /part 3 holds 1 values, expected 4/);
});
