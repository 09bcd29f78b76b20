import { gaussian, seededRandom } from '../util/random.js';

/**
 * Deterministic test-time views of one grayscale image (row-major, `height` x `width`), for the
 * view-consistency signal: embed the views, then compare their kNN id sets (Jaccard) and the
 * spread of their embeddings (see scoring/consistency.ts).
 *
 * View 0 is always the image itself, so the signal is anchored on the embedding the worker
 * scores anyway and a caller can reuse it. Views 1, 2, 3, ... cycle through the three kinds
 * shift, crop-resize, noise (view t has kind (t - 1) mod 3), each with parameters drawn from
 * one generator seeded by `seed` and consumed view by view, so the first T views of
 * makeViews(x, h, w, T', seed) for T' > T are exactly makeViews(x, h, w, T, seed).
 */
export interface ViewOptions {
  /** Largest integer shift per axis, in pixels (each axis draws from -max..max, never both 0). */
  readonly maxShift: number;
  /** Area of the crop as a share of the image (the side scales by its square root). */
  readonly cropArea: number;
  /** Standard deviation of the additive Gaussian noise, in pixel units. */
  readonly noiseSigma: number;
  /** The pixel range noisy pixels are clamped to. */
  readonly pixelMin: number;
  readonly pixelMax: number;
}

/** Defaults for the demo encoders' input: grey levels in [0, 1] (the dataset loaders' pixels/255). */
export const DEFAULT_VIEW_OPTIONS: ViewOptions = { maxShift: 2, cropArea: 0.9, noiseSigma: 0.05, pixelMin: 0, pixelMax: 1 };

/** The kinds of augmentation, in the order views 1, 2, 3, ... cycle through them. */
export const VIEW_KINDS = ['shift', 'crop', 'noise'] as const;
export type ViewKind = (typeof VIEW_KINDS)[number];

function checkShape(src: ArrayLike<number>, height: number, width: number): void {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) throw new RangeError(`image shape ${height} x ${width} is not positive integers`);
  if (src.length !== height * width) throw new RangeError(`image has ${src.length} pixels, expected ${height} x ${width}`);
}

/**
 * The image moved by `dx` pixels right and `dy` pixels down (negative: left, up); pixels
 * shifted in from outside are 0. out[y][x] = src[y - dy][x - dx].
 */
export function shiftImage(src: ArrayLike<number>, height: number, width: number, dx: number, dy: number): Float32Array {
  checkShape(src, height, width);
  if (!Number.isInteger(dx) || !Number.isInteger(dy)) throw new RangeError('shifts must be integers');
  const out = new Float32Array(height * width);
  for (let y = 0; y < height; y++) {
    const sy = y - dy;
    if (sy < 0 || sy >= height) continue;
    for (let x = 0; x < width; x++) {
      const sx = x - dx;
      if (sx >= 0 && sx < width) out[y * width + x] = src[sy * width + sx] as number;
    }
  }
  return out;
}

/**
 * The rectangle of `cropHeight` x `cropWidth` pixels whose top-left corner is at (`top`,
 * `left`) (fractional values allowed), resized back to `height` x `width` by bilinear
 * interpolation at the output pixel centres, with source coordinates clamped to the image.
 * Written as nested linear interpolations, so a constant image stays exactly constant.
 */
export function cropResize(src: ArrayLike<number>, height: number, width: number, top: number, left: number, cropHeight: number, cropWidth: number): Float32Array {
  checkShape(src, height, width);
  if (!(cropHeight > 0 && cropWidth > 0)) throw new RangeError('crop size must be positive');
  const out = new Float32Array(height * width);
  const sy = cropHeight / height;
  const sx = cropWidth / width;
  const at = (y: number, x: number): number => src[y * width + x] as number;
  for (let i = 0; i < height; i++) {
    const fy = Math.min(height - 1, Math.max(0, top + (i + 0.5) * sy - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(height - 1, y0 + 1);
    const ty = fy - y0;
    for (let j = 0; j < width; j++) {
      const fx = Math.min(width - 1, Math.max(0, left + (j + 0.5) * sx - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(width - 1, x0 + 1);
      const tx = fx - x0;
      const a = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * tx;
      const b = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * tx;
      out[i * width + j] = a + (b - a) * ty;
    }
  }
  return out;
}

/** The image plus independent N(0, sigma^2) noise per pixel from `rnd`, clamped to [min, max]. */
export function addNoise(src: ArrayLike<number>, sigma: number, rnd: () => number, min: number, max: number): Float32Array {
  if (!(sigma >= 0)) throw new RangeError('noise sigma must be >= 0');
  if (!(min <= max)) throw new RangeError('pixel range is empty');
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = Math.min(max, Math.max(min, (src[i] as number) + sigma * gaussian(rnd)));
  return out;
}

/** The augmentation kind of view t (view 0 is the identity). */
export function viewKind(t: number): ViewKind | 'identity' {
  return t === 0 ? 'identity' : (VIEW_KINDS[(t - 1) % VIEW_KINDS.length] as ViewKind);
}

/**
 * A 32-bit seed from a sample id (FNV-1a over its UTF-16 code units), so that a sample gets
 * the same views on every run and in every process.
 */
export function viewSeed(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * T views of one image, row-major in one array of T x (height * width) values (the layout
 * OnnxEncoder.embed takes): view 0 the image itself, then shifts, crop-resizes and noise in
 * turn (see the module comment). Deterministic in `seed`; T = 1 gives the identity alone.
 */
export function makeViews(pixels: Float32Array, height: number, width: number, T: number, seed: number, opts: ViewOptions = DEFAULT_VIEW_OPTIONS): Float32Array {
  checkShape(pixels, height, width);
  if (!Number.isInteger(T) || T < 1) throw new RangeError(`T must be a positive integer, got ${T}`);
  if (!Number.isInteger(opts.maxShift) || opts.maxShift < 1) throw new RangeError('maxShift must be a positive integer');
  if (!(opts.cropArea > 0 && opts.cropArea <= 1)) throw new RangeError('cropArea must be in (0, 1]');
  const size = height * width;
  const out = new Float32Array(T * size);
  out.set(pixels, 0);
  const rnd = seededRandom(seed);
  const side = Math.sqrt(opts.cropArea);
  const span = 2 * opts.maxShift + 1;
  for (let t = 1; t < T; t++) {
    let view: Float32Array;
    switch (viewKind(t)) {
      case 'shift': {
        let dx = 0;
        let dy = 0;
        while (dx === 0 && dy === 0) {
          dx = Math.floor(rnd() * span) - opts.maxShift;
          dy = Math.floor(rnd() * span) - opts.maxShift;
        }
        view = shiftImage(pixels, height, width, dx, dy);
        break;
      }
      case 'crop': {
        const ch = height * side;
        const cw = width * side;
        view = cropResize(pixels, height, width, rnd() * (height - ch), rnd() * (width - cw), ch, cw);
        break;
      }
      default:
        view = addNoise(pixels, opts.noiseSigma, rnd, opts.pixelMin, opts.pixelMax);
    }
    out.set(view, t * size);
  }
  return out;
}
