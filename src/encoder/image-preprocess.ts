import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import type { ImageErrorCode } from '../contracts/index.js';
import { ErrorCodes, QualmError } from '../errors.js';
import type { ImageSpec } from './model-manifest.js';

/**
 * Decoding and preprocessing of encoded images (PNG, JPEG, WebP) into model input rows, per
 * an image model manifest: the torchvision recipe `Resize → CenterCrop → ToTensor → Normalize`
 * on an image opened with PIL and converted to the manifest's colour mode, as closely as
 * libvips (through sharp) allows. Every step is documented in docs/images.md.
 */

/** One image's outcome: its input row, or why it is refused (a DLQ code and a readable message). */
export type ImagePrepResult =
  | { readonly ok: true; readonly values: Float32Array }
  | { readonly ok: false; readonly code: ImageErrorCode; readonly message: string };

export interface ImagePrepOptions {
  /**
   * Images in flight at once. Each is a sharp pipeline on the libuv thread pool (4 threads
   * unless UV_THREADPOOL_SIZE says otherwise), so the event loop only starts them and copies
   * their pixels out. Default DEFAULT_IMAGE_CONCURRENCY.
   */
  readonly concurrency?: number;
  /** Checked before each image is started; an aborted signal rejects with its reason. */
  readonly signal?: AbortSignal;
}

/** Default images in flight: the cores, at most 4 (the default libuv pool). */
export const DEFAULT_IMAGE_CONCURRENCY = Math.max(1, Math.min(4, availableParallelism()));

