import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_VIEW_OPTIONS, addNoise, cropResize, makeViews, shiftImage, viewKind, viewSeed } from '../../../src/encoder/index.js';
import { seededRandom } from '../../../src/util/random.js';

const H = 28;
const W = 28;

function randomImage(seed: number, h = H, w = W): Float32Array {
  const rnd = seededRandom(seed);
  return Float32Array.from({ length: h * w }, () => rnd());
}

function same(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function view(views: Float32Array, t: number, size = H * W): Float32Array {
  return views.subarray(t * size, (t + 1) * size);
}

test('shiftImage moves every pixel by exactly (dx, dy) and fills with zeros', () => {
  for (const [h, w] of [
    [28, 28],
    [5, 9],
  ] as const) {
    const src = randomImage(3, h, w).map((v) => v + 0.5); // no zeros in the source
    for (let dy = -2; dy <= 2; dy++) {
      for (let dx = -2; dx <= 2; dx++) {
        const out = shiftImage(src, h, w, dx, dy);
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            const sy = y - dy;
            const sx = x - dx;
            const inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
            assert.equal(out[y * w + x], inside ? src[sy * w + sx] : 0, `shift (${dx}, ${dy}) at (${x}, ${y})`);
          }
        }
      }
    }
  }
  // A single bright pixel lands dx right and dy down.
  const dot = new Float32Array(H * W);
  dot[10 * W + 12] = 1;
  const moved = shiftImage(dot, H, W, 2, -1);
  assert.equal(moved[9 * W + 14], 1);
  assert.equal(moved.reduce((a, b) => a + b, 0), 1);
  assert.throws(() => shiftImage(dot, H, W, 0.5, 0), RangeError);
  assert.throws(() => shiftImage(dot, 27, W, 1, 0), RangeError);
});

test('cropResize: a constant image stays constant, the full crop is the identity, a crop zooms in', () => {
  const constant = new Float32Array(H * W).fill(0.37);
  for (const [top, left] of [
    [0, 0],
    [1.3, 0.7],
    [H * (1 - Math.sqrt(0.9)), W * (1 - Math.sqrt(0.9))],
  ] as const) {
    const out = cropResize(constant, H, W, top, left, H * Math.sqrt(0.9), W * Math.sqrt(0.9));
    assert.ok(out.every((v) => v === constant[0]), `constant at (${top}, ${left})`);
  }
  const src = randomImage(4);
  assert.deepEqual(cropResize(src, H, W, 0, 0, H, W), src);
  // A horizontal ramp 0..W-1 cropped to its middle half maps to a ramp of half the slope.
  const ramp = Float32Array.from({ length: H * W }, (_, i) => i % W);
  const zoom = cropResize(ramp, H, W, H / 4, W / 4, H / 2, W / 2);
  for (let j = 0; j < W; j++) {
    const expected = Math.min(W - 1, Math.max(0, W / 4 + (j + 0.5) / 2 - 0.5));
    assert.ok(Math.abs((zoom[5 * W + j] as number) - expected) < 1e-5, `column ${j}`);
  }
  // Bilinear values lie between the source's extremes.
  const crop = cropResize(src, H, W, 0.8, 1.9, 26.1, 25.3);
  assert.ok(crop.every((v) => v >= 0 && v <= 1));
});

test('addNoise: zero-mean Gaussian with the given sigma, clamped to the pixel range', () => {
  const grey = new Float32Array(10_000).fill(0.5);
  const noisy = addNoise(grey, 0.05, seededRandom(9), 0, 1);
  const diff = Array.from(noisy, (v) => v - 0.5);
  const mean = diff.reduce((a, b) => a + b, 0) / diff.length;
  const sd = Math.sqrt(diff.reduce((a, b) => a + (b - mean) ** 2, 0) / diff.length);
  assert.ok(Math.abs(mean) < 0.003, `mean ${mean}`);
  assert.ok(Math.abs(sd - 0.05) < 0.003, `sd ${sd}`);
  const edges = addNoise(Float32Array.from({ length: 1000 }, (_, i) => i % 2), 0.3, seededRandom(1), 0, 1);
  assert.ok(edges.every((v) => v >= 0 && v <= 1));
  assert.ok(edges.some((v) => v > 0 && v < 1));
});

