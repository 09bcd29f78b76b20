import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { IMAGE_ERROR_CODES } from '../../../src/contracts/index.js';
import { centreOffset, resizedSize } from '../../../src/encoder/image-preprocess.js';
import { imageGeometry, preprocessImages, sniffImageFormat, type ImagePrepResult, type ImageSpec } from '../../../src/encoder/index.js';

type Pre = Partial<ImageSpec['preprocess']>;

/** An image spec with the defaults the manifest schema fills in. */
function spec(layout: 'NCHW' | 'NHWC' | 'flat', color: 'rgb' | 'grayscale', width: number, height: number, pre: Pre = {}): ImageSpec {
  const c = color === 'rgb' ? 3 : 1;
  const shape = layout === 'NCHW' ? [-1, c, height, width] : layout === 'NHWC' ? [-1, height, width, c] : [-1, c * width * height];
  return {
    format_version: 2,
    name: 'tiny',
    version: '1',
    input_kind: 'image',
    input: { name: 'x', dtype: 'float32', shape, layout },
    preprocess: { color, center_crop: false, scale: 1 / 255, mean: 0, std: 1, max_pixels: 40_000_000, ...(layout === 'flat' ? { size: { width, height } } : {}), ...pre },
    output: { name: 'y', pooling: 'none', normalized: false },
    dim: 4,
    metric: 'cosine',
  };
}

/** A PNG (or another format) from raw interleaved 8-bit pixels. */
function encode(pixels: readonly number[], width: number, height: number, channels: 1 | 3 | 4, format: 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff' = 'png'): Promise<Buffer> {
  let img = sharp(Buffer.from(pixels), { raw: { width, height, channels } });
  if (channels === 1) img = img.toColourspace('b-w');
  if (format === 'jpeg') return img.jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer();
  if (format === 'webp') return img.webp({ lossless: true }).toBuffer();
  if (format === 'gif') return img.gif().toBuffer();
  if (format === 'tiff') return img.tiff().toBuffer();
  return img.png().toBuffer();
}

function values(r: ImagePrepResult | undefined): number[] {
  assert.ok(r !== undefined && r.ok, `expected a preprocessed image, got ${JSON.stringify(r)}`);
  return Array.from(r.values);
}

function failed(r: ImagePrepResult | undefined): [string, string] {
  assert.ok(r !== undefined && !r.ok, 'expected a refused image');
  return [r.code, r.message];
}

function close(actual: readonly number[], expected: readonly number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length, 'length');
  actual.forEach((v, i) => assert.ok(Math.abs(v - (expected[i] as number)) <= tol, `value ${i}: ${v} vs ${expected[i]}`));
}

test('an RGB image in grayscale mode: ITU-R 601 luma rounded as Pillow convert("L") does, then scaled', async () => {
  // 4x2 RGB pixels; luma = round(0.299 R + 0.587 G + 0.114 B), worked out by hand:
  const rgb = [
    [255, 0, 0], //   76.245 -> 76
    [0, 255, 0], //   149.685 -> 150
    [0, 0, 255], //   29.07 -> 29
    [255, 255, 255], // 255
    [10, 20, 30], //  2.99 + 11.74 + 3.42 = 18.15 -> 18
    [100, 50, 0], //  29.9 + 29.35 = 59.25 -> 59
    [0, 0, 0], //     0
    [128, 128, 128], // 128
  ];
  const png = await encode(rgb.flat(), 4, 2, 3);
  const [r] = await preprocessImages(spec('NCHW', 'grayscale', 4, 2), [png]);
  close(values(r), [76, 150, 29, 255, 18, 59, 0, 128].map((v) => v / 255));
  // A grayscale source keeps its values exactly.
  const gray = await encode([0, 50, 100, 150, 200, 250, 10, 20], 4, 2, 1);
  const [g] = await preprocessImages(spec('flat', 'grayscale', 4, 2, { scale: 1 }), [gray]);
  assert.deepEqual(values(g), [0, 50, 100, 150, 200, 250, 10, 20]);
});

