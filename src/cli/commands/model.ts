import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { modelManifestPath, type Config } from '../../config/index.js';
import { ErrorCodes, QualmError, describeError } from '../../errors.js';
import { MODEL_MANIFEST_FORMAT, OnnxEncoder, readModelManifest, type DeclaredTensor, type ModelSpec } from '../../encoder/index.js';
import { seededRandom } from '../../util/random.js';
import { UsageError, intFlag, parseFlags } from '../args.js';

export const HELP = `qualm model: write and check the manifest that tells qualm how to run an ONNX encoder

Usage: qualm model init MODEL.onnx [--kind image] [--value-range LO,HI] [--out FILE] [--force]
       qualm model check MODEL.onnx [--batch B]

init   opens the model with onnxruntime, prints its inputs and outputs (names, shapes, element
       types) and writes a starter format 2 manifest beside it (MODEL.json) with what it can
       infer: the input kind (int64 input_ids + attention_mask: text; a 4-d float input: image,
       NCHW or NHWC from where the 1 or 3 channels sit; 2-d: features), the names, shape and
       dtype, dim from the output's last dimension, pooling (a 3-d output: mean), a
       tokenizer.json found beside the model. What it cannot know is written as a placeholder
       and listed on stderr as "fill in: ...". It refuses to overwrite a manifest without --force.
       --kind image makes a 2-d input an image input of the flat layout (models that flatten
       their pixels, such as the demo encoder's [n, 784]): colour and size are guessed from
       the input width (W*W grayscale, or 3*W*W rgb) and listed to confirm.
       --value-range LO,HI writes a features model's input.value_range: the range its wire
       features lie in (e.g. 0,1 for pixels already divided by 255); samples with a value
       outside go to the DLQ as QUALM_OUT_OF_RANGE.
check  reads the manifest (errors name the field and what was expected), opens the model
       through the encoder qualm runs (which checks the manifest against the model), runs one
       batch of dummy inputs (random values of the input's shape; dummy sentences for text)
       and prints JSON: dim, the L2 norm of the rows as the model gives them (mean, min, max)
       and whether that matches output.normalized, ms per batch, metric, and a features
       model's value_range (null when it declares none; the dummy values are drawn inside it).

Options:
  --kind K     init: image, to read a 2-d input as flattened images (default: inferred)
  --value-range LO,HI
               init: a features model's input.value_range (default: none, any finite value;
               write --value-range=-1,1 when LO is negative)
  --out FILE   init: where to write the manifest (default: MODEL.json beside the model)
  --force      init: overwrite an existing manifest
  --batch B    check: rows in the dummy batch (default: 8; a fixed batch size in the manifest wins)
  -h, --help   this text

Exit codes: 0 done, 1 the model or its manifest is unusable, 2 usage.
See docs/models.md for every manifest field.`;

/** One input or output of the model, as onnxruntime reports it. */
function describeValues(meta: readonly ort.InferenceSession.ValueMetadata[] | undefined, names: readonly string[]): DeclaredTensor[] {
  if (meta === undefined || meta.length === 0) return names.map((name) => ({ name, type: null, shape: [] }));
  return meta.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: null, shape: [] }));
}

const showDims = (t: DeclaredTensor): string => (t.shape.length === 0 ? '(shape not declared)' : `[${t.shape.map((d) => (typeof d === 'number' && d > 0 ? String(d) : `${String(d)}?`)).join(', ')}]`);
const fixed = (d: number | string | undefined): d is number => typeof d === 'number' && d > 0;

/** What init writes, and what the user still has to fill in or confirm. */
export interface StarterManifest {
  readonly manifest: Record<string, unknown>;
  readonly fillIn: readonly string[];
}

/**
 * A starter format 2 manifest for a model with these inputs and outputs (pure: the caller
 * reads the model). `tokenizer` is a tokenizer.json found beside the model (its file name and
 * its truncation length, when it has one), or null.
 */