/** The encoded formats accepted. */
export const IMAGE_FORMATS = ['png', 'jpeg', 'webp'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/** The resize kernel: bilinear (torchvision's default), antialiased when reducing as Pillow's is. */
export const RESIZE_KERNEL = 'linear' as const;

/** What the preprocessed image looks like: its size, channels and how the values are ordered. */
export interface ImageGeometry {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  /** CHW: channel-major (NCHW and flat layouts); HWC: interleaved (NHWC). */
  readonly order: 'CHW' | 'HWC';
  /** Values per image: channels × height × width, the product of the input shape after the batch dimension. */
  readonly values: number;
}

/** The size, channels and value order an image spec's input takes. */
export function imageGeometry(spec: ImageSpec): ImageGeometry {
  const channels = spec.preprocess.color === 'rgb' ? 3 : 1;
  const shape = spec.input.shape;
  let width: number;
  let height: number;
  if (spec.input.layout === 'flat') {
    const size = spec.preprocess.size;
    if (size === undefined) throw new QualmError(ErrorCodes.MODEL_INVALID, `image model ${spec.name}: the flat layout needs preprocess.size`);
    ({ width, height } = size);
  } else if (spec.input.layout === 'NCHW') {
    height = shape[2] ?? 0;
    width = shape[3] ?? 0;
  } else {
    height = shape[1] ?? 0;
    width = shape[2] ?? 0;
  }
  const values = channels * width * height;
  const product = shape.slice(1).reduce((a, b) => a * b, 1);
  if (width <= 0 || height <= 0 || values !== product) {
    throw new QualmError(
      ErrorCodes.MODEL_INVALID,
      `image model ${spec.name}: input.shape [${shape.join(', ')}] (${spec.input.layout}) does not hold ${spec.preprocess.color} images of ${width}x${height}`,
    );
  }
  return { width, height, channels, order: spec.input.layout === 'NHWC' ? 'HWC' : 'CHW', values };
}

function startsWith(bytes: Buffer, at: number, ascii: string): boolean {
  return bytes.length >= at + ascii.length && bytes.toString('latin1', at, at + ascii.length) === ascii;
}

/**
 * The format of encoded image bytes from their signature: an accepted format, the name of
 * a recognised but refused one, or undefined (not an image qualm knows). The bytes of a
 * refused format never reach a decoder.
 */
export function sniffImageFormat(bytes: Buffer): { readonly format: ImageFormat } | { readonly unsupported: string } | undefined {
  if (startsWith(bytes, 0, '\x89PNG\r\n\x1a\n')) return { format: 'png' };
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return { format: 'jpeg' };
  if (startsWith(bytes, 0, 'RIFF') && startsWith(bytes, 8, 'WEBP')) return { format: 'webp' };
  if (startsWith(bytes, 0, 'GIF87a') || startsWith(bytes, 0, 'GIF89a')) return { unsupported: 'GIF' };
  if (startsWith(bytes, 0, 'II*\0') || startsWith(bytes, 0, 'MM\0*') || startsWith(bytes, 0, 'II+\0') || startsWith(bytes, 0, 'MM\0+')) return { unsupported: 'TIFF' };
  if (startsWith(bytes, 0, 'BM')) return { unsupported: 'BMP' };
  if (startsWith(bytes, 4, 'ftyp')) return { unsupported: 'HEIF/AVIF' };
  if (startsWith(bytes, 0, '\0\0\0\x0cJXL ') || (bytes[0] === 0xff && bytes[1] === 0x0a)) return { unsupported: 'JPEG XL' };
  if (startsWith(bytes, 0, '\0\0\0\x0cjP  ') || (bytes[0] === 0xff && bytes[1] === 0x4f && bytes[2] === 0xff && bytes[3] === 0x51)) return { unsupported: 'JPEG 2000' };
  if (startsWith(bytes, 0, '%PDF')) return { unsupported: 'PDF' };
  if (startsWith(bytes, 0, '8BPS')) return { unsupported: 'PSD' };
  if (/^P[1-7]\s/.test(bytes.toString('latin1', 0, 3))) return { unsupported: 'Netpbm' };
  const head = bytes.toString('utf8', 0, Math.min(bytes.length, 256)).replace(/^\uFEFF/, '').trimStart();
  if (head.startsWith('<')) return { unsupported: /<svg[\s>]/i.test(bytes.toString('utf8', 0, Math.min(bytes.length, 4096))) ? 'SVG' : 'XML/HTML' };
  return undefined;
}

/** Python's round() of d/2 for an integer d: halves go to the even neighbour (torchvision's CenterCrop offset). */
export function centreOffset(d: number): number {
  if (d % 2 === 0) return d / 2;
  const k = Math.floor(d / 2);
  return k % 2 === 0 ? k : k + 1;
}

/** The size the resize step produces for a decoded width × height (torchvision Resize semantics). */
export function resizedSize(pre: ImageSpec['preprocess'], width: number, height: number): { readonly width: number; readonly height: number } {
  const r = pre.resize;
  if (r === undefined) return { width, height };
  if ('width' in r) return { width: r.width, height: r.height };
  // Resize(int): the shorter side becomes shortest_edge, the longer one int(shortest_edge * long / short).
  const s = r.shortest_edge;
  if (width <= height) return { width: s, height: Math.floor((s * height) / width) };
  return { width: Math.floor((s * width) / height), height: s };
}

/** Per channel, the input value of every pixel byte 0..255: (v × scale - mean) / std. */
function lookupTables(spec: ImageSpec, channels: number): Float32Array[] {
  const pre = spec.preprocess;
  const pick = (v: number | readonly number[], field: string, c: number): number => {
    if (typeof v === 'number') return v;
    if (v.length !== 1 && v.length !== channels) {
      throw new QualmError(ErrorCodes.MODEL_INVALID, `image model ${spec.name}: preprocess.${field} has ${v.length} values, ${pre.color} images have ${channels} channel(s)`);
    }
    return (v.length === 1 ? v[0] : v[c]) as number;
  };
  return Array.from({ length: channels }, (_, c) => {
    const mean = pick(pre.mean, 'mean', c);
    const std = pick(pre.std, 'std', c);
    if (std === 0) throw new QualmError(ErrorCodes.MODEL_INVALID, `image model ${spec.name}: preprocess.std is 0 for channel ${c}`);
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = (v * pre.scale - mean) / std;
    return lut;
  });
}

type Failure = Extract<ImagePrepResult, { ok: false }>;
const failure = (code: ImageErrorCode, message: string): Failure => ({ ok: false, code, message });

function describe(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}

/** Decodes, converts, resizes, crops and normalises one image. Never throws for bad image data. */
async function prepareOne(bytes: Buffer, spec: ImageSpec, g: ImageGeometry, luts: readonly Float32Array[]): Promise<ImagePrepResult> {
  const pre = spec.preprocess;
  const sniffed = sniffImageFormat(bytes);
  if (sniffed === undefined) {
    return failure(ErrorCodes.IMAGE_UNDECODABLE, `not a PNG, JPEG or WebP image (${bytes.length} bytes starting ${bytes.subarray(0, 8).toString('hex') || '(none)'})`);
  }
  if ('unsupported' in sniffed) return failure(ErrorCodes.IMAGE_UNSUPPORTED_FORMAT, `${sniffed.unsupported} images are not accepted; send PNG, JPEG or WebP`);
  const format = sniffed.format;
  // Pixel values as stored, as PIL reads them: an embedded ICC profile is not applied.
  const options = { failOn: 'error', limitInputPixels: pre.max_pixels, ignoreIcc: true } as const;

  // The header first: the size is known before a single pixel is decoded.
  let width: number;
  let height: number;
  try {
    // No pixel limit on the header read: the check below reports the size with its own code.
    const meta = await sharp(bytes, { ...options, limitInputPixels: false }).metadata();
    if (meta.format !== format) return failure(ErrorCodes.IMAGE_UNDECODABLE, `the data starts as ${format} but decodes as ${meta.format}`);
    width = meta.width;
    height = meta.height;
  } catch (err) {
    return failure(ErrorCodes.IMAGE_UNDECODABLE, `cannot read the ${format} header: ${describe(err)}`);
  }
  if (width * height > pre.max_pixels) {
    return failure(ErrorCodes.IMAGE_TOO_LARGE, `${format} image is ${width}x${height} = ${width * height} pixels, the limit (preprocess.max_pixels) is ${pre.max_pixels}`);
  }
  const resized = resizedSize(pre, width, height);
  const sizeIssue = (): Failure =>
    failure(
      ErrorCodes.IMAGE_BAD_SIZE,
      `${format} image is ${width}x${height}${pre.resize === undefined ? '' : `, ${resized.width}x${resized.height} after the resize`}; the model takes ${g.width}x${g.height}` +
        (pre.center_crop ? ' (the centre crop needs at least that size)' : ' (no centre crop in the manifest)'),
    );
  let crop: { left: number; top: number; width: number; height: number } | undefined;
  if (resized.width !== g.width || resized.height !== g.height) {
    if (!pre.center_crop || resized.width < g.width || resized.height < g.height) return sizeIssue();
    crop = { left: centreOffset(resized.width - g.width), top: centreOffset(resized.height - g.height), width: g.width, height: g.height };
  }

  let pixels: Buffer;
  try {
    // Alpha is composited onto black first (before any resampling), then every image is 8-bit sRGB.
    let p = sharp(bytes, options).flatten({ background: { r: 0, g: 0, b: 0 } }).toColourspace('srgb');
    if (resized.width !== width || resized.height !== height) {
      p = p.resize(resized.width, resized.height, { fit: 'fill', kernel: RESIZE_KERNEL, fastShrinkOnLoad: false });
    }
    if (crop !== undefined) p = p.extract(crop);
    const { data, info } = await p.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.width !== g.width || info.height !== g.height || info.channels !== 3) {
      return failure(ErrorCodes.IMAGE_BAD_SIZE, `${format} image decoded to ${info.width}x${info.height} with ${info.channels} channel(s), the model takes ${g.width}x${g.height} with 3 before the colour conversion`);
    }
    pixels = data;
  } catch (err) {
    return failure(ErrorCodes.IMAGE_UNDECODABLE, `cannot decode the ${format} image: ${describe(err)}`);
  }
  return { ok: true, values: toValues(pixels, g, luts) };
}

