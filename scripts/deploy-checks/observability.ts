// Static checks of deploy/prometheus and deploy/grafana: promtool on the config, the rules, the
// rule unit tests and the worker's scraped output; every metric a panel or an alert names is one
// the worker exports (the catalogue in docs/metrics.md, itself tested against the registry); every
// alert has a runbook line and promtool tests that make it fire and stay quiet.
// test/integration/prometheus.test.ts runs the same queries against a real Prometheus.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { QualmMetrics } from '../../src/metrics/index.js';

export const DASHBOARD_FILE = 'deploy/grafana/dashboards/qualm.json';
export const DATASOURCE_FILE = 'deploy/grafana/provisioning/datasources/prometheus.yml';
export const PROMETHEUS_DIR = 'deploy/prometheus';
export const RULES_DIR = 'deploy/prometheus/rules';
export const RULE_TESTS_DIR = 'deploy/prometheus/tests';

/** One query of the dashboard, with where it sits for messages. */
export interface DashboardQuery {
  readonly where: string;
  readonly expr: string;
}

/** A `label_values(metric, label)` template variable. */
export interface QueryVariable {
  readonly name: string;
  readonly metric: string;
  readonly label: string;
  readonly allValue: string;
}

export interface AlertRule {
  readonly file: string;
  readonly alert: string;
  readonly expr: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

interface Target {
  expr?: unknown;
  datasource?: { uid?: unknown };
}

interface Panel {
  id?: unknown;
  title?: unknown;
  type?: unknown;
  datasource?: { uid?: unknown };
  targets?: Target[];
  panels?: Panel[];
}

export interface Dashboard {
  uid?: unknown;
  title?: unknown;
  panels?: Panel[];
  annotations?: { list?: { name?: unknown; expr?: unknown; builtIn?: unknown; datasource?: { uid?: unknown } }[] };
  templating?: { list?: { name?: unknown; query?: unknown; definition?: unknown; allValue?: unknown; datasource?: { uid?: unknown } }[] };
}

export function loadDashboard(root: string): Dashboard {
  return JSON.parse(readFileSync(join(root, DASHBOARD_FILE), 'utf8')) as Dashboard;
}

/** Panels, rows' nested panels included, in order. */
function allPanels(d: Dashboard): Panel[] {
  return (d.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL expression of the dashboard: panel targets and query annotations. */
export function dashboardQueries(d: Dashboard): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const p of allPanels(d)) {
    for (const [i, t] of (p.targets ?? []).entries()) {
      if (typeof t.expr === 'string') out.push({ where: `panel "${String(p.title)}" target ${i}`, expr: t.expr });
    }
  }
  for (const a of d.annotations?.list ?? []) {
    if (typeof a.expr === 'string') out.push({ where: `annotation "${String(a.name)}"`, expr: a.expr });
  }
  return out;
}

/** The dashboard's `label_values(metric, label)` variables. */
export function panelVariables(d: Dashboard): QueryVariable[] {
  const out: QueryVariable[] = [];
  for (const v of d.templating?.list ?? []) {
    const q = typeof v.query === 'object' && v.query !== null ? (v.query as { query?: unknown }).query : v.query;
    const m = typeof q === 'string' ? /^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/.exec(q) : null;
    if (m !== null && typeof v.name === 'string') {
      out.push({ name: v.name, metric: m[1] as string, label: m[2] as string, allValue: typeof v.allValue === 'string' ? v.allValue : '.*' });
    }
  }
  return out;
}

export function alertRules(root: string): AlertRule[] {
  const dir = join(root, RULES_DIR);
  const out: AlertRule[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yml') || f.endsWith('.yaml')).sort()) {
    const doc = parse(readFileSync(join(dir, file), 'utf8')) as { groups?: { rules?: Record<string, unknown>[] }[] };
    for (const g of doc.groups ?? []) {
      for (const r of g.rules ?? []) {
        if (typeof r.alert !== 'string') continue;
        out.push({
          file: join(RULES_DIR, file),
          alert: r.alert,
          expr: String(r.expr),
          labels: (r.labels ?? {}) as Record<string, string>,
          annotations: (r.annotations ?? {}) as Record<string, string>,
        });
      }
    }
  }
  return out;
}

/**
 * The alert expression with every comparison against a number turned into a `bool` comparison,
 * so that it returns a series for every input series whether or not the alert condition holds:
 * what is left to prove is that its inputs exist and match.
 */
export function boolified(expr: string): string {
  return expr.replace(/(==|!=|>=|<=|>|<)(\s*)(?=-?\d)/g, (_, op: string, space: string) => `${op} bool${space || ' '}`);
}

/** Metric names an expression selects (not functions, keywords or label names). */
export function metricNames(expr: string): string[] {
  // Drop label matchers and grouping clauses, whose contents are label names and values;
  // a name followed by `(` is a function or an aggregation.
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w$:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()/g)) {
    const name = m[1] as string;
    if (!PROMQL_WORDS.has(name) && !/^\d/.test(name)) names.add(name);
  }
  return [...names];
}

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan', 'Inf', 'NaN']);