export function starterManifest(
  modelName: string,
  inputs: readonly DeclaredTensor[],
  outputs: readonly DeclaredTensor[],
  tokenizer: { readonly file: string; readonly maxLength: number | null } | null,
  kind?: 'image',
  valueRange?: readonly [number, number],
): StarterManifest {
  const fillIn: string[] = [];
  const byName = (re: RegExp): DeclaredTensor | undefined => inputs.find((t) => re.test(t.name) && (t.type === 'int64' || t.type === null));
  const ids = byName(/input_ids/i);
  const mask = byName(/attention_mask/i);
  const out = outputs.find((t) => t.type === 'float32' || t.type === null) ?? outputs[0];
  if (out === undefined) throw new QualmError(ErrorCodes.MODEL_INVALID, 'the model declares no outputs');
  if (outputs.length > 1) fillIn.push(`output.name (${JSON.stringify(out.name)} chosen of ${outputs.map((o) => JSON.stringify(o.name)).join(', ')}: name the one that holds the embedding)`);
  const last = out.shape.at(-1);
  const dim: number | string = fixed(last) ? last : 'FILL_IN';
  if (!fixed(last)) fillIn.push(`dim (the output ${JSON.stringify(out.name)} does not fix its last dimension: the embedding size)`);
  const rank = out.shape.length;
  const common = { format_version: MODEL_MANIFEST_FORMAT, name: modelName, version: '1' };
  const output = (pooling: string): Record<string, unknown> => ({ name: out.name, pooling, normalized: false });
  fillIn.push('output.normalized (written false; qualm model check measures the norm)');
  fillIn.push('metric (written cosine: the distance the model was trained for; l2 or ip otherwise)');
  // A value range bounds features; images are decoded by qualm and texts tokenized, so there is nothing for it to bound.
  const noRange = (what: string): void => {
    if (valueRange !== undefined) throw new UsageError(`--value-range is for features models; this model reads as ${what}`);
  };

  if (ids !== undefined && mask !== undefined) {
    noRange('a text model');
    const types = inputs.find((t) => /token_type_ids/i.test(t.name));
    const others = inputs.filter((t) => t !== ids && t !== mask && t !== types);
    if (others.length > 0) fillIn.push(`input_names (the model also takes ${others.map((t) => t.name).join(', ')}, which qualm does not feed)`);
    const pooling = rank === 2 ? 'none' : 'mean';
    if (rank === 3) fillIn.push('output.pooling (written mean, the attention-mask mean of sentence-transformers; cls takes token 0)');
    if (tokenizer === null) fillIn.push('tokenizer (no tokenizer.json beside the model: put the Hugging Face tokenizer.json there, or name its path)');
    const maxTokens = tokenizer?.maxLength ?? 512;
    fillIn.push(`max_tokens (written ${maxTokens}${tokenizer?.maxLength != null ? ", the tokenizer's truncation length" : ''}: the longest sequence the model was trained on)`);
    fillIn.push('prefix (written none; e5-style models want e.g. "query: ")');
    return {
      manifest: {
        ...common,
        input_kind: 'text',
        tokenizer: tokenizer?.file ?? 'tokenizer.json',
        max_tokens: maxTokens,
        input_names: { input_ids: ids.name, attention_mask: mask.name, ...(types === undefined ? {} : { token_type_ids: types.name }) },
        prefix: '',
        output: output(pooling),
        dim,
        metric: 'cosine',
      },
      fillIn,
    };
  }

  const input = inputs.find((t) => t.type === 'float32' || t.type === 'uint8') ?? inputs[0];
  if (input === undefined) throw new QualmError(ErrorCodes.MODEL_INVALID, 'the model declares no inputs');
  if (inputs.length > 1) fillIn.push(`input.name (${JSON.stringify(input.name)} chosen of ${inputs.map((t) => JSON.stringify(t.name)).join(', ')}; qualm feeds one input)`);
  const dtype = input.type === 'uint8' ? 'uint8' : 'float32';
  if (input.type !== null && input.type !== 'float32' && input.type !== 'uint8') fillIn.push(`input.dtype (the model takes ${input.type}; qualm feeds float32 or uint8)`);
  const shape = input.shape.map((d, i) => (fixed(d) ? d : i === 0 ? -1 : 'FILL_IN'));
  if (shape.length > 1 && shape.slice(1).some((d) => d === 'FILL_IN')) fillIn.push(`input.shape (the model leaves ${showDims(input)} open after the batch: the size it takes)`);
  const pooling = rank === 3 ? 'mean' : 'none';
  if (rank === 3) fillIn.push('output.pooling (a token output: written mean, the plain token mean; cls takes token 0)');

  if (input.shape.length === 4) {
    noRange('an image model (4-d input)');
    const [, a, , d] = input.shape;
    const nhwc = !(a === 1 || a === 3) && (d === 1 || d === 3);
    const channels = nhwc ? d : a;
    const color = channels === 1 ? 'grayscale' : 'rgb';
    if (!fixed(channels)) fillIn.push('input.layout and preprocess.color (the channel dimension is open)');
    fillIn.push('preprocess.mean and preprocess.std (written 0 and 1: the per-channel values the model was trained with, e.g. ImageNet [0.485, 0.456, 0.406] and [0.229, 0.224, 0.225])');
    fillIn.push('preprocess.resize and preprocess.center_crop (written none: how the training images were resized to the input)');
    return {
      manifest: {
        ...common,
        input_kind: 'image',
        input: { name: input.name, dtype, shape, layout: nhwc ? 'NHWC' : 'NCHW' },
        preprocess: { color, center_crop: false, scale: 1 / 255, mean: 0, std: 1 },
        output: output(pooling),
        dim,
        metric: 'cosine',
      },
      fillIn,
    };
  }
  if (kind === 'image') {
    noRange('an image model (--kind image)');
    if (input.shape.length !== 2) throw new UsageError(`--kind image reads a 2-d input as flattened images; ${input.name} is ${showDims(input)}`);
    const width = input.shape[1];
    const side = (v: number): number | null => (Number.isInteger(Math.sqrt(v)) ? Math.sqrt(v) : null);
    const gray = fixed(width) ? side(width) : null;
    const rgb = fixed(width) && width % 3 === 0 ? side(width / 3) : null;
    const color = gray === null && rgb !== null ? 'rgb' : 'grayscale';
    const edge = gray ?? rgb;
    if (edge === null) fillIn.push(`preprocess.size and preprocess.color (${showDims(input)} is not W*W or 3*W*W values: give the image size and colour the model flattens)`);
    else fillIn.push(`preprocess.size and preprocess.color (guessed ${color} ${edge}x${edge} from ${String(width)} values: confirm)`);
    fillIn.push('preprocess.scale, mean and std (written 1/255, 0 and 1: pixel values in [0, 1], as the model was trained on)');
    return {
      manifest: {
        ...common,
        input_kind: 'image',
        input: { name: input.name, dtype, shape, layout: 'flat' },
        preprocess: { color, size: { width: edge ?? 'FILL_IN', height: edge ?? 'FILL_IN' }, center_crop: false, scale: 1 / 255, mean: 0, std: 1 },
        output: output(pooling),
        dim,
        metric: 'cosine',
      },
      fillIn,
    };
  }
  if (input.shape.length !== 2) fillIn.push(`input_kind (a ${input.shape.length}-d input ${showDims(input)}: written features; an image input is 4-d, or 2-d with layout flat)`);
  fillIn.push('preprocess (written none: scale, mean, std if the model was trained on transformed features)');
  if (valueRange === undefined) fillIn.push('input.value_range (written none: the range the wire features lie in, e.g. [0, 1] for pixels divided by 255, so that values outside go to the DLQ; --value-range LO,HI)');
  const range = valueRange === undefined ? {} : { value_range: [...valueRange] };
  return {
    manifest: { ...common, input_kind: 'features', input: { name: input.name, dtype, shape, ...range }, preprocess: { scale: 1, mean: 0, std: 1 }, output: output(pooling), dim, metric: 'cosine' },
    fillIn,
  };
}