/** Interleaved 8-bit RGB pixels to the model's values: colour mode, scale/mean/std, value order. */
function toValues(rgb: Buffer, g: ImageGeometry, luts: readonly Float32Array[]): Float32Array {
  const n = g.width * g.height;
  const out = new Float32Array(g.values);
  if (g.channels === 1) {
    const lut = luts[0] as Float32Array;
    // ITU-R 601-2 luma in Pillow's fixed point (Image.convert('L')), on the gamma-encoded values.
    for (let i = 0; i < n; i++) {
      const gray = ((rgb[3 * i] as number) * 19595 + (rgb[3 * i + 1] as number) * 38470 + (rgb[3 * i + 2] as number) * 7471 + 0x8000) >> 16;
      out[i] = lut[gray] as number;
    }
    return out;
  }
  for (let c = 0; c < 3; c++) {
    const lut = luts[c] as Float32Array;
    if (g.order === 'HWC') for (let i = 0; i < n; i++) out[3 * i + c] = lut[rgb[3 * i + c] as number] as number;
    else for (let i = 0; i < n; i++) out[c * n + i] = lut[rgb[3 * i + c] as number] as number;
  }
  return out;
}

/**
 * Decodes and preprocesses encoded images per an image model's spec: one result per image, in
 * order; each row holds exactly `imageGeometry(spec).values` values in the input's layout. A
 * bad image is a result with its code (never a throw); a spec that cannot be satisfied (mean
 * or std of the wrong length, std 0) throws QUALM_MODEL_INVALID. At most `concurrency` images
 * are decoded at once, off the event loop.
 */
export async function preprocessImages(spec: ImageSpec, images: readonly Buffer[], opts: ImagePrepOptions = {}): Promise<ImagePrepResult[]> {
  const g = imageGeometry(spec);
  const luts = lookupTables(spec, g.channels);
  const results = new Array<ImagePrepResult>(images.length);
  const lanes = Math.max(1, Math.min(opts.concurrency ?? DEFAULT_IMAGE_CONCURRENCY, images.length));
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < images.length) {
      opts.signal?.throwIfAborted();
      const i = next++;
      results[i] = await prepareOne(images[i] as Buffer, spec, g, luts);
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  return results;
}