/** Names a query may use: every series the worker's registry exposes (histograms with their suffixes), and Prometheus's `up`. */
export async function servedMetricNames(): Promise<Set<string>> {
  const names = new Set<string>(['up']);
  for (const m of await new QualmMetrics().registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

/** Names listed in docs/metrics.md (both tables). */
export function cataloguedMetricNames(root: string): Set<string> {
  const doc = readFileSync(join(root, 'docs/metrics.md'), 'utf8');
  return new Set([...doc.matchAll(/^\| `([a-z0-9_]+)` \|/gm)].map((m) => m[1] as string));
}

function baseName(name: string): string {
  return name.replace(/_(bucket|sum|count)$/, '');
}

export function validateDashboard(d: Dashboard, served: ReadonlySet<string>, catalogued: ReadonlySet<string>, datasourceUid: string): string[] {
  const problems: string[] = [];
  const at = DASHBOARD_FILE;
  if (typeof d.uid !== 'string' || d.uid === '') problems.push(`${at}: the dashboard has no uid`);
  const ids = new Set<unknown>();
  for (const p of allPanels(d)) {
    if (ids.has(p.id)) problems.push(`${at}: panel id ${String(p.id)} is used twice`);
    ids.add(p.id);
    if (p.type === 'row') continue;
    if (p.datasource?.uid !== datasourceUid) problems.push(`${at}: panel "${String(p.title)}" does not use the provisioned datasource uid ${datasourceUid}`);
    if ((p.targets ?? []).length === 0) problems.push(`${at}: panel "${String(p.title)}" has no query`);
  }
  const variables = panelVariables(d);
  if (!variables.some((v) => v.name === 'instance')) problems.push(`${at}: no label_values(..., instance) variable named instance`);
  for (const v of variables) {
    if (!served.has(v.metric)) problems.push(`${at}: variable ${v.name} reads ${v.metric}, which the worker does not export`);
  }
  for (const q of dashboardQueries(d)) {
    if (!q.expr.includes('$instance')) problems.push(`${at}: ${q.where} ignores the $instance variable: ${q.expr}`);
    for (const name of metricNames(q.expr)) {
      if (!served.has(name)) problems.push(`${at}: ${q.where} names ${name}, which the worker does not export`);
      else if (name !== 'up' && !catalogued.has(baseName(name))) problems.push(`${at}: ${q.where} names ${name}, which docs/metrics.md does not list`);
    }
  }
  return problems;
}

/** Alerts named in a promtool test file: which ones have a firing case and which a quiet one. */
export function ruleTestCoverage(testYaml: string): { fires: Set<string>; quiet: Set<string> } {
  const doc = parse(testYaml) as { tests?: { alert_rule_test?: { alertname?: string; exp_alerts?: unknown[] }[] }[] };
  const fires = new Set<string>();
  const quiet = new Set<string>();
  for (const t of doc.tests ?? []) {
    for (const a of t.alert_rule_test ?? []) {
      if (typeof a.alertname !== 'string') continue;
      ((a.exp_alerts ?? []).length > 0 ? fires : quiet).add(a.alertname);
    }
  }
  return { fires, quiet };
}

export function validateRules(rules: readonly AlertRule[], served: ReadonlySet<string>, catalogued: ReadonlySet<string>, coverage: { fires: ReadonlySet<string>; quiet: ReadonlySet<string> }): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const r of rules) {
    const at = `${r.file}: ${r.alert}`;
    if (seen.has(r.alert)) problems.push(`${at} is defined twice`);
    seen.add(r.alert);
    if (!['critical', 'warning', 'info'].includes(r.labels.severity ?? '')) problems.push(`${at} has no severity label (critical, warning or info)`);
    if (!(r.annotations.summary ?? '').trim()) problems.push(`${at} has no summary annotation`);
    if (!(r.annotations.runbook ?? '').trim()) problems.push(`${at} has no runbook annotation`);
    const names = metricNames(r.expr);
    if (names.length === 0) problems.push(`${at} selects no metric`);
    for (const name of names) {
      if (!served.has(name)) problems.push(`${at} names ${name}, which the worker does not export`);
      else if (name !== 'up' && !catalogued.has(baseName(name))) problems.push(`${at} names ${name}, which docs/metrics.md does not list`);
    }
    if (!coverage.fires.has(r.alert)) problems.push(`${at} has no promtool test in which it fires`);
    if (!coverage.quiet.has(r.alert)) problems.push(`${at} has no promtool test in which it stays quiet`);
  }
  return problems;
}