async function openSession(path: string): Promise<ort.InferenceSession> {
  if (!existsSync(path)) throw new QualmError(ErrorCodes.MODEL_INVALID, `no model at ${path}`, { context: { path } });
  try {
    return await ort.InferenceSession.create(path, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  } catch (err) {
    throw new QualmError(ErrorCodes.MODEL_INVALID, `cannot load model ${path}: ${describeError(err)}`, { cause: err, context: { path } });
  }
}

/** tokenizer.json beside the model, with its truncation length when it sets one. */
function findTokenizer(modelPath: string): { file: string; maxLength: number | null } | null {
  const file = join(dirname(modelPath), 'tokenizer.json');
  if (!existsSync(file)) return null;
  let maxLength: number | null = null;
  try {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { truncation?: { max_length?: unknown } | null };
    const m = doc.truncation?.max_length;
    if (typeof m === 'number' && Number.isInteger(m) && m >= 2) maxLength = m;
  } catch {
    // An unreadable tokenizer.json is still named; the encoder reports it when it opens.
  }
  return { file: 'tokenizer.json', maxLength };
}

/** `--value-range LO,HI` (brackets allowed: `[0,1]`) as two finite numbers, LO below HI. */
export function valueRangeFlag(raw: string | undefined): readonly [number, number] | undefined {
  if (raw === undefined) return undefined;
  const parts = raw.trim().replace(/^\[(.*)\]$/, '$1').split(',');
  const [lo, hi] = parts.map((p) => (p.trim() === '' ? NaN : Number(p)));
  if (parts.length !== 2 || lo === undefined || hi === undefined || !Number.isFinite(lo) || !Number.isFinite(hi) || !(lo < hi)) {
    throw new UsageError(`--value-range takes LO,HI: two finite numbers, LO below HI (e.g. 0,1), got ${JSON.stringify(raw)}`);
  }
  return [lo, hi];
}

async function init(modelPath: string, out: string | undefined, force: boolean, kind: 'image' | undefined, valueRange: readonly [number, number] | undefined): Promise<number> {
  const target = resolve(out ?? modelManifestPath(modelPath));
  if (existsSync(target) && !force) throw new UsageError(`${target} exists; pass --force to overwrite it`);
  const session = await openSession(modelPath);
  let inputs: DeclaredTensor[];
  let outputs: DeclaredTensor[];
  try {
    inputs = describeValues(session.inputMetadata, session.inputNames);
    outputs = describeValues(session.outputMetadata, session.outputNames);
  } finally {
    await session.release();
  }
  console.log(`${modelPath}`);
  console.log('inputs:');
  for (const t of inputs) console.log(`  ${t.name}  ${t.type ?? 'non-tensor'}  ${showDims(t)}`);
  console.log('outputs:');
  for (const t of outputs) console.log(`  ${t.name}  ${t.type ?? 'non-tensor'}  ${showDims(t)}`);
  const starter = starterManifest(basename(modelPath).replace(/\.onnx$/i, ''), inputs, outputs, findTokenizer(modelPath), kind, valueRange);
  await writeFile(target, JSON.stringify(starter.manifest, null, 2) + '\n');
  console.log(`wrote ${target} (${String(starter.manifest.input_kind)} model)`);
  for (const f of starter.fillIn) console.error(`fill in: ${f}`);
  console.error('then run: qualm model check ' + modelPath);
  return 0;
}

/** Sentences for a text model's dummy batch. */
const DUMMY_TEXTS = [
  'A short sentence to check the encoder.',
  'The quick brown fox jumps over the lazy dog.',
  'qualm embeds this text and measures the rows.',
  'Another, slightly longer sentence, with punctuation; and a clause or two, to vary the length of the run.',
];

/**
 * Dummy rows for a features or image model: uniform random values (0..1 floats, 0..255 for
 * uint8 features), image rows as random pixels put through the manifest's scale, mean and std.
 */
export function dummyRows(spec: ModelSpec, n: number, width: number, seed = 1): Float32Array {
  const rnd = seededRandom(seed);
  const rows = new Float32Array(n * width);
  if (spec.input_kind === 'features') {
    const range = spec.input.value_range;
    if (range !== undefined) {
      // Inside the declared range, as the samples the worker accepts are.
      const [lo, hi] = range;
      for (let i = 0; i < rows.length; i++) rows[i] = lo + rnd() * (hi - lo);
      return rows;
    }
    for (let i = 0; i < rows.length; i++) rows[i] = spec.input.dtype === 'uint8' ? Math.floor(rnd() * 256) : rnd();
    return rows;
  }
  if (spec.input_kind !== 'image') return rows;
  const p = spec.preprocess;
  const channels = p.color === 'rgb' ? 3 : 1;
  const pick = (v: number | number[], c: number): number => (Array.isArray(v) ? ((v.length === 1 ? v[0] : v[c]) ?? 0) : v);
  const plane = width / channels;
  for (let j = 0; j < width; j++) {
    const c = spec.input.layout === 'NHWC' ? j % channels : Math.floor(j / plane);
    const mean = pick(p.mean, c);
    const std = pick(p.std, c);
    for (let i = 0; i < n; i++) {
      const v = Math.floor(rnd() * 256) * p.scale;
      rows[i * width + j] = spec.input.dtype === 'uint8' ? v : (v - mean) / std;
    }
  }
  return rows;
}

async function check(modelPath: string, batchFlag: number): Promise<number> {
  // The manifest first, so that its errors come before any model loading.
  const manifestPath = modelManifestPath(modelPath);
  const spec = await readModelManifest(manifestPath);
  const encoder = await OnnxEncoder.open(modelPath);
  try {
    const fixedRows = spec.input_kind === 'text' ? null : (spec.input.shape[0] ?? -1) > 0 ? (spec.input.shape[0] as number) : null;
    const n = fixedRows ?? batchFlag;
    const once = async (): Promise<Float32Array> => {
      if (spec.input_kind === 'text') return encoder.embedTexts(Array.from({ length: n }, (_, i) => DUMMY_TEXTS[i % DUMMY_TEXTS.length] as string), { normalize: false, batch: n });
      return encoder.embed(dummyRows(spec, n, encoder.inputDim), n, { normalize: false });
    };
    await once(); // warm-up: the first run allocates
    const runs = 3;
    const t0 = performance.now();
    let rows: Float32Array = new Float32Array(0);
    for (let r = 0; r < runs; r++) rows = await once();
    const ms = (performance.now() - t0) / runs;
    const dim = encoder.dim;
    const norms: number[] = [];
    let finite = true;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < dim; j++) {
        const v = rows[i * dim + j] as number;
        if (!Number.isFinite(v)) finite = false;
        s += v * v;
      }
      norms.push(Math.sqrt(s));
    }
    const unit = norms.every((v) => Math.abs(v - 1) < 1e-3);
    const round = (v: number): number => Math.round(v * 1e6) / 1e6;
    const report = {
      model: modelPath,
      manifest: manifestPath,
      name: `${spec.name}@${spec.version}`,
      input_kind: spec.input_kind,
      ...(spec.input_kind === 'text' ? { max_tokens: spec.max_tokens, pooling: spec.output.pooling } : { input_shape: spec.input.shape, input_dtype: spec.input.dtype, pooling: spec.output.pooling }),
      ...(spec.input_kind === 'features' ? { value_range: spec.input.value_range ?? null } : {}),
      dim,
      metric: encoder.metric,
      batch: n,
      norm: { mean: round(norms.reduce((a, b) => a + b, 0) / n), min: round(Math.min(...norms)), max: round(Math.max(...norms)) },
      normalized: { manifest: spec.output.normalized, measured: unit, matches: spec.output.normalized === unit },
      finite,
      ms_per_batch: Math.round(ms * 100) / 100,
    };
    console.log(JSON.stringify(report, null, 2));
    if (!finite) {
      console.error('qualm model check: the model returned non-finite values for the dummy batch');
      return 1;
    }
    if (!report.normalized.matches) console.error(`note: output.normalized is ${spec.output.normalized} in the manifest, but the rows ${unit ? 'are' : 'are not'} unit length`);
    if (encoder.metric === 'ip' && norms.some((v) => v > 1 + 1e-4)) console.error('note: the ip metric needs rows of norm at most 1 (build-index refuses longer ones); use cosine or l2');
    return 0;
  } finally {
    await encoder.close();
  }
}

