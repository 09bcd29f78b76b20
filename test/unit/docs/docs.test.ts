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

test('docs/metrics.md lists exactly the qualm_ metrics the code defines', async () => {
  const doc = readFileSync('docs/metrics.md', 'utf8');
  const documented = new Set([...doc.matchAll(/^\| `(qualm_[a-z_]+)` \|/gm)].map((x) => x[1]));
  const metrics = new QualmMetrics({ defaultMetrics: false });
  const defined = new Set((await metrics.registry.getMetricsAsJSON()).map((x) => x.name));
  assert.deepEqual([...documented].sort(), [...defined].sort());
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
