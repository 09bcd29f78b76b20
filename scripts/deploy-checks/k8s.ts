/**
 * Static checks of the Kubernetes manifests in deploy/k8s (and deploy/k8s/alternatives). There
 * is no cluster in CI, so these checks stand in for `kubectl apply --dry-run=server`: every
 * resource against its schema (kubernetes-models and its CRD packages for prometheus-operator
 * and KEDA), then the facts the resources must agree on, taken from the code where the code
 * owns them (setting names and defaults from src/config/options.ts):
 *
 * - kustomization.yaml lists exactly the manifests of its directory;
 * - the worker's ConfigMap holds only known settings, with valid values, and no credentials;
 * - the worker runs `worker`, exposes the metrics port named `metrics` at QUALM_METRICS_PORT,
 *   probes /healthz (startup, liveness) and /readyz (readiness) on it, and mounts a volume at
 *   QUALM_BUNDLE_DIR; Kafka credentials come only from optional Secret references;
 * - terminationGracePeriodSeconds outlasts QUALM_SHUTDOWN_TIMEOUT_MS with a margin;
 * - Service, PodMonitor/ServiceMonitor and PodDisruptionBudget select the worker's pods;
 * - the ScaledObject (or HPA) scales the Deployment on the consumer group and input topic the
 *   worker uses, with at most one autoscaler per Deployment in a directory;
 * - every container requests CPU and memory and has a memory limit; runs as non-root with a
 *   read-only root filesystem.
 *
 *   node --import tsx scripts/deploy-checks/k8s.ts [root]   # prints problems, exit 1 if any
 *
 * Every problem is one line naming the file, the resource (Kind/name) and the field.
 */
