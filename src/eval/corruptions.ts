import { gaussian, seededRandom } from '../util/random.js';

/**
 * Covariate shifts for `qualm evaluate --shifts`: corruptions of the test set at increasing
 * severities (in the spirit of Hendrycks & Dietterich 2019, "Benchmarking neural network
 * robustness to common corruptions and perturbations", written for 28 × 28 grey images and
 * for texts). Pure and seeded: the same input, family, severity and seed give the same output.
 *
 * Images are row-major, one value per pixel in [0, 1] (0 = black background, as Fashion-MNIST
 * is), `side` × `side` per image; every output is clipped to [0, 1].
 */

/** One family: its name, what it does, and its severity levels (mild to strong). */
export interface CorruptionFamily {
  readonly name: string;
  readonly doc: string;
  /** The parameter at each severity, for people ("sigma 0.1", "90 degrees"). */
  readonly levels: readonly string[];
}

export const IMAGE_CORRUPTIONS = {
  gaussian_noise: { doc: 'independent Gaussian noise added to every pixel', levels: [0.1, 0.2, 0.4], unit: 'sigma' },
  blur: { doc: 'Gaussian blur', levels: [0.75, 1.25, 2], unit: 'sigma px' },
  contrast: { doc: "contrast reduced towards the image's mean grey", levels: [0.6, 0.35, 0.15], unit: 'contrast factor' },
  brightness: { doc: 'a constant added to every pixel', levels: [0.2, 0.4, 0.6], unit: 'added' },
  rotation: { doc: 'rotation about the centre, bilinear, black outside', levels: [15, 30, 45], unit: 'degrees' },
  rotation_90: { doc: 'this share of the images (seeded) turned by a quarter turn, exactly; the rest unchanged', levels: [0.1, 0.25, 1], unit: 'share rotated' },
  inversion: { doc: 'blend towards the negative image, 1 - x', levels: [0.2, 0.4, 1], unit: 'blend' },
  occlusion: { doc: 'a mid-grey square at a seeded random position', levels: [8, 12, 16], unit: 'side px' },
} as const satisfies Record<string, { doc: string; levels: readonly number[]; unit: string }>;

export type ImageCorruption = keyof typeof IMAGE_CORRUPTIONS;
export const IMAGE_CORRUPTION_NAMES = Object.keys(IMAGE_CORRUPTIONS) as ImageCorruption[];

export const TEXT_CORRUPTIONS = {
  word_dropout: { doc: 'each word dropped with this probability', levels: [0.2, 0.4, 0.7], unit: 'drop probability' },
  char_noise: { doc: 'each letter replaced by a random letter with this probability', levels: [0.05, 0.15, 0.3], unit: 'replace probability' },
} as const satisfies Record<string, { doc: string; levels: readonly number[]; unit: string }>;

export type TextCorruption = keyof typeof TEXT_CORRUPTIONS;
export const TEXT_CORRUPTION_NAMES = Object.keys(TEXT_CORRUPTIONS) as TextCorruption[];

/** The families of one kind, for reports. */
export function corruptionFamilies(kind: 'image' | 'text'): CorruptionFamily[] {
  const table: Record<string, { doc: string; levels: readonly number[]; unit: string }> = kind === 'image' ? IMAGE_CORRUPTIONS : TEXT_CORRUPTIONS;
  return Object.entries(table).map(([name, f]) => ({ name, doc: f.doc, levels: f.levels.map((l) => `${f.unit} ${l}`) }));
}

function severityParam(levels: readonly number[], family: string, severity: number): number {
  if (!Number.isInteger(severity) || severity < 1 || severity > levels.length) throw new RangeError(`${family}: severity must be an integer in [1, ${levels.length}], got ${severity}`);
  return levels[severity - 1] as number;
}

const clip = (v: number): number => (v < 0 ? 0 : v > 1 ? 1 : v);

/** Separable Gaussian blur of one image (edges clamped). */
function blurImage(src: Float32Array, side: number, sigma: number, out: Float32Array): void {
  const radius = Math.ceil(3 * sigma);
  const kernel = Array.from({ length: 2 * radius + 1 }, (_, i) => Math.exp(-((i - radius) ** 2) / (2 * sigma * sigma)));
  const total = kernel.reduce((a, b) => a + b, 0);
  const tmp = new Float32Array(side * side);
  const at = (v: number): number => (v < 0 ? 0 : v >= side ? side - 1 : v);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      let s = 0;
      for (let k = -radius; k <= radius; k++) s += (kernel[k + radius] as number) * (src[y * side + at(x + k)] as number);
      tmp[y * side + x] = s / total;
    }
  }
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      let s = 0;
      for (let k = -radius; k <= radius; k++) s += (kernel[k + radius] as number) * (tmp[at(y + k) * side + x] as number);
      out[y * side + x] = s / total;
    }
  }
}