test('scale, per-channel mean and std, and the NCHW, NHWC and flat value orders', async () => {
  const px = [
    [255, 0, 51],
    [0, 255, 102],
    [255, 255, 0],
    [0, 0, 255],
  ];
  const png = await encode(px.flat(), 2, 2, 3);
  const pre: Pre = { mean: [0.5, 0.25, 0], std: [0.5, 0.25, 1] };
  // c0 = (v/255 - 0.5)/0.5, c1 = (v/255 - 0.25)/0.25, c2 = v/255:
  const c0 = [1, -1, 1, -1];
  const c1 = [-1, 3, 3, -1];
  const c2 = [0.2, 0.4, 0, 1];
  const [nchw] = await preprocessImages(spec('NCHW', 'rgb', 2, 2, pre), [png]);
  close(values(nchw), [...c0, ...c1, ...c2]);
  const [nhwc] = await preprocessImages(spec('NHWC', 'rgb', 2, 2, pre), [png]);
  close(values(nhwc), [1, -1, 0.2, -1, 3, 0.4, 1, 3, 0, -1, -1, 1]);
  const [flat] = await preprocessImages(spec('flat', 'rgb', 2, 2, pre), [png]);
  close(values(flat), [...c0, ...c1, ...c2]);
  // A one-value mean/std applies to every channel.
  const [one] = await preprocessImages(spec('NCHW', 'rgb', 2, 2, { mean: [0.5], std: 0.5 }), [png]);
  close(values(one).slice(0, 4), c0);
});

test('centre crop: offsets as torchvision CenterCrop, halves rounded to even', async () => {
  const grid = (w: number, h: number): number[] => Array.from({ length: w * h }, (_, i) => 10 * Math.floor(i / w) + (i % w));
  const s = spec('NCHW', 'grayscale', 4, 2, { center_crop: true, scale: 1 });
  // 6x4 -> 4x2: left = top = 1.
  const [a] = await preprocessImages(s, [await encode(grid(6, 4), 6, 4, 1)]);
  assert.deepEqual(values(a), [11, 12, 13, 14, 21, 22, 23, 24]);
  // 7x4: left = round(1.5) = 2; 5x3: left = round(0.5) = 0, top = round(0.5) = 0.
  const [b, c] = await preprocessImages(s, [await encode(grid(7, 4), 7, 4, 1), await encode(grid(5, 3), 5, 3, 1)]);
  assert.deepEqual(values(b), [12, 13, 14, 15, 22, 23, 24, 25]);
  assert.deepEqual(values(c), [0, 1, 2, 3, 10, 11, 12, 13]);
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(centreOffset), [0, 1, 2, 2, 2, 3]);
});

test('shortest-edge resize keeps the aspect ratio (long side truncated, as torchvision), then crops', async () => {
  assert.deepEqual(resizedSize(spec('NCHW', 'rgb', 28, 28, { resize: { shortest_edge: 28 } }).preprocess, 60, 40), { width: 42, height: 28 });
  assert.deepEqual(resizedSize(spec('NCHW', 'rgb', 28, 28, { resize: { shortest_edge: 28 } }).preprocess, 40, 60), { width: 28, height: 42 });
  assert.deepEqual(resizedSize(spec('NCHW', 'rgb', 28, 28, { resize: { shortest_edge: 28 } }).preprocess, 100, 30), { width: 93, height: 28 });
  assert.deepEqual(resizedSize(spec('NCHW', 'rgb', 28, 28, { resize: { width: 5, height: 7 } }).preprocess, 100, 30), { width: 5, height: 7 });
  const uniform = await encode(new Array<number>(60 * 40 * 3).fill(90), 60, 40, 3);
  const [r] = await preprocessImages(spec('NHWC', 'rgb', 28, 28, { resize: { shortest_edge: 28 }, center_crop: true }), [uniform]);
  const v = values(r);
  assert.equal(v.length, 28 * 28 * 3);
  close(v, new Array<number>(v.length).fill(90 / 255));
  // An exact resize reaches the size without a crop, upscaling too.
  const [up] = await preprocessImages(spec('NCHW', 'grayscale', 9, 5, { resize: { width: 9, height: 5 } }), [await encode([200, 200, 200, 200], 2, 2, 1)]);
  close(values(up), new Array<number>(45).fill(200 / 255));
});

