import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  alertRules,
  boolified,
  cataloguedMetricNames,
  loadDashboard,
  metricNames,
  ruleTestCoverage,
  servedMetricNames,
  validateDashboard,
  validateRules,
  type AlertRule,
  type Dashboard,
} from '../../../scripts/deploy-checks/observability.js';

const ROOT = '.';
const UID = 'qualm-prometheus';

test('metric names are told apart from functions, aggregations, keywords and labels', () => {
  assert.deepEqual(metricNames('sum by (job, instance) (rate(qualm_a_total{code!="x", le="0.5"}[5m])) / on (job) group_left max(qualm_b) > bool 0'), ['qualm_a_total', 'qualm_b']);
  assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (le) (rate(qualm_c_bucket[$__rate_interval])))'), ['qualm_c_bucket']);
  assert.deepEqual(metricNames('up{job="qualm"} == 0 and nodejs_eventloop_lag_p99_seconds > 7 * 86400'), ['up', 'nodejs_eventloop_lag_p99_seconds']);
});

test('boolified turns every comparison with a number into a bool comparison, and leaves label matchers alone', () => {
  assert.equal(boolified('up{job!="x"} == 0'), 'up{job!="x"} == bool 0');
  assert.equal(boolified('a > 2 * b and c >= 200'), 'a > bool 2 * b and c >= bool 200');
  assert.equal(boolified('a<0.5'), 'a< bool 0.5');
});

test('the repo dashboard and rules pass their checks', async () => {
  const served = await servedMetricNames();
  const catalogued = cataloguedMetricNames(ROOT);
  assert.deepEqual(validateDashboard(loadDashboard(ROOT), served, catalogued, UID), []);
  const coverage = ruleTestCoverage(readFileSync('deploy/prometheus/tests/qualm-alerts.test.yml', 'utf8'));
  const rules = alertRules(ROOT);
  assert.ok(rules.length >= 8);
  assert.deepEqual(validateRules(rules, served, catalogued, coverage), []);
});

test('a dashboard query naming an unknown metric, or ignoring the instance variable, or on another datasource, is reported', async () => {
  const served = await servedMetricNames();
  const catalogued = cataloguedMetricNames(ROOT);
  const broken = structuredClone(loadDashboard(ROOT)) as Dashboard & { panels: { type: string; targets?: { expr: string }[]; datasource?: { uid: string } }[] };
  const panels = broken.panels.filter((p) => p.type !== 'row');
  const [first, second, third] = panels;
  assert.ok(first?.targets?.[0] && second?.targets?.[0] && third);
  first.targets[0].expr = 'sum(rate(qualm_messages_eaten_total{instance=~"$instance"}[5m]))';
  second.targets[0].expr = 'sum(rate(qualm_samples_flagged_total[5m]))';
  third.datasource = { uid: 'other' };
  const problems = validateDashboard(broken, served, catalogued, UID);
  assert.equal(problems.length, 3, problems.join('\n'));
  assert.match(problems.join('\n'), /names qualm_messages_eaten_total, which the worker does not export/);
  assert.match(problems.join('\n'), /ignores the \$instance variable/);
  assert.match(problems.join('\n'), /does not use the provisioned datasource uid qualm-prometheus/);
});

test('an alert without runbook, with an unknown metric, or without a firing and a quiet promtool test is reported', async () => {
  const served = await servedMetricNames();
  const catalogued = cataloguedMetricNames(ROOT);
  const rule: AlertRule = {
    file: 'rules.yml',
    alert: 'QualmNew',
    expr: 'qualm_nope > 1',
    labels: { severity: 'warning' },
    annotations: { summary: 's' },
  };
  const problems = validateRules([rule], served, catalogued, { fires: new Set(), quiet: new Set(['QualmNew']) });
  assert.deepEqual(problems, [
    'rules.yml: QualmNew has no runbook annotation',
    'rules.yml: QualmNew names qualm_nope, which the worker does not export',
    'rules.yml: QualmNew has no promtool test in which it fires',
  ]);
});

test('rule test coverage tells firing cases from quiet ones', () => {
  const c = ruleTestCoverage(`
tests:
  - alert_rule_test:
      - { alertname: A, eval_time: 1m, exp_alerts: [] }
      - alertname: B
        eval_time: 5m
        exp_alerts:
          - exp_labels: { severity: warning }
`);
  assert.deepEqual([...c.quiet], ['A']);
  assert.deepEqual([...c.fires], ['B']);
});

test('docs/deployment.md names every alert the rules define, and no other', () => {
  const doc = readFileSync('docs/deployment.md', 'utf8');
  const documented = [...doc.matchAll(/^\| `(Qualm[A-Za-z]+)` \|/gm)].map((m) => m[1]).sort();
  assert.deepEqual(documented, alertRules(ROOT).map((r) => r.alert).sort());
});