/** Runs promtool; a missing binary is a problem, not a pass. */
function promtool(args: readonly string[], root: string, input?: string): string[] {
  const res = spawnSync('promtool', args, { cwd: root, encoding: 'utf8', ...(input === undefined ? {} : { input }) });
  if (res.error !== undefined) return [`promtool ${args[0] ?? ''} ${args[1] ?? ''}: promtool not found (install the Debian package prometheus): ${res.error.message}`];
  if (res.status !== 0) return [`promtool ${args.join(' ')} failed:\n${(res.stdout + res.stderr).trim()}`];
  // `check metrics` reports lint findings on stdout with exit status 0 in some versions.
  if (args[1] === 'metrics' && (res.stdout + res.stderr).trim() !== '') return [`promtool check metrics:\n${(res.stdout + res.stderr).trim()}`];
  return [];
}

/** The worker's /metrics text with every metric family populated, as promtool should see it in production. */
export async function populatedExposition(): Promise<string> {
  const m = new QualmMetrics();
  m.consumed.inc({ topic: 'in' }, 3);
  m.scored.inc(2);
  m.flagged.inc({ reason: 'out_of_distribution' });
  m.dlq.inc({ code: 'QUALM_BAD_JSON' });
  m.batchSize.observe(3);
  m.time('embed')();
  m.uncertainty.observe(0.5);
  m.signal.observe({ signal: 'density_percentile' }, 0.5);
  m.produceErrors.inc();
  m.setBundle({ version: 'v1', modelSha256: 'a'.repeat(64), count: 10, createdAt: Date.now() });
  m.bundleRefresh.inc({ outcome: 'swapped' });
  m.bundleLoadSeconds.observe(0.2);
  m.consumerLag.set({ topic: 'in', partition: '0' }, 0);
  const view = { samples: 1, oodRatio: 0, uncertainty: { '0.5': 0.5 } };
  m.setDrift({ stream: () => view, reference: () => view });
  return m.registry.metrics();
}

export async function checkObservability(root: string): Promise<string[]> {
  const problems: string[] = [];
  problems.push(...promtool(['check', 'config', join(PROMETHEUS_DIR, 'prometheus.yml')], root));
  const testFiles = readdirSync(join(root, RULE_TESTS_DIR)).filter((f) => f.endsWith('.yml')).map((f) => join(RULE_TESTS_DIR, f));
  if (testFiles.length === 0) problems.push(`${RULE_TESTS_DIR}: no promtool rule tests`);
  else problems.push(...promtool(['test', 'rules', ...testFiles], root));
  problems.push(...promtool(['check', 'metrics'], root, await populatedExposition()));

  const served = await servedMetricNames();
  const catalogued = cataloguedMetricNames(root);
  const datasources = parse(readFileSync(join(root, DATASOURCE_FILE), 'utf8')) as { datasources?: { uid?: string; type?: string }[] };
  const uid = datasources.datasources?.find((d) => d.type === 'prometheus')?.uid;
  if (uid === undefined) problems.push(`${DATASOURCE_FILE}: no prometheus datasource with a uid`);
  problems.push(...validateDashboard(loadDashboard(root), served, catalogued, uid ?? ''));

  const coverage = { fires: new Set<string>(), quiet: new Set<string>() };
  for (const f of testFiles) {
    const c = ruleTestCoverage(readFileSync(join(root, f), 'utf8'));
    c.fires.forEach((a) => coverage.fires.add(a));
    c.quiet.forEach((a) => coverage.quiet.add(a));
  }
  problems.push(...validateRules(alertRules(root), served, catalogued, coverage));
  return problems;
}