test('a bilinear reduction is Pillow\'s antialiased bilinear inside the image; the border extends the edge pixel', async () => {
  // A 12x1 ramp 0, 20, ..., 220 reduced 3x to 4x1. Pillow (torchvision's Resize) puts output i at
  // source x = 3(i + 0.5) and weighs source pixel j by the triangle 1 - |j + 0.5 - x| / 3. For
  // i = 1 (x = 4.5): j = 4 weighs 1, j = 3, 5 weigh 2/3, j = 2, 6 weigh 1/3, sum 3:
  //   (80 + (60 + 100) * 2/3 + (40 + 120) / 3) / 3 = 80; likewise i = 2 gives 140.
  // At i = 0 (x = 1.5) the weight of j = -1 (1/3) falls outside: Pillow renormalises (25),
  // libvips repeats pixel 0 there: (0/3 + 0 * 2/3 + 20 + 40 * 2/3 + 60/3) / 3 = 22.2 -> 22; i = 3 mirrors it (198).
  const ramp = await encode(Array.from({ length: 12 }, (_, i) => 20 * i), 12, 1, 1);
  const [r] = await preprocessImages(spec('flat', 'grayscale', 4, 1, { resize: { width: 4, height: 1 }, scale: 1 }), [ramp]);
  assert.deepEqual(values(r), [22, 80, 140, 198]);
});

test('alpha is composited onto black; JPEG and WebP decode like PNG', async () => {
  const rgba = await encode([200, 100, 50, 0, 200, 100, 50, 255, 255, 255, 255, 128], 3, 1, 4);
  const [r] = await preprocessImages(spec('NCHW', 'rgb', 3, 1, { scale: 1 }), [rgba]);
  // Channel-major: R of the three pixels, then G, then B; half alpha halves white (255*128/255 = 128).
  close(values(r), [0, 200, 128, 0, 100, 128, 0, 50, 128], 1);
  const px = new Array<number>(8 * 8 * 3).fill(0).map((_, i) => [30, 120, 210][i % 3] as number);
  const [jpeg, webp] = await preprocessImages(spec('NHWC', 'rgb', 8, 8, { scale: 1 }), [await encode(px, 8, 8, 3, 'jpeg'), await encode(px, 8, 8, 3, 'webp')]);
  close(values(jpeg), px, 2);
  assert.deepEqual(values(webp), px);
});

/** A PNG whose header claims width x height (its CRC fixed up); the pixel data is a 1x1 image's. */
async function claimedPng(width: number, height: number): Promise<Buffer> {
  const png = Buffer.from(await encode([0], 1, 1, 1));
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

test('every kind of bad image gets its code and a message that says what is wrong; the others still preprocess', async () => {
  const good = await encode(new Array<number>(28 * 28).fill(7), 28, 28, 1);
  const truncated = good.subarray(0, good.length - 30);
  const random = Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 7919 + 13) % 251));
  const gif = await encode([1, 2, 3, 4], 2, 2, 1, 'gif');
  const tiff = await encode([1, 2, 3, 4], 2, 2, 1, 'tiff');
  const svg = Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"></svg>');
  const bomb = await claimedPng(10_000, 10_000);
  const wrong = await encode(new Array<number>(30 * 30).fill(7), 30, 30, 1);
  const s = spec('flat', 'grayscale', 28, 28);
  const out = await preprocessImages(s, [truncated, random, gif, good, tiff, svg, bomb, wrong, Buffer.alloc(0)], { concurrency: 3 });
  assert.equal(failed(out[0])[0], 'QUALM_IMAGE_UNDECODABLE');
  assert.match(failed(out[0])[1], /cannot decode the png image/);
  assert.deepEqual(failed(out[1]), ['QUALM_IMAGE_UNDECODABLE', `not a PNG, JPEG or WebP image (200 bytes starting ${random.subarray(0, 8).toString('hex')})`]);
  assert.deepEqual(failed(out[2]), ['QUALM_IMAGE_UNSUPPORTED_FORMAT', 'GIF images are not accepted; send PNG, JPEG or WebP']);
  close(values(out[3]), new Array<number>(784).fill(7 / 255));
  assert.deepEqual(failed(out[4])[0], 'QUALM_IMAGE_UNSUPPORTED_FORMAT');
  assert.deepEqual(failed(out[5]), ['QUALM_IMAGE_UNSUPPORTED_FORMAT', 'SVG images are not accepted; send PNG, JPEG or WebP']);
  assert.deepEqual(failed(out[6]), ['QUALM_IMAGE_TOO_LARGE', 'png image is 10000x10000 = 100000000 pixels, the limit (preprocess.max_pixels) is 40000000']);
  assert.deepEqual(failed(out[7]), ['QUALM_IMAGE_BAD_SIZE', 'png image is 30x30; the model takes 28x28 (no centre crop in the manifest)']);
  assert.equal(failed(out[8])[0], 'QUALM_IMAGE_UNDECODABLE');
  // Too small for the crop, after a resize: the sizes are in the message.
  const [small] = await preprocessImages(spec('NCHW', 'grayscale', 28, 28, { resize: { width: 20, height: 40 }, center_crop: true }), [wrong]);
  assert.deepEqual(failed(small), ['QUALM_IMAGE_BAD_SIZE', 'png image is 30x30, 20x40 after the resize; the model takes 28x28 (the centre crop needs at least that size)']);
  // The pixel limit is the manifest's.
  const [limited] = await preprocessImages(spec('flat', 'grayscale', 28, 28, { max_pixels: 783 }), [good]);
  assert.equal(failed(limited)[0], 'QUALM_IMAGE_TOO_LARGE');
});

