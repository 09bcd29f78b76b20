import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SCORE_NAMES, type EvaluationDetail } from './evaluate.js';
import type { PlotFiles } from './report.js';

/** Points kept per risk-coverage curve in the plot. */
const CURVE_POINTS = 200;
/** Scores drawn in the in-vs-out histograms. */
const HISTOGRAM_SCORES = ['qualm', 'qualm_ood', 'kth_distance', 'gmm_ll'] as const;

/** A Vega-Lite specification (checked by vega-lite's compiler at render time). */
export type VegaLiteSpec = Record<string, unknown>;

/** The parts of vega and vega-lite the plots use. */
interface VegaView {
  toSVG(): Promise<string>;
  finalize(): void;
}
interface Vega {
  View: new (runtime: unknown, opts: { renderer: 'none' }) => VegaView;
  parse(spec: unknown): unknown;
}
interface VegaLite {
  compile(spec: VegaLiteSpec): { spec: unknown };
}

/** Thrown when the charting packages are not installed; the evaluation then writes no plots. */
export class PlotsUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`the charting packages vega and vega-lite cannot be loaded (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
    this.name = 'PlotsUnavailableError';
  }
}

// Module names held in variables: the packages are loaded on first use only, so that the
// other CLI commands do not pay for them at start-up and the rest of the evaluation works
// without them.
const VEGA: string = 'vega';
const VEGA_LITE: string = 'vega-lite';

async function loadVega(): Promise<{ vega: Vega; vegaLite: VegaLite }> {
  try {
    const [vega, vegaLite] = (await Promise.all([import(VEGA), import(VEGA_LITE)])) as [Vega, VegaLite];
    return { vega, vegaLite };
  } catch (err) {
    throw new PlotsUnavailableError(err);
  }
}

/** Renders a Vega-Lite spec to SVG headlessly (no canvas: vega's SVG string renderer). */
export async function vegaLiteToSvg(spec: VegaLiteSpec): Promise<string> {
  const { vega, vegaLite } = await loadVega();
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function riskCoverageSpec(detail: EvaluationDetail): VegaLiteSpec {
  const values: { score: string; coverage: number; risk: number }[] = [];
  for (const name of SCORE_NAMES) {
    const c = detail.riskCurves[name];
    if (c === undefined) continue;
    const n = c.coverage.length;
    for (let p = 1; p <= CURVE_POINTS; p++) {
      const i = Math.max(0, Math.min(n - 1, Math.round((p * n) / CURVE_POINTS) - 1));
      values.push({ score: name, coverage: c.coverage[i] as number, risk: c.risk[i] as number });
    }
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Risk-coverage: probe error of the most certain samples (${detail.result.setup})`,
    width: 520,
    height: 340,
    data: { values },
    mark: { type: 'line', strokeWidth: 1.5 },
    encoding: {
      x: { field: 'coverage', type: 'quantitative', title: 'coverage (share of test points kept, most certain first)' },
      y: { field: 'risk', type: 'quantitative', title: 'risk (error rate of the kept points)' },
      color: { field: 'score', type: 'nominal', sort: [...SCORE_NAMES] },
      strokeDash: { condition: { test: "datum.score === 'qualm'", value: [1, 0] }, value: [4, 2] },
    },
  };
}

function decileSpec(detail: EvaluationDetail): VegaLiteSpec {
  const values: { score: string; decile: number; accuracy: number }[] = [];
  for (const name of SCORE_NAMES) {
    const m = detail.result.scores[name];
    if (m === undefined) continue;
    m.decile_accuracy.forEach((a, i) => values.push({ score: name, decile: i + 1, accuracy: a }));
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Probe accuracy per uncertainty decile (1 = most certain)',
    width: 520,
    height: 340,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'decile', type: 'ordinal', title: 'uncertainty decile' },
      y: { field: 'accuracy', type: 'quantitative', title: 'probe accuracy', scale: { zero: false } },
      color: { field: 'score', type: 'nominal', sort: [...SCORE_NAMES] },
    },
  };
}

function histogramSpec(detail: EvaluationDetail, names: readonly string[]): VegaLiteSpec {
  const values: { score: string; set: string; value: number }[] = [];
  for (const name of names) {
    const t = detail.test[name as keyof typeof detail.test];
    const o = detail.ood[name as keyof typeof detail.ood];
    if (t === undefined || o === undefined) continue;
    for (const v of t) values.push({ score: name, set: 'in distribution (test)', value: v });
    for (const v of o) values.push({ score: name, set: 'out of distribution', value: v });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Uncertainty, in vs out of distribution',
    data: { values },
    facet: { field: 'score', type: 'nominal', columns: 2, sort: [...names] },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    spec: {
      width: 260,
      height: 160,
      mark: { type: 'bar', opacity: 0.55, binSpacing: 0 },
      encoding: {
        x: { field: 'value', type: 'quantitative', bin: { maxbins: 40 }, title: 'uncertainty' },
        y: { aggregate: 'count', type: 'quantitative', stack: null, title: 'samples' },
        color: { field: 'set', type: 'nominal' },
      },
    },
  };
}

/** Writes the SVG plots of an evaluation into `dir`; returns their file names. */
export async function renderPlots(detail: EvaluationDetail, dir: string): Promise<PlotFiles> {
  const files = { riskCoverage: 'risk-coverage.svg', decileAccuracy: 'decile-accuracy.svg', oodHistograms: 'ood-histograms.svg' };
  await writeFile(join(dir, files.riskCoverage), await vegaLiteToSvg(riskCoverageSpec(detail)));
  await writeFile(join(dir, files.decileAccuracy), await vegaLiteToSvg(decileSpec(detail)));
  if (Object.keys(detail.ood).length === 0) return { ...files, oodHistograms: null };
  await writeFile(join(dir, files.oodHistograms), await vegaLiteToSvg(histogramSpec(detail, HISTOGRAM_SCORES)));
  return files;
}