import { readFile, readdir } from 'node:fs/promises';
import { posix, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { parseAllDocuments } from 'yaml';
import { CONFIG_FILE_ENV, OPTIONS, SETTING_ENV_NAMES, loadConfig, type OptionSpec } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

/** The manifests' directory, relative to the repository root. */
export const K8S_DIR = 'deploy/k8s';
/** Name of the container port that serves /metrics, /healthz and /readyz. */
export const METRICS_PORT_NAME = 'metrics';
/**
 * How much longer than QUALM_SHUTDOWN_TIMEOUT_MS the grace period must be: after the drain the
 * worker still closes the encoder and the metrics server and flushes its logs.
 */
export const GRACE_MARGIN_MS = 5000;
/** Kubernetes' default terminationGracePeriodSeconds. */
const DEFAULT_GRACE_SECONDS = 30;
/** Settings that are credentials: only ever from a Secret. */
const CREDENTIAL_SETTINGS: ReadonlySet<string> = new Set([OPTIONS.kafkaSaslUsername.env, OPTIONS.kafkaSaslPassword.env]);
const CREDENTIAL_NAME = /PASSWORD|SECRET|TOKEN|CREDENTIAL/i;

/** One parsed YAML document and the file it came from (relative to the root, `/`-separated). */
export interface ManifestDoc {
  readonly file: string;
  readonly doc: unknown;
}

type Obj = Record<string, unknown>;

interface SchemaModel {
  validate(): void;
}
type SchemaModelClass = new (data: never) => SchemaModel;

/** Schema classes by `apiVersion kind`; any other resource is a problem. */
const MODELS: ReadonlyMap<string, SchemaModelClass> = new Map<string, SchemaModelClass>([
  ['v1 ConfigMap', ConfigMap],
  ['v1 Service', Service],
  ['apps/v1 Deployment', Deployment],
  ['policy/v1 PodDisruptionBudget', PodDisruptionBudget],
  ['autoscaling/v2 HorizontalPodAutoscaler', HorizontalPodAutoscaler],
  ['monitoring.coreos.com/v1 PodMonitor', PodMonitor],
  ['monitoring.coreos.com/v1 ServiceMonitor', ServiceMonitor],
  ['keda.sh/v1alpha1 ScaledObject', ScaledObject],
  ['keda.sh/v1alpha1 TriggerAuthentication', TriggerAuthentication],
]);
const KUSTOMIZATION = 'kustomize.config.k8s.io/v1beta1 Kustomization';
const KUSTOMIZATION_FILES: ReadonlySet<string> = new Set(['kustomization.yaml', 'kustomization.yml', 'Kustomization']);

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The value at `path` inside nested objects/arrays, or undefined. */
function at(v: unknown, ...path: (string | number)[]): unknown {
  let cur = v;
  for (const key of path) {
    if (typeof key === 'number') {
      if (!Array.isArray(cur)) return undefined;
      cur = cur[key] as unknown;
    } else {
      if (!isObj(cur)) return undefined;
      cur = cur[key];
    }
  }
  return cur;
}

const objs = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

function strMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObj(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

/** A Kubernetes quantity ("512Mi", "1", "250m", "1G") as a number, or undefined. */
export function parseQuantity(q: unknown): number | undefined {
  if (typeof q === 'number') return q;
  if (typeof q !== 'string') return undefined;
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$/.exec(q.trim());
  if (m?.[1] === undefined) return undefined;
  const scale: Record<string, number> = {
    Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
    m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  };
  return Number(m[1]) * (m[2] === undefined ? 1 : (scale[m[2]] ?? NaN));
}

/** Whether a LabelSelector (matchLabels and matchExpressions) selects `labels`. */
export function selects(selector: unknown, labels: Readonly<Record<string, string>>): boolean {
  if (!isObj(selector)) return false;
  for (const [k, v] of Object.entries(strMap(selector.matchLabels))) if (labels[k] !== v) return false;
  for (const e of objs(selector.matchExpressions)) {
    const key = str(e.key) ?? '';
    const values = strings(e.values);
    const value = labels[key];
    const ok =
      e.operator === 'In' ? value !== undefined && values.includes(value)
      : e.operator === 'NotIn' ? value === undefined || !values.includes(value)
      : e.operator === 'Exists' ? value !== undefined
      : e.operator === 'DoesNotExist' ? value === undefined
      : false;
    if (!ok) return false;
  }
  return true;
}

const isEmptySelector = (s: unknown): boolean =>
  Object.keys(strMap(at(s, 'matchLabels'))).length === 0 && objs(at(s, 'matchExpressions')).length === 0;

// ---------------------------------------------------------------------------------------------
// Resources

interface Resource {
  readonly file: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly body: Obj;
}

const where = (r: Resource): string => `${r.file}: ${r.kind}/${r.name}`;

/** One setting as the worker container sees it, and where it was set. */
interface Setting {
  readonly value: string;
  /** "file: Kind/name: field" of the place that sets it. */
  readonly origin: string;
  /** Set from a Secret: the value is not known here. */
  readonly fromSecret: boolean;
}

/** The worker container of a Deployment, with everything the cross-checks need. */
interface Worker {
  readonly deployment: Resource;
  readonly container: Obj;
  /** "file: Deployment/name: spec.template.spec.containers[name]". */
  readonly at: string;
  readonly podLabels: Readonly<Record<string, string>>;
  /** Settings from envFrom ConfigMaps, literal env values and Secret references. */
  readonly settings: ReadonlyMap<string, Setting>;
  /** The ConfigMaps its envFrom names that exist among the manifests. */
  readonly configMaps: readonly Resource[];
}

/** A setting's effective value: as set for the worker, else the option's default. */
function setting(w: Worker, spec: OptionSpec): string | undefined {
  return w.settings.get(spec.env)?.value ?? spec.default;
}

/** Where a setting comes from, for messages: the place that set it, or "default". */
function origin(w: Worker, spec: OptionSpec): string {
  return w.settings.get(spec.env)?.origin ?? `${w.at}: ${spec.env} (default ${spec.default ?? 'unset'})`;
}

function podSpec(d: Resource): Obj {
  const spec = at(d.body, 'spec', 'template', 'spec');
  return isObj(spec) ? spec : {};
}

function containerAt(d: Resource, list: 'containers' | 'initContainers', c: Obj, i: number): string {
  return `${where(d)}: spec.template.spec.${list}[${str(c.name) ?? i}]`;
}

// ---------------------------------------------------------------------------------------------
// Checks

function checkSchema(r: Resource): string[] {
  const Model = MODELS.get(`${r.apiVersion} ${r.kind}`);
  if (Model === undefined) {
    return [`${where(r)}: apiVersion/kind: unknown resource type ${r.apiVersion} ${r.kind} (no schema to check it against)`];
  }
  try {
    new Model(r.body as never).validate();
    return [];
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return [`${where(r)}: schema: ${message.replace(/\s*\n\s*/g, '; ').replace(/\bdata\//g, '')}`];
  }
}

function checkKustomization(k: Resource, docs: readonly ManifestDoc[]): string[] {
  const problems: string[] = [];
  const dir = posix.dirname(k.file);
  const here = `${k.file}: Kustomization`;
  if (!KUSTOMIZATION_FILES.has(posix.basename(k.file))) {
    problems.push(`${here}: file name: kustomize reads only kustomization.yaml, kustomization.yml or Kustomization`);
  }
  const siblings = new Set(docs.map((d) => d.file).filter((f) => posix.dirname(f) === dir && f !== k.file));
  const listed = new Map<string, string>();
  const resources = k.body.resources;
  if (!Array.isArray(resources)) {
    problems.push(`${here}: resources: expected a list of the manifests in ${dir}`);
    return problems;
  }
  for (const entry of resources) {
    if (typeof entry !== 'string') {
      problems.push(`${here}: resources: ${JSON.stringify(entry)} is not a file name`);
      continue;
    }
    const file = posix.normalize(posix.join(dir, entry));
    if (listed.has(file)) problems.push(`${here}: resources: ${entry} is listed twice`);
    listed.set(file, entry);
    if (!siblings.has(file)) problems.push(`${here}: resources: ${entry} is not a manifest in ${dir} (alternatives/ is applied by hand, not listed)`);
  }
  for (const f of siblings) if (!listed.has(f)) problems.push(`${here}: resources: ${posix.basename(f)} is missing (every manifest in ${dir} must be listed)`);
  return problems;
}

/** Settings of one container: envFrom ConfigMaps in order, then literal env values. */
function containerSettings(d: Resource, c: Obj, cAt: string, configMaps: readonly Resource[], problems: string[]): { settings: Map<string, Setting>; used: Resource[] } {
  const settings = new Map<string, Setting>();
  const used: Resource[] = [];
  for (const [i, from] of objs(c.envFrom).entries()) {
    const ref = at(from, 'configMapRef');
    if (!isObj(ref)) continue;
    const name = str(ref.name);
    const cm = configMaps.find((m) => m.name === name);
    if (cm === undefined) {
      if (ref.optional !== true) problems.push(`${cAt}.envFrom[${i}].configMapRef: ConfigMap ${name ?? '(no name)'} is not among the manifests in ${posix.dirname(d.file)}`);
      continue;
    }
    used.push(cm);
    const prefix = str(from.prefix) ?? '';
    for (const [key, value] of Object.entries(strMap(cm.body.data))) {
      settings.set(prefix + key, { value, origin: `${where(cm)}: data.${key}`, fromSecret: false });
    }
  }
  for (const e of objs(c.env)) {
    const name = str(e.name);
    if (name === undefined) continue;
    if (typeof e.value === 'string') settings.set(name, { value: e.value, origin: `${cAt}.env[${name}]`, fromSecret: false });
    else if (isObj(at(e, 'valueFrom', 'secretKeyRef'))) settings.set(name, { value: '', origin: `${cAt}.env[${name}]`, fromSecret: true });
  }
  return { settings, used };
}

function checkCredentials(c: Obj, cAt: string): string[] {
  const problems: string[] = [];
  for (const e of objs(c.env)) {
    const name = str(e.name) ?? '';
    const secret = at(e, 'valueFrom', 'secretKeyRef');
    const isCredential = CREDENTIAL_SETTINGS.has(name) || CREDENTIAL_NAME.test(name);
    if (isCredential && !isObj(secret)) problems.push(`${cAt}.env[${name}]: a credential must come from valueFrom.secretKeyRef, never a literal or a ConfigMap`);
    if (isObj(secret) && secret.optional !== true) {
      problems.push(`${cAt}.env[${name}].valueFrom.secretKeyRef.optional: must be true, so that the manifests apply and run without the Secret (Kafka without SASL)`);
    }
  }
  return problems;
}

function checkResources(c: Obj, cAt: string): string[] {
  const problems: string[] = [];
  const requests = at(c, 'resources', 'requests');
  const limits = at(c, 'resources', 'limits');
  if (at(requests, 'cpu') === undefined) problems.push(`${cAt}.resources.requests.cpu: missing (size it from measurements)`);
  if (at(requests, 'memory') === undefined) problems.push(`${cAt}.resources.requests.memory: missing (size it from measurements)`);
  if (at(limits, 'memory') === undefined) problems.push(`${cAt}.resources.limits.memory: missing (an unbounded Node process can starve its node)`);
  const req = parseQuantity(at(requests, 'memory'));
  const lim = parseQuantity(at(limits, 'memory'));
  if (req !== undefined && lim !== undefined && req > lim) problems.push(`${cAt}.resources.requests.memory: larger than limits.memory`);
  return problems;
}

function checkSecurity(pod: Obj, c: Obj, cAt: string): string[] {
  const problems: string[] = [];
  if (at(c, 'securityContext', 'readOnlyRootFilesystem') !== true) {
    problems.push(`${cAt}.securityContext.readOnlyRootFilesystem: must be true (mount an emptyDir where the process writes)`);
  }
  const nonRoot = at(c, 'securityContext', 'runAsNonRoot') ?? at(pod, 'securityContext', 'runAsNonRoot');
  if (nonRoot !== true) problems.push(`${cAt}.securityContext.runAsNonRoot: must be true (here or in the pod's securityContext)`);
  const volumes = new Set(objs(pod.volumes).map((v) => str(v.name)));
  for (const m of objs(c.volumeMounts)) {
    if (!volumes.has(str(m.name))) problems.push(`${cAt}.volumeMounts[${str(m.name) ?? '?'}]: no volume of that name in spec.template.spec.volumes`);
  }
  return problems;
}

/** A probe's HTTP GET must hit `path` on the metrics port (by name or number). */
function checkProbe(c: Obj, cAt: string, probe: 'startupProbe' | 'livenessProbe' | 'readinessProbe', path: string, port: number): string[] {
  const get = at(c, probe, 'httpGet');
  if (!isObj(get)) return [`${cAt}.${probe}: missing (expected httpGet ${path} on port ${METRICS_PORT_NAME})`];
  const problems: string[] = [];
  if (get.path !== path) problems.push(`${cAt}.${probe}.httpGet.path: ${JSON.stringify(get.path)}, expected ${path}`);
  if (get.port !== METRICS_PORT_NAME && get.port !== port) {
    problems.push(`${cAt}.${probe}.httpGet.port: ${JSON.stringify(get.port)}, expected ${METRICS_PORT_NAME} (${port})`);
  }
  return problems;
}

function checkWorker(w: Worker): string[] {
  const problems: string[] = [];
  const c = w.container;
  const args = [...strings(c.command), ...strings(c.args)];
  if (args[0] !== 'worker') {
    problems.push(`${w.at}.args: ${JSON.stringify(args)}, expected ["worker"] (the image's entrypoint is node bin/qualm.js)`);
  }

  // Settings: only known names, valid values (the worker's own validation), no credentials.
  const known = SETTING_ENV_NAMES;
  for (const cm of w.configMaps) {
    for (const key of Object.keys(strMap(cm.body.data))) {
      if (!known.has(key)) problems.push(`${where(cm)}: data.${key}: not a qualm setting (see src/config/options.ts)`);
      else if (CREDENTIAL_SETTINGS.has(key)) problems.push(`${where(cm)}: data.${key}: a credential in a ConfigMap; use a Secret (valueFrom.secretKeyRef)`);
    }
  }
  // Values from a Secret are unknown here: left out, and not blamed for rules that need them.
  const env: Record<string, string> = {};
  for (const [k, s] of w.settings) if (known.has(k) && k !== CONFIG_FILE_ENV && !s.fromSecret) env[k] = s.value;
  try {
    loadConfig(env, {});
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) {
      const s = w.settings.get(p.key);
      if (s?.fromSecret !== true) problems.push(`${s?.origin ?? `${w.at}: ${p.key}`}: ${p.message}`);
    }
  }

  // The metrics port: named, at QUALM_METRICS_PORT, reachable from the kubelet.
  const metricsPort = Number(setting(w, OPTIONS.metricsPort));
  const port = objs(c.ports).find((p) => p.name === METRICS_PORT_NAME);
  if (port !== undefined && port.containerPort !== metricsPort) {
    problems.push(`${w.at}.ports[${METRICS_PORT_NAME}].containerPort: ${JSON.stringify(port.containerPort)}, but QUALM_METRICS_PORT is ${metricsPort} (${origin(w, OPTIONS.metricsPort)})`);
  }
  const host = setting(w, OPTIONS.metricsHost) ?? '';
  if (['127.0.0.1', 'localhost', '::1'].includes(host)) {
    problems.push(`${origin(w, OPTIONS.metricsHost)}: ${host} is loopback; probes and Prometheus reach the pod IP (use 0.0.0.0)`);
  }
  problems.push(
    ...checkProbe(c, w.at, 'startupProbe', '/healthz', metricsPort),
    ...checkProbe(c, w.at, 'livenessProbe', '/healthz', metricsPort),
    ...checkProbe(c, w.at, 'readinessProbe', '/readyz', metricsPort),
  );

  // The drain must finish inside the grace period.
  const shutdownMs = Number(setting(w, OPTIONS.shutdownTimeoutMs));
  const grace = podSpec(w.deployment).terminationGracePeriodSeconds;
  const graceS = typeof grace === 'number' ? grace : DEFAULT_GRACE_SECONDS;
  if (Number.isFinite(shutdownMs) && graceS * 1000 < shutdownMs + GRACE_MARGIN_MS) {
    problems.push(
      `${where(w.deployment)}: spec.template.spec.terminationGracePeriodSeconds: ${graceS}${typeof grace === 'number' ? '' : ' (default)'} s, ` +
        `but QUALM_SHUTDOWN_TIMEOUT_MS is ${shutdownMs} ms (${origin(w, OPTIONS.shutdownTimeoutMs)}); needs at least ${Math.ceil((shutdownMs + GRACE_MARGIN_MS) / 1000)} s`,
    );
  }

  // The bundle directory must be on a mounted volume (the root filesystem is read-only).
  const bundleDir = setting(w, OPTIONS.bundleDir) ?? '';
  const mounts = objs(c.volumeMounts).map((m) => str(m.mountPath) ?? '');
  if (!posix.isAbsolute(bundleDir)) {
    problems.push(`${origin(w, OPTIONS.bundleDir)}: ${bundleDir} is relative to the image's working directory; use an absolute path on a mounted volume`);
  } else if (!mounts.some((m) => m !== '' && (bundleDir === m || bundleDir.startsWith(m.endsWith('/') ? m : `${m}/`)))) {
    problems.push(`${w.at}.volumeMounts: nothing is mounted at QUALM_BUNDLE_DIR ${bundleDir} (${origin(w, OPTIONS.bundleDir)})`);
  }
  return problems;
}

/** A selector (Service map or LabelSelector) must be non-empty and select the worker pods of some Deployment. */
function checkSelects(r: Resource, field: string, selector: unknown, workers: readonly Worker[], isMap = false): string[] {
  const labelSelector = isMap ? { matchLabels: selector } : selector;
  if (isEmptySelector(labelSelector)) return [`${where(r)}: ${field}: empty; it would select every pod in the namespace`];
  if (!workers.some((w) => selects(labelSelector, w.podLabels))) {
    const names = workers.map((w) => `${w.deployment.kind}/${w.deployment.name} ${JSON.stringify(w.podLabels)}`).join(', ');
    return [`${where(r)}: ${field}: ${JSON.stringify(labelSelector)} selects no worker pods (${names || 'no Deployment'})`];
  }
  return [];
}

function targetWorker(r: Resource, ref: unknown, field: string, workers: readonly Worker[], problems: string[]): Worker | undefined {
  const kind = str(at(ref, 'kind')) ?? 'Deployment';
  const name = str(at(ref, 'name'));
  const w = workers.find((x) => x.deployment.kind === kind && x.deployment.name === name);
  if (w === undefined) problems.push(`${where(r)}: ${field}: ${kind}/${name ?? '(no name)'} is not a Deployment with a qualm worker in these manifests`);
  return w;
}

function checkReplicaBounds(r: Resource, minField: string, maxField: string): string[] {
  const spec = at(r.body, 'spec');
  const min = at(spec, minField);
  const max = at(spec, maxField);
  if (typeof max !== 'number') return [`${where(r)}: spec.${maxField}: missing (at most the input topic's partition count)`];
  if (typeof min === 'number' && min > max) return [`${where(r)}: spec.${minField}: ${min} is above spec.${maxField} ${max}`];
  return [];
}

function sameList(a: string, b: string): boolean {
  const norm = (s: string): string => s.split(',').map((x) => x.trim()).filter((x) => x !== '').sort().join(',');
  return norm(a) === norm(b);
}

function checkScaledObject(so: Resource, workers: readonly Worker[]): string[] {
  const problems: string[] = [...checkReplicaBounds(so, 'minReplicaCount', 'maxReplicaCount')];
  const w = targetWorker(so, at(so.body, 'spec', 'scaleTargetRef'), 'spec.scaleTargetRef', workers, problems);
  const triggers = objs(at(so.body, 'spec', 'triggers')).map((t, i) => ({ t, i })).filter(({ t }) => t.type === 'kafka');
  if (triggers.length === 0) problems.push(`${where(so)}: spec.triggers: no kafka trigger (scale on the consumer group's lag)`);
  if (w === undefined) return problems;
  const expected: [string, OptionSpec][] = [
    ['consumerGroup', OPTIONS.groupId],
    ['topic', OPTIONS.inputTopic],
    ['bootstrapServers', OPTIONS.kafkaBrokers],
  ];
  for (const { t, i } of triggers) {
    const meta = strMap(t.metadata);
    const field = `spec.triggers[${i}].metadata`;
    for (const [key, spec] of expected) {
      const want = setting(w, spec) ?? '';
      const fromEnv = meta[`${key}FromEnv`];
      if (fromEnv !== undefined) {
        if (fromEnv !== spec.env) problems.push(`${where(so)}: ${field}.${key}FromEnv: ${fromEnv}, expected ${spec.env}`);
        continue;
      }
      const got = meta[key];
      const same = key === 'bootstrapServers' ? got !== undefined && sameList(got, want) : got === want;
      if (!same) problems.push(`${where(so)}: ${field}.${key}: ${JSON.stringify(got)}, but the worker's ${spec.env} is ${JSON.stringify(want)} (${origin(w, spec)})`);
    }
    const lag = meta.lagThreshold;
    if (lag === undefined || !/^[1-9][0-9]*$/.test(lag)) problems.push(`${where(so)}: ${field}.lagThreshold: ${JSON.stringify(lag)}, expected a positive integer (messages per replica)`);
  }
  return problems;
}

function checkHpa(hpa: Resource, workers: readonly Worker[]): string[] {
  const problems: string[] = [...checkReplicaBounds(hpa, 'minReplicas', 'maxReplicas')];
  const w = targetWorker(hpa, at(hpa.body, 'spec', 'scaleTargetRef'), 'spec.scaleTargetRef', workers, problems);
  const metrics = objs(at(hpa.body, 'spec', 'metrics'));
  if (metrics.length === 0) problems.push(`${where(hpa)}: spec.metrics: none (scale on qualm_consumer_lag_messages)`);
  if (w === undefined) return problems;
  const topic = setting(w, OPTIONS.inputTopic);
  for (const [i, m] of metrics.entries()) {
    const source = m.type === 'External' ? 'external' : m.type === 'Pods' ? 'pods' : undefined;
    if (source === undefined) continue;
    const got = strMap(at(m, source, 'metric', 'selector', 'matchLabels')).topic;
    if (got !== undefined && got !== topic) {
      problems.push(`${where(hpa)}: spec.metrics[${i}].${source}.metric.selector.matchLabels.topic: ${got}, but the worker's QUALM_INPUT_TOPIC is ${topic ?? '(unset)'} (${origin(w, OPTIONS.inputTopic)})`);
    }
  }
  return problems;
}

/**
 * Checks parsed manifests. `docs` are every document of every YAML file under deploy/k8s,
 * files named relative to the repository root. Returns one line per problem; empty means ok.
 */
export function validateK8s(docs: readonly ManifestDoc[]): string[] {
  const problems: string[] = [];
  const resources: Resource[] = [];
  for (const { file, doc } of docs) {
    if (!isObj(doc)) {
      problems.push(`${file}: ${doc === null || doc === undefined ? 'no Kubernetes resource in this document' : 'document is not a mapping'}`);
      continue;
    }
    const apiVersion = str(doc.apiVersion);
    const kind = str(doc.kind);
    if (apiVersion === undefined || kind === undefined) {
      problems.push(`${file}: apiVersion/kind: missing`);
      continue;
    }
    const isKustomization = `${apiVersion} ${kind}` === KUSTOMIZATION;
    const name = str(at(doc, 'metadata', 'name'));
    if (name === undefined && !isKustomization) {
      problems.push(`${file}: ${kind}: metadata.name: missing`);
      continue;
    }
    resources.push({ file, apiVersion, kind, name: name ?? '', body: doc });
  }

  const kustomizations = resources.filter((r) => `${r.apiVersion} ${r.kind}` === KUSTOMIZATION);
  const others = resources.filter((r) => `${r.apiVersion} ${r.kind}` !== KUSTOMIZATION);
  if (kustomizations.length === 0) problems.push(`${K8S_DIR}/kustomization.yaml: missing (kubectl apply -k needs it)`);
  for (const k of kustomizations) problems.push(...checkKustomization(k, docs));
  for (const r of others) problems.push(...checkSchema(r));

  const seen = new Map<string, Resource>();
  for (const r of others) {
    const key = `${posix.dirname(r.file)} ${r.kind}/${r.name}`;
    const first = seen.get(key);
    if (first !== undefined) problems.push(`${where(r)}: metadata.name: also defined in ${first.file}`);
    seen.set(key, r);
  }

  const ofKind = (kind: string): Resource[] => others.filter((r) => r.kind === kind);
  const configMaps = ofKind('ConfigMap');
  const usedConfigMaps = new Set<Resource>();
  const workers: Worker[] = [];
  for (const d of ofKind('Deployment')) {
    const pod = podSpec(d);
    const podLabels = strMap(at(d.body, 'spec', 'template', 'metadata', 'labels'));
    if (!selects(at(d.body, 'spec', 'selector'), podLabels)) {
      problems.push(`${where(d)}: spec.selector: does not select the pod template's labels ${JSON.stringify(podLabels)}`);
    }
    for (const list of ['initContainers', 'containers'] as const) {
      for (const [i, c] of objs(pod[list]).entries()) {
        const cAt = containerAt(d, list, c, i);
        const { settings, used } = containerSettings(d, c, cAt, configMaps, problems);
        for (const cm of used) usedConfigMaps.add(cm);
        problems.push(...checkResources(c, cAt), ...checkSecurity(pod, c, cAt), ...checkCredentials(c, cAt));
        if (list === 'containers' && objs(c.ports).some((p) => p.name === METRICS_PORT_NAME)) {
          workers.push({ deployment: d, container: c, at: cAt, podLabels, settings, configMaps: used });
        }
      }
    }
    for (const v of objs(pod.volumes)) {
      const cm = configMaps.find((m) => m.name === str(at(v, 'configMap', 'name')));
      if (cm !== undefined) usedConfigMaps.add(cm);
    }
    if (!workers.some((w) => w.deployment === d)) {
      problems.push(`${where(d)}: spec.template.spec.containers: no container has a port named ${METRICS_PORT_NAME} (the qualm worker)`);
    }
  }
  for (const w of workers) problems.push(...checkWorker(w));
  for (const cm of configMaps) {
    if (!usedConfigMaps.has(cm)) problems.push(`${where(cm)}: metadata.name: not used by any Deployment (envFrom or volume)`);
  }

  for (const s of ofKind('Service')) {
    problems.push(...checkSelects(s, 'spec.selector', at(s.body, 'spec', 'selector'), workers, true));
    const port = objs(at(s.body, 'spec', 'ports')).find((p) => p.name === METRICS_PORT_NAME);
    if (port === undefined) problems.push(`${where(s)}: spec.ports: no port named ${METRICS_PORT_NAME}`);
    else if (port.targetPort !== METRICS_PORT_NAME && !workers.some((w) => port.targetPort === Number(setting(w, OPTIONS.metricsPort)))) {
      problems.push(`${where(s)}: spec.ports[${METRICS_PORT_NAME}].targetPort: ${JSON.stringify(port.targetPort)}, expected ${METRICS_PORT_NAME}`);
    }
  }
  const checkEndpoints = (r: Resource, field: string): void => {
    const endpoints = objs(at(r.body, 'spec', field));
    const ep = endpoints.find((e) => e.port === METRICS_PORT_NAME);
    if (ep === undefined) problems.push(`${where(r)}: spec.${field}: no endpoint on port ${METRICS_PORT_NAME}`);
    else if ((ep.path ?? '/metrics') !== '/metrics') problems.push(`${where(r)}: spec.${field}[${METRICS_PORT_NAME}].path: ${JSON.stringify(ep.path)}, expected /metrics`);
  };
  for (const pm of ofKind('PodMonitor')) {
    problems.push(...checkSelects(pm, 'spec.selector', at(pm.body, 'spec', 'selector'), workers));
    checkEndpoints(pm, 'podMetricsEndpoints');
  }
  for (const sm of ofKind('ServiceMonitor')) {
    const selector = at(sm.body, 'spec', 'selector');
    const services = ofKind('Service').filter((s) => selects(selector, strMap(at(s.body, 'metadata', 'labels'))));
    if (isEmptySelector(selector) || services.length === 0) problems.push(`${where(sm)}: spec.selector: selects no Service of these manifests`);
    checkEndpoints(sm, 'endpoints');
  }
  for (const pdb of ofKind('PodDisruptionBudget')) {
    problems.push(...checkSelects(pdb, 'spec.selector', at(pdb.body, 'spec', 'selector'), workers));
  }

  // Autoscalers: each checked on its own; at most one per Deployment among what is applied together.
  const autoscalers = [...ofKind('ScaledObject'), ...ofKind('HorizontalPodAutoscaler')];
  for (const so of ofKind('ScaledObject')) problems.push(...checkScaledObject(so, workers));
  for (const hpa of ofKind('HorizontalPodAutoscaler')) problems.push(...checkHpa(hpa, workers));
  const byTarget = new Map<string, Resource>();
  for (const a of autoscalers) {
    const key = `${posix.dirname(a.file)} ${str(at(a.body, 'spec', 'scaleTargetRef', 'name')) ?? ''}`;
    const first = byTarget.get(key);
    if (first !== undefined) problems.push(`${where(a)}: spec.scaleTargetRef: ${where(first)} already scales this Deployment; apply one autoscaler, not both`);
    byTarget.set(key, a);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Entry point

/** Every .yaml/.yml file under `dir`, recursively, sorted. */
async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = resolve(dir, e.name);
    if (e.isDirectory()) out.push(...(await yamlFiles(path)));
    else if (e.isFile() && /\.ya?ml$/.test(e.name)) out.push(path);
  }
  return out.sort();
}

/**
 * Parses every YAML file under `root`/deploy/k8s, every document of each (an empty file gives
 * one `null` document, so that it is reported). `problems` holds read and YAML syntax errors.
 */
export async function loadK8sManifests(root: string): Promise<{ docs: ManifestDoc[]; problems: string[] }> {
  const problems: string[] = [];
  const docs: ManifestDoc[] = [];
  let files: string[];
  try {
    files = await yamlFiles(resolve(root, K8S_DIR));
  } catch (err) {
    return { docs, problems: [`${K8S_DIR}: cannot read: ${(err as Error).message}`] };
  }
  if (files.length === 0) problems.push(`${K8S_DIR}: no YAML manifests`);
  for (const path of files) {
    const file = relative(resolve(root), path).split(sep).join('/');
    let broken = false;
    const before = docs.length;
    for (const d of parseAllDocuments(await readFile(path, 'utf8'))) {
      if (d.errors.length > 0) {
        broken = true;
        for (const e of d.errors) problems.push(`${file}: YAML: ${e.message.split('\n')[0] ?? ''}`);
        continue;
      }
      const doc: unknown = d.toJS();
      if (doc !== null && doc !== undefined) docs.push({ file, doc });
    }
    if (docs.length === before && !broken) docs.push({ file, doc: null });
  }
  return { docs, problems };
}

/** Reads every YAML file under `root`/deploy/k8s and checks them: syntax, then validateK8s. */
export async function checkK8s(root: string): Promise<string[]> {
  const { docs, problems } = await loadK8sManifests(root);
  if (problems.length > 0) return problems;
  return validateK8s(docs);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const root = resolve(process.argv[2] ?? '.');
  const problems = await checkK8s(root);
  for (const p of problems) console.error(p);
  console.log(problems.length === 0 ? `${K8S_DIR}: ok` : `${problems.length} problem(s)`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}