/** Rotation of one image by `degrees` counter-clockwise about its centre, bilinear, black outside. */
function rotateImage(src: Float32Array, side: number, degrees: number, out: Float32Array): void {
  if (degrees % 90 === 0) {
    // Exact quarter turns: no interpolation.
    const turns = (((degrees / 90) % 4) + 4) % 4;
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        let sx = x;
        let sy = y;
        for (let t = 0; t < turns; t++) [sx, sy] = [side - 1 - sy, sx];
        out[y * side + x] = src[sy * side + sx] as number;
      }
    }
    return;
  }
  const a = (degrees * Math.PI) / 180;
  const cos = Math.cos(a);
  const sin = Math.sin(a);
  const c = (side - 1) / 2;
  const px = (x: number, y: number): number => (x < 0 || y < 0 || x >= side || y >= side ? 0 : (src[y * side + x] as number));
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      // The source point that lands on (x, y).
      const dx = x - c;
      const dy = y - c;
      const sx = cos * dx - sin * dy + c;
      const sy = sin * dx + cos * dy + c;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      out[y * side + x] =
        (1 - fx) * (1 - fy) * px(x0, y0) + fx * (1 - fy) * px(x0 + 1, y0) + (1 - fx) * fy * px(x0, y0 + 1) + fx * fy * px(x0 + 1, y0 + 1);
    }
  }
}

/**
 * `n` images corrupted by `family` at `severity` (1 = mildest), into a new array. Random
 * families (noise, occlusion) draw from `seed`, image after image.
 */
export function corruptImages(pixels: Float32Array, n: number, side: number, family: ImageCorruption, severity: number, seed = 1): Float32Array {
  const size = side * side;
  if (pixels.length !== n * size) throw new RangeError(`corruptImages: ${pixels.length} values are not ${n} images of ${side} x ${side}`);
  const spec = IMAGE_CORRUPTIONS[family];
  if (spec === undefined) throw new RangeError(`unknown image corruption ${JSON.stringify(family)}: one of ${IMAGE_CORRUPTION_NAMES.join(', ')}`);
  const p = severityParam(spec.levels, family, severity);
  const rnd = seededRandom(seed);
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < n; i++) {
    const src = pixels.subarray(i * size, (i + 1) * size);
    const dst = out.subarray(i * size, (i + 1) * size);
    switch (family) {
      case 'gaussian_noise':
        for (let j = 0; j < size; j++) dst[j] = clip((src[j] as number) + p * gaussian(rnd));
        break;
      case 'blur':
        blurImage(src, side, p, dst);
        break;
      case 'contrast': {
        let mean = 0;
        for (let j = 0; j < size; j++) mean += src[j] as number;
        mean /= size;
        for (let j = 0; j < size; j++) dst[j] = clip(mean + ((src[j] as number) - mean) * p);
        break;
      }
      case 'brightness':
        for (let j = 0; j < size; j++) dst[j] = clip((src[j] as number) + p);
        break;
      case 'rotation':
        rotateImage(src, side, p, dst);
        break;
      case 'rotation_90':
        if (rnd() < p) rotateImage(src, side, 90, dst);
        else dst.set(src);
        break;
      case 'inversion':
        for (let j = 0; j < size; j++) dst[j] = clip((1 - p) * (src[j] as number) + p * (1 - (src[j] as number)));
        break;
      case 'occlusion': {
        dst.set(src);
        const s = Math.min(p, side);
        const x0 = Math.floor(rnd() * (side - s + 1));
        const y0 = Math.floor(rnd() * (side - s + 1));
        for (let y = y0; y < y0 + s; y++) for (let x = x0; x < x0 + s; x++) dst[y * side + x] = 0.5;
        break;
      }
    }
  }
  return out;
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

/** The texts corrupted by `family` at `severity`; a text never loses every word (its first stays). */
export function corruptTexts(texts: readonly string[], family: TextCorruption, severity: number, seed = 1): string[] {
  const spec = TEXT_CORRUPTIONS[family];
  if (spec === undefined) throw new RangeError(`unknown text corruption ${JSON.stringify(family)}: one of ${TEXT_CORRUPTION_NAMES.join(', ')}`);
  const p = severityParam(spec.levels, family, severity);
  const rnd = seededRandom(seed);
  return texts.map((text) => {
    if (family === 'word_dropout') {
      const words = text.split(/\s+/).filter((w) => w !== '');
      const kept = words.filter((_, i) => i === 0 || rnd() >= p);
      return kept.join(' ');
    }
    let out = '';
    for (const ch of text) {
      const lower = ch.toLowerCase();
      if (lower >= 'a' && lower <= 'z' && rnd() < p) {
        const r = LETTERS[Math.floor(rnd() * 26)] as string;
        out += ch === lower ? r : r.toUpperCase();
      } else {
        out += ch;
      }
    }
    return out;
  });
}