test('sniffImageFormat knows the accepted signatures and names refused ones', async () => {
  assert.deepEqual(sniffImageFormat(await encode([1], 1, 1, 1)), { format: 'png' });
  assert.deepEqual(sniffImageFormat(await encode([1, 2, 3], 1, 1, 3, 'jpeg')), { format: 'jpeg' });
  assert.deepEqual(sniffImageFormat(await encode([1, 2, 3], 1, 1, 3, 'webp')), { format: 'webp' });
  assert.deepEqual(sniffImageFormat(Buffer.from('BM\0\0')), { unsupported: 'BMP' });
  assert.deepEqual(sniffImageFormat(Buffer.from('%PDF-1.7')), { unsupported: 'PDF' });
  assert.equal(sniffImageFormat(Buffer.from('{"id":"x"}')), undefined);
});

test('results keep the input order under concurrency; an aborted signal stops the work', async () => {
  const imgs = await Promise.all(Array.from({ length: 12 }, (_, i) => encode([i * 20, i * 20, i * 20, i * 20], 2, 2, 1)));
  const out = await preprocessImages(spec('flat', 'grayscale', 2, 2, { scale: 1 }), imgs, { concurrency: 5 });
  assert.deepEqual(out.map((r) => values(r)[0]), imgs.map((_, i) => i * 20));
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  await assert.rejects(preprocessImages(spec('flat', 'grayscale', 2, 2), imgs, { signal: ac.signal }), /stop/);
});

test('a spec that cannot be met throws QUALM_MODEL_INVALID; geometry follows the layout', async () => {
  await assert.rejects(preprocessImages(spec('NCHW', 'rgb', 2, 2, { mean: [0.1, 0.2] }), []), (e: Error & { code?: string }) => e.code === 'QUALM_MODEL_INVALID' && /mean has 2 values/.test(e.message));
  await assert.rejects(preprocessImages(spec('NCHW', 'rgb', 2, 2, { std: [1, 0, 1] }), []), /std is 0/);
  assert.deepEqual(imageGeometry(spec('NHWC', 'rgb', 5, 3)), { width: 5, height: 3, channels: 3, order: 'HWC', values: 45 });
  assert.deepEqual(imageGeometry(spec('flat', 'grayscale', 28, 28)), { width: 28, height: 28, channels: 1, order: 'CHW', values: 784 });
});

test('docs/images.md tables every image code, and the pinned sharp version is the one installed', () => {
  const doc = readFileSync('docs/images.md', 'utf8');
  const tabled = new Set([...doc.matchAll(/^\| `(QUALM_IMAGE_[A-Z_]+)` \|/gm)].map((m) => m[1]));
  assert.deepEqual([...tabled].sort(), [...IMAGE_ERROR_CODES].sort());
  const pinned = (JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string> }).dependencies.sharp;
  assert.ok(doc.includes(`sharp ${pinned ?? '?'}, pinned`), `docs/images.md names sharp ${pinned}`);
  assert.equal(sharp.versions.sharp, pinned);
});