export async function run(argv: string[], _config: Config): Promise<number> {
  const [sub, model, ...rest] = argv;
  if (sub !== 'init' && sub !== 'check') throw new UsageError(sub === undefined ? 'name a subcommand: init or check' : `unknown subcommand ${JSON.stringify(sub)}: init or check`);
  if (model === undefined || model.startsWith('-')) throw new UsageError(`qualm model ${sub} needs the path of an .onnx model`);
  const { values } = parseFlags(rest, { kind: { type: 'string' }, 'value-range': { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' }, batch: { type: 'string' } });
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  const path = resolve(model);
  if (sub === 'init') {
    if (values.batch !== undefined) throw new UsageError('--batch is an option of check');
    if (values.kind !== undefined && values.kind !== 'image') throw new UsageError(`--kind takes image (other kinds are inferred), got ${JSON.stringify(values.kind)}`);
    const valueRange = valueRangeFlag(values['value-range']);
    if (valueRange !== undefined && values.kind === 'image') throw new UsageError('--value-range is for features models, not --kind image');
    return init(path, values.out, values.force === true, values.kind, valueRange);
  }
  if (values.out !== undefined || values.force !== undefined || values.kind !== undefined || values['value-range'] !== undefined) throw new UsageError('--kind, --value-range, --out and --force are options of init');
  return check(path, intFlag('batch', values.batch, 8, 1));
}
