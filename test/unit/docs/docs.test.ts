import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { QualmMetrics } from '../../../src/metrics/index.js';
import { configTable } from '../../../scripts/config-table.js';

const readme = readFileSync('README.md', 'utf8');

test('the README configuration table is the one generated from the options', () => {
  const m = /<!-- config-table:start -->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(readme);
  assert.ok(m, 'README has the config-table markers');
  assert.equal(m[1], configTable(), 'run: node --import tsx scripts/config-table.ts, and paste it into the README');
});

interface CatalogueRow {
  name: string;
  type: string;
  labels: string[];
}

/** The rows of a metrics table: name, type and labels as the doc states them. */
function catalogueRows(doc: string, prefix: RegExp): CatalogueRow[] {
  return [...doc.matchAll(/^\| `([a-z0-9_]+)` \| (\w+) \|([^|]*)\| [^|]+ \| .+ \|$/gm)]
    .filter((m) => prefix.test(m[1] as string))
    .map((m) => ({
      name: m[1] as string,
      type: m[2] as string,
      labels: [...(m[3] as string).matchAll(/`([a-z0-9_]+)`/g)].map((l) => l[1] as string).sort(),
    }));
}

/** Name, type and declared label names of every metric a registry holds. */
function registryRows(metrics: QualmMetrics): CatalogueRow[] {
  return metrics.registry.getMetricsAsArray().map((m) => {
    const metric = m as unknown as { name: string; type: string; labelNames?: readonly string[] };
    return { name: metric.name, type: metric.type, labels: [...(metric.labelNames ?? [])].sort() };
  });
}

test('docs/metrics.md lists exactly the qualm_ metrics the code defines, with their types and labels', () => {
  const doc = readFileSync('docs/metrics.md', 'utf8');
  const documented = catalogueRows(doc, /^qualm_/).sort((a, b) => a.name.localeCompare(b.name));
  const defined = registryRows(new QualmMetrics({ defaultMetrics: false })).sort((a, b) => a.name.localeCompare(b.name));
  assert.ok(documented.length >= 15, `parsed ${documented.length} rows`);
  assert.deepEqual(documented, defined);
});

test('docs/metrics.md states the prom-client default metrics it lists as they are served', () => {
  const doc = readFileSync('docs/metrics.md', 'utf8');
  const documented = catalogueRows(doc, /^(process|nodejs)_/);
  assert.ok(documented.length >= 5, `parsed ${documented.length} rows`);
  const served = new Map(registryRows(new QualmMetrics()).map((r) => [r.name, r]));
  for (const row of documented) assert.deepEqual(served.get(row.name), row, row.name);
  for (const dropped of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    assert.equal(served.has(dropped), false, `${dropped} is dropped`);
  }
});

test('the README quickstart has exactly the two commands, and both exist', () => {
  const quick = /## Quickstart\n\n```sh\n([\s\S]*?)```/.exec(readme);
  assert.ok(quick);
  const lines = (quick[1] ?? '').trim().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0] ?? '', /^npm ci && npm run demo\s/);
  assert.match(lines[1] ?? '', /^npm ci && npm test\s/);
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
  assert.ok(pkg.scripts.demo !== undefined && pkg.scripts.test !== undefined);
});

test('files the README links to exist', () => {
  for (const m of readme.matchAll(/\]\(((?:docs|tools|data)\/[^)#]+)\)/g)) {
    assert.ok(existsSync(m[1] as string), `README links to ${m[1]}`);
  }
});

test('.ci/run calls the README test command', () => {
  const ci = readFileSync('.ci/run', 'utf8');
  assert.match(ci, /^npm test$/m);
});
