import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderPlots, riskCoverage, scoreMetrics, type EvaluationDetail } from '../../../src/eval/index.js';
import { seededRandom } from '../../../src/util/random.js';

test('renderPlots writes the three SVG plots headlessly', async () => {
  const rnd = seededRandom(1);
  const n = 300;
  const error01 = Float64Array.from({ length: n }, () => (rnd() < 0.2 ? 1 : 0));
  const qualm = Float64Array.from(error01, (e) => e * 0.3 + rnd());
  const random = Float64Array.from({ length: n }, () => rnd());
  const rc = (u: Float64Array) => {
    const r = riskCoverage(u, error01);
    return { coverage: r.coverage, risk: r.risk };
  };
  const detail = {
    result: { setup: 'test', scores: { qualm: scoreMetrics(qualm, error01, error01), random: scoreMetrics(random, error01, error01) } },
    test: { qualm, random },
    ood: { qualm: Float64Array.from({ length: 100 }, () => 0.5 + rnd()) },
    error01,
    riskCurves: { qualm: rc(qualm), random: rc(random) },
  } as unknown as EvaluationDetail;
  const dir = await mkdtemp(join(tmpdir(), 'qualm-plots-'));
  try {
    // vega and vega-lite are devDependencies, so they are here wherever the tests run.
    const files = await renderPlots(detail, dir);
    for (const f of [files.riskCoverage, files.decileAccuracy, files.oodHistograms]) {
      assert.ok(f !== null);
      const svg = await readFile(join(dir, f), 'utf8');
      assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      assert.match(svg, /qualm/);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