test('makeViews: view 0 is the image, then shift, crop, noise in turn, all in the pixel range', () => {
  const src = randomImage(21);
  const views = makeViews(src, H, W, 8, 1234);
  assert.equal(views.length, 8 * H * W);
  assert.deepEqual(view(views, 0), src);
  assert.deepEqual(
    Array.from({ length: 8 }, (_, t) => viewKind(t)),
    ['identity', 'shift', 'crop', 'noise', 'shift', 'crop', 'noise', 'shift'],
  );
  for (const t of [1, 4, 7]) {
    // A shift view equals shiftImage for exactly one (dx, dy) within the range, not (0, 0).
    const matches: string[] = [];
    for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) if (same(shiftImage(src, H, W, dx, dy), view(views, t))) matches.push(`${dx},${dy}`);
    assert.equal(matches.length, 1, `view ${t}`);
    assert.notEqual(matches[0], '0,0');
  }
  for (let t = 1; t < 8; t++) {
    const v = view(views, t);
    assert.ok(v.every((p) => p >= DEFAULT_VIEW_OPTIONS.pixelMin && p <= DEFAULT_VIEW_OPTIONS.pixelMax), `view ${t} in range`);
    assert.notDeepEqual(v, src, `view ${t} differs from the image`);
  }
  // Noise views move pixels by about sigma.
  const noise = view(views, 3);
  let sq = 0;
  for (let i = 0; i < H * W; i++) sq += ((noise[i] as number) - (src[i] as number)) ** 2;
  assert.ok(Math.sqrt(sq / (H * W)) < 2 * DEFAULT_VIEW_OPTIONS.noiseSigma);
});

test('makeViews is deterministic per seed, differs across seeds, and T views are a prefix of more', () => {
  const src = randomImage(8);
  const seed = viewSeed('fashion-mnist/t10k#42');
  assert.deepEqual(makeViews(src, H, W, 8, seed), makeViews(src, H, W, 8, seed));
  assert.notDeepEqual(makeViews(src, H, W, 4, seed), makeViews(src, H, W, 4, seed + 1));
  assert.deepEqual(makeViews(src, H, W, 4, seed), makeViews(src, H, W, 8, seed).subarray(0, 4 * H * W));
  assert.deepEqual(makeViews(src, H, W, 1, seed), src);
  // The input is not modified.
  assert.deepEqual(src, randomImage(8));
  assert.throws(() => makeViews(src, H, W, 0, seed), RangeError);
  assert.throws(() => makeViews(src, H, 27, 4, seed), RangeError);
});

test('makeViews works on non-square images and keeps a constant image constant under shift-free kinds', () => {
  const h = 6;
  const w = 10;
  const constant = new Float32Array(h * w).fill(1);
  const views = makeViews(constant, h, w, 4, 3);
  assert.deepEqual(view(views, 2, h * w), constant, 'crop of a constant image');
  assert.ok(view(views, 3, h * w).every((v) => v <= 1), 'noise clamped at the top of the range');
});

test('viewSeed: a stable 32-bit hash of the sample id', () => {
  assert.equal(viewSeed('a'), viewSeed('a'));
  assert.notEqual(viewSeed('fashion-mnist/t10k#1'), viewSeed('fashion-mnist/t10k#2'));
  // FNV-1a reference values.
  assert.equal(viewSeed(''), 0x811c9dc5);
  assert.equal(viewSeed('a'), 0xe40c292c);
  assert.ok(Number.isInteger(viewSeed('x')) && viewSeed('x') >= 0 && viewSeed('x') < 2 ** 32);
});
