// npm run bench:images
//
// What decoding images costs the event loop: perf_hooks.monitorEventLoopDelay (1 ms
// resolution) around preprocessImages on 2,000 28x28 grayscale PNGs (the Fashion-MNIST slice,
// the demo encoder's flat image manifest) and on 200 640x480 JPEGs (rgb, resize 256, centre
// crop 224, ImageNet mean/std), against the same loop idle for 2 s in the same run (the
// baseline: what the machine's own load costs it). The decoding itself runs on the libuv pool.
// Last line (JSON): {"idle_p99_ms":..,"png_p99_ms":..,"jpeg_p99_ms":..,"png_per_s":..,"jpeg_per_s":..,"png_p99_vs_idle":..,"jpeg_p99_vs_idle":..}
import { monitorEventLoopDelay } from 'node:perf_hooks';
import sharp from 'sharp';
import { SLICE_FASHION_MNIST_DIR, loadFashionMnist } from '../src/datasets/index.js';
import { parseModelManifest, preprocessImages, type ImageSpec } from '../src/encoder/index.js';

const spec = (doc: unknown): ImageSpec => {
  const m = parseModelManifest(doc, 'bench');
  if (m.input_kind !== 'image') throw new Error('not an image manifest');
  return m;
};
const grayFlat = spec({
  format_version: 2,
  name: 'fmnist-png',
  version: '1',
  input_kind: 'image',
  input: { name: 'pixels', shape: [-1, 784], layout: 'flat' },
  preprocess: { color: 'grayscale', size: { width: 28, height: 28 } },
  output: { name: 'embedding' },
  dim: 128,
});
const rgb224 = spec({
  format_version: 2,
  name: 'rgb-224',
  version: '1',
  input_kind: 'image',
  input: { name: 'x', shape: [-1, 3, 224, 224], layout: 'NCHW' },
  preprocess: { color: 'rgb', resize: { shortest_edge: 256 }, center_crop: true, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  output: { name: 'y' },
  dim: 8,
});

const slice = loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]);
const png = (i: number): Promise<Buffer> => {
  const px = Buffer.alloc(784);
  for (let j = 0; j < 784; j++) px[j] = Math.round((slice.pixels[i * 784 + j] as number) * 255);
  return sharp(px, { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
};
const small = await Promise.all(Array.from({ length: 2000 }, (_, i) => png(i % slice.n)));
const noise = Buffer.alloc(640 * 480 * 3);
for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
const jpeg = await sharp(noise, { raw: { width: 640, height: 480, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
const large = Array.from({ length: 200 }, () => jpeg);

async function measure(what: string, run: () => Promise<unknown>, n: number): Promise<{ p99: number; max: number; perS: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const t0 = performance.now();
  await run();
  const ms = performance.now() - t0;
  h.disable();
  const r = { p99: h.percentile(99) / 1e6, max: h.max / 1e6, perS: n === 0 ? 0 : (n / ms) * 1000 };
  console.error(`${what}: ${n} images in ${ms.toFixed(0)} ms (${r.perS.toFixed(0)}/s); event-loop delay p50 ${(h.percentile(50) / 1e6).toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms`);
  return r;
}

const idle = await measure('idle baseline', () => new Promise((r) => setTimeout(r, 2000)), 0);
const a = await measure('28x28 PNG, grayscale flat', () => preprocessImages(grayFlat, small), small.length);
const b = await measure('640x480 JPEG, rgb resize 256 + crop 224', () => preprocessImages(rgb224, large), large.length);
const round = (v: number): number => Math.round(v * 100) / 100;
console.log(
  JSON.stringify({
    idle_p99_ms: round(idle.p99),
    png_p99_ms: round(a.p99),
    jpeg_p99_ms: round(b.p99),
    png_per_s: Math.round(a.perS),
    jpeg_per_s: Math.round(b.perS),
    png_p99_vs_idle: round(a.p99 / idle.p99),
    jpeg_p99_vs_idle: round(b.p99 / idle.p99),
  }),
);
