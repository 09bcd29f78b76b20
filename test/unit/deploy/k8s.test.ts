import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkK8s, loadK8sManifests, parseQuantity, selects, validateK8s, type ManifestDoc } from '../../../scripts/deploy-checks/k8s.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

type Obj = Record<string, unknown>;

/** The object at `path` (keys, or array indexes), failing the test if it is not one. */
function dig(v: unknown, ...path: (string | number)[]): Obj {
  let cur = v;
  for (const key of path) {
    if (typeof key === 'number') {
      assert.ok(Array.isArray(cur), `expected an array before [${key}]`);
      cur = cur[key] as unknown;
    } else {
      assert.ok(typeof cur === 'object' && cur !== null && !Array.isArray(cur), `expected an object before .${key}`);
      cur = (cur as Obj)[key];
    }
  }
  assert.ok(typeof cur === 'object' && cur !== null && !Array.isArray(cur), `expected an object at ${path.join('.')}`);
  return cur as Obj;
}

function list(v: unknown, ...path: (string | number)[]): unknown[] {
  const parent = dig(v, ...path.slice(0, -1));
  const last = path.at(-1);
  const arr = parent[String(last)];
  assert.ok(Array.isArray(arr), `expected an array at ${path.join('.')}`);
  return arr;
}

let real: ManifestDoc[] = [];

before(async () => {
  const { docs, problems } = await loadK8sManifests(ROOT);
  assert.deepEqual(problems, []);
  real = docs;
});

interface Edit {
  docs: ManifestDoc[];
  /** The document of `kind` (in deploy/k8s unless `file` says otherwise). */
  get(kind: string, file?: string): Obj;
}

/** Problems of a deep copy of the real manifests after `change`. */
function problemsAfter(change: (e: Edit) => void): string[] {
  const docs: ManifestDoc[] = real.map((d) => ({ file: d.file, doc: structuredClone(d.doc) }));
  change({
    docs,
    get(kind, file) {
      const found = docs.find((d) => dig(d.doc).kind === kind && (file === undefined ? !d.file.includes('/alternatives/') : d.file === file));
      assert.ok(found !== undefined, `no ${kind}`);
      return dig(found.doc);
    },
  });
  return validateK8s(docs);
}

/** Asserts that exactly the problems matching `pattern` appear (at least one), naming the file. */
function assertProblem(problems: string[], pattern: RegExp): void {
  assert.ok(
    problems.some((p) => pattern.test(p)),
    `expected a problem matching ${pattern}, got:\n${problems.join('\n') || '(none)'}`,
  );
  for (const p of problems) assert.match(p, /^deploy\/k8s\/\S+\.ya?ml: /, `every problem names its file: ${p}`);
}

const worker = (e: Edit): Obj => dig(e.get('Deployment'), 'spec', 'template', 'spec', 'containers', 0);
const initContainer = (e: Edit): Obj => dig(e.get('Deployment'), 'spec', 'template', 'spec', 'initContainers', 0);
const configData = (e: Edit): Obj => dig(e.get('ConfigMap'), 'data');
const kafkaTrigger = (e: Edit): Obj => dig(e.get('ScaledObject'), 'spec', 'triggers', 0, 'metadata');

describe('the real manifests', () => {
  test('pass every check, from the files on disk', async () => {
    assert.deepEqual(await checkK8s(ROOT), []);
  });

  test('cover every resource the issue asks for, and the HPA alternative outside the kustomization', () => {
    const kinds = real.filter((d) => !d.file.includes('/alternatives/')).map((d) => `${String(dig(d.doc).kind)}`).sort();
    assert.deepEqual(kinds, ['ConfigMap', 'Deployment', 'Kustomization', 'PodDisruptionBudget', 'PodMonitor', 'ScaledObject', 'Service']);
    const alt = real.filter((d) => d.file.includes('/alternatives/'));
    assert.deepEqual(alt.map((d) => [d.file, dig(d.doc).kind]), [['deploy/k8s/alternatives/hpa.yaml', 'HorizontalPodAutoscaler']]);
  });

  test('the worker drains within its grace period and runs as uid 1000 on a read-only root', () => {
    const deployment = real.find((d) => dig(d.doc).kind === 'Deployment');
    const pod = dig(deployment?.doc, 'spec', 'template', 'spec');
    assert.equal(pod.terminationGracePeriodSeconds, 45);
    assert.equal(dig(pod, 'securityContext').runAsUser, 1000);
    assert.deepEqual(dig(pod, 'containers', 0).args, ['worker']);
  });
});

describe('schema validation', () => {
  test('a string containerPort is a schema violation', () => {
    const problems = problemsAfter((e) => {
      dig(worker(e), 'ports', 0).containerPort = '9464';
    });
    assertProblem(problems, /^deploy\/k8s\/deployment\.yaml: Deployment\/qualm: schema: .*containerPort must be integer/);
  });

  test('a PodMonitor and a ScaledObject are checked against their CRD schemas', () => {
    const problems = problemsAfter((e) => {
      dig(e.get('PodMonitor'), 'spec', 'podMetricsEndpoints', 0).interval = 15;
      kafkaTrigger(e).lagThreshold = 5000;
    });
    assertProblem(problems, /^deploy\/k8s\/podmonitor\.yaml: PodMonitor\/qualm: schema: .*interval/);
    assertProblem(problems, /^deploy\/k8s\/scaledobject\.yaml: ScaledObject\/qualm: schema: .*lagThreshold must be string/);
  });

  test('a ConfigMap value must be a string', () => {
    const problems = problemsAfter((e) => {
      configData(e).QUALM_METRICS_PORT = 9464;
    });
    assertProblem(problems, /^deploy\/k8s\/configmap\.yaml: ConfigMap\/qualm-config: schema: .*QUALM_METRICS_PORT must be string/);
  });

  test('an unknown kind or apiVersion is a problem', () => {
    const problems = problemsAfter((e) => {
      e.docs.push({ file: 'deploy/k8s/secret.yaml', doc: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'qualm-kafka' }, stringData: { 'sasl-password': 'x' } } });
      e.get('PodDisruptionBudget').apiVersion = 'policy/v1beta1';
    });
    assertProblem(problems, /^deploy\/k8s\/secret\.yaml: Secret\/qualm-kafka: apiVersion\/kind: unknown resource type v1 Secret/);
    assertProblem(problems, /^deploy\/k8s\/pdb\.yaml: PodDisruptionBudget\/qualm: apiVersion\/kind: unknown resource type policy\/v1beta1/);
  });

  test('a resource without a name, and an empty file, are problems', () => {
    const problems = problemsAfter((e) => {
      delete dig(e.get('Service'), 'metadata').name;
      e.docs.push({ file: 'deploy/k8s/empty.yaml', doc: null });
    });
    assertProblem(problems, /^deploy\/k8s\/service\.yaml: Service: metadata\.name: missing/);
    assertProblem(problems, /^deploy\/k8s\/empty\.yaml: no Kubernetes resource/);
  });
});

describe('kustomization', () => {
  test('a manifest missing from resources is a problem', () => {
    const problems = problemsAfter((e) => {
      const resources = list(e.get('Kustomization'), 'resources');
      resources.splice(resources.indexOf('pdb.yaml'), 1);
    });
    assertProblem(problems, /^deploy\/k8s\/kustomization\.yaml: Kustomization: resources: pdb\.yaml is missing/);
  });

  test('listing alternatives/, a file that does not exist, or a file twice is a problem', () => {
    const problems = problemsAfter((e) => {
      list(e.get('Kustomization'), 'resources').push('alternatives/hpa.yaml', 'gone.yaml', 'service.yaml');
    });
    assertProblem(problems, /kustomization\.yaml: Kustomization: resources: alternatives\/hpa\.yaml is not a manifest in deploy\/k8s/);
    assertProblem(problems, /kustomization\.yaml: Kustomization: resources: gone\.yaml is not a manifest/);
    assertProblem(problems, /kustomization\.yaml: Kustomization: resources: service\.yaml is listed twice/);
  });

  test('no kustomization at all is a problem', () => {
    const problems = problemsAfter((e) => {
      e.docs.splice(e.docs.findIndex((d) => dig(d.doc).kind === 'Kustomization'), 1);
    });
    assertProblem(problems, /^deploy\/k8s\/kustomization\.yaml: missing/);
  });
});

describe('ConfigMap settings', () => {
  test('an unknown key is a problem', () => {
    const problems = problemsAfter((e) => {
      configData(e).QUALM_BATCH_SIZE = '64';
    });
    assertProblem(problems, /^deploy\/k8s\/configmap\.yaml: ConfigMap\/qualm-config: data\.QUALM_BATCH_SIZE: not a qualm setting/);
  });

  test('an invalid value is reported as the worker would, naming the key', () => {
    const problems = problemsAfter((e) => {
      configData(e).QUALM_SHUTDOWN_TIMEOUT_MS = 'soon';
    });
    assertProblem(problems, /^deploy\/k8s\/configmap\.yaml: ConfigMap\/qualm-config: data\.QUALM_SHUTDOWN_TIMEOUT_MS: expected an integer/);
  });

  test("the worker's rules across settings apply too", () => {
    const problems = problemsAfter((e) => {
      configData(e).QUALM_REVIEW_TOPIC = 'qualm.samples';
    });
    assertProblem(problems, /^deploy\/k8s\/configmap\.yaml: ConfigMap\/qualm-config: data\.QUALM_REVIEW_TOPIC: must differ from QUALM_INPUT_TOPIC/);
  });

  test('a SASL mechanism in the ConfigMap with credentials from the Secret is fine', () => {
    assert.deepEqual(
      problemsAfter((e) => {
        configData(e).KAFKA_SASL_MECHANISM = 'scram-sha-512';
      }),
      [],
    );
  });

  test('credentials in the ConfigMap or as literal env values are problems', () => {
    const problems = problemsAfter((e) => {
      configData(e).KAFKA_SASL_PASSWORD = 'hunter2';
      const env = list(worker(e), 'env');
      env[2] = { name: 'KAFKA_SASL_PASSWORD', value: 'hunter2' };
      dig(env[1], 'valueFrom', 'secretKeyRef').optional = false;
    });
    assertProblem(problems, /configmap\.yaml: ConfigMap\/qualm-config: data\.KAFKA_SASL_PASSWORD: a credential in a ConfigMap/);
    assertProblem(problems, /deployment\.yaml: Deployment\/qualm: spec\.template\.spec\.containers\[worker\]\.env\[KAFKA_SASL_PASSWORD\]: a credential must come from valueFrom\.secretKeyRef/);
    assertProblem(problems, /containers\[worker\]\.env\[KAFKA_SASL_USERNAME\]\.valueFrom\.secretKeyRef\.optional: must be true/);
  });

  test('a ConfigMap no Deployment uses, or a missing one that envFrom names, is a problem', () => {
    const problems = problemsAfter((e) => {
      dig(e.get('ConfigMap'), 'metadata').name = 'renamed';
    });
    assertProblem(problems, /configmap\.yaml: ConfigMap\/renamed: metadata\.name: not used by any Deployment/);
    assertProblem(problems, /deployment\.yaml: Deployment\/qualm: spec\.template\.spec\.containers\[worker\]\.envFrom\[0\]\.configMapRef: ConfigMap qualm-config is not among the manifests/);
  });
});

describe('worker container', () => {
  test('a liveness probe on /readyz or a readiness probe on /healthz is a problem', () => {
    const problems = problemsAfter((e) => {
      dig(worker(e), 'livenessProbe', 'httpGet').path = '/readyz';
      dig(worker(e), 'readinessProbe', 'httpGet').path = '/healthz';
    });
    assertProblem(problems, /deployment\.yaml: Deployment\/qualm: spec\.template\.spec\.containers\[worker\]\.livenessProbe\.httpGet\.path: "\/readyz", expected \/healthz/);
    assertProblem(problems, /containers\[worker\]\.readinessProbe\.httpGet\.path: "\/healthz", expected \/readyz/);
  });

  test('a probe on another port, or no startup probe, is a problem', () => {
    const problems = problemsAfter((e) => {
      dig(worker(e), 'readinessProbe', 'httpGet').port = 8080;
      delete worker(e).startupProbe;
    });
    assertProblem(problems, /containers\[worker\]\.readinessProbe\.httpGet\.port: 8080, expected metrics \(9464\)/);
    assertProblem(problems, /containers\[worker\]\.startupProbe: missing/);
  });

  test('the metrics port must be QUALM_METRICS_PORT and bound beyond loopback', () => {
    const problems = problemsAfter((e) => {
      configData(e).QUALM_METRICS_PORT = '9000';
      configData(e).QUALM_METRICS_HOST = '127.0.0.1';
    });
    assertProblem(problems, /containers\[worker\]\.ports\[metrics\]\.containerPort: 9464, but QUALM_METRICS_PORT is 9000 \(deploy\/k8s\/configmap\.yaml: ConfigMap\/qualm-config: data\.QUALM_METRICS_PORT\)/);
    assertProblem(problems, /configmap\.yaml: ConfigMap\/qualm-config: data\.QUALM_METRICS_HOST: 127\.0\.0\.1 is loopback/);
  });

  test('a Deployment without a metrics port has no worker', () => {
    const problems = problemsAfter((e) => {
      dig(worker(e), 'ports', 0).name = 'http';
    });
    assertProblem(problems, /deployment\.yaml: Deployment\/qualm: spec\.template\.spec\.containers: no container has a port named metrics/);
  });

  test('the worker must run the worker command', () => {
    const problems = problemsAfter((e) => {
      worker(e).args = ['score'];
    });
    assertProblem(problems, /containers\[worker\]\.args: \["score"\], expected \["worker"\]/);
  });

  test('QUALM_BUNDLE_DIR must be absolute and mounted', () => {
    const unmounted = problemsAfter((e) => {
      configData(e).QUALM_BUNDLE_DIR = '/data/bundles';
    });
    assertProblem(unmounted, /containers\[worker\]\.volumeMounts: nothing is mounted at QUALM_BUNDLE_DIR \/data\/bundles/);
    const relative = problemsAfter((e) => {
      delete configData(e).QUALM_BUNDLE_DIR;
    });
    assertProblem(relative, /containers\[worker\]: QUALM_BUNDLE_DIR \(default var\/bundles\): var\/bundles is relative/);
  });
});

describe('graceful termination', () => {
  test('a grace period no longer than the drain is a problem', () => {
    const problems = problemsAfter((e) => {
      dig(e.get('Deployment'), 'spec', 'template', 'spec').terminationGracePeriodSeconds = 30;
    });
    assertProblem(problems, /deployment\.yaml: Deployment\/qualm: spec\.template\.spec\.terminationGracePeriodSeconds: 30 s, but QUALM_SHUTDOWN_TIMEOUT_MS is 30000 ms .*needs at least 35 s/);
  });

  test('a longer drain in the ConfigMap needs a longer grace period', () => {
    const problems = problemsAfter((e) => {
      configData(e).QUALM_SHUTDOWN_TIMEOUT_MS = '60000';
    });
    assertProblem(problems, /terminationGracePeriodSeconds: 45 s, but QUALM_SHUTDOWN_TIMEOUT_MS is 60000 ms \(deploy\/k8s\/configmap\.yaml: ConfigMap\/qualm-config: data\.QUALM_SHUTDOWN_TIMEOUT_MS\)/);
  });

  test('without a grace period, Kubernetes default of 30 s is checked against the default drain', () => {
    const problems = problemsAfter((e) => {
      delete dig(e.get('Deployment'), 'spec', 'template', 'spec').terminationGracePeriodSeconds;
      delete configData(e).QUALM_SHUTDOWN_TIMEOUT_MS;
    });
    assertProblem(problems, /terminationGracePeriodSeconds: 30 \(default\) s, but QUALM_SHUTDOWN_TIMEOUT_MS is 30000 ms .*\(default 30000\)/);
  });
});

describe('selectors', () => {
  test('a Service, PodMonitor or PDB that selects other pods is a problem', () => {
    const problems = problemsAfter((e) => {
      dig(e.get('Service'), 'spec', 'selector')['app.kubernetes.io/component'] = 'api';
      dig(e.get('PodMonitor'), 'spec', 'selector', 'matchLabels')['app.kubernetes.io/name'] = 'other';
      dig(e.get('PodDisruptionBudget'), 'spec', 'selector').matchExpressions = [{ key: 'tier', operator: 'Exists' }];
    });
    assertProblem(problems, /^deploy\/k8s\/service\.yaml: Service\/qualm: spec\.selector: .* selects no worker pods/);
    assertProblem(problems, /^deploy\/k8s\/podmonitor\.yaml: PodMonitor\/qualm: spec\.selector: .* selects no worker pods/);
    assertProblem(problems, /^deploy\/k8s\/pdb\.yaml: PodDisruptionBudget\/qualm: spec\.selector: .* selects no worker pods/);
  });

  test('an empty PDB selector is a problem', () => {
    const problems = problemsAfter((e) => {
      dig(e.get('PodDisruptionBudget'), 'spec').selector = {};
    });
    assertProblem(problems, /pdb\.yaml: PodDisruptionBudget\/qualm: spec\.selector: empty/);
  });

  test("the Deployment's own selector must match its pod template", () => {
    const problems = problemsAfter((e) => {
      dig(e.get('Deployment'), 'spec', 'template', 'metadata', 'labels')['app.kubernetes.io/component'] = 'scorer';
    });
    assertProblem(problems, /deployment\.yaml: Deployment\/qualm: spec\.selector: does not select the pod template's labels/);
  });

  test('scrape endpoints must be the metrics port at /metrics', () => {
    const problems = problemsAfter((e) => {
      dig(e.get('PodMonitor'), 'spec', 'podMetricsEndpoints', 0).path = '/stats';
      dig(e.get('Service'), 'spec', 'ports', 0).targetPort = 8080;
    });
    assertProblem(problems, /podmonitor\.yaml: PodMonitor\/qualm: spec\.podMetricsEndpoints\[metrics\]\.path: "\/stats", expected \/metrics/);
    assertProblem(problems, /service\.yaml: Service\/qualm: spec\.ports\[metrics\]\.targetPort: 8080, expected metrics/);
  });

  test('a ServiceMonitor must select the Service', () => {
    const serviceMonitor = (labels: Obj): ManifestDoc => ({
      file: 'deploy/k8s/servicemonitor.yaml',
      doc: {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'ServiceMonitor',
        metadata: { name: 'qualm' },
        spec: { selector: { matchLabels: labels }, endpoints: [{ port: 'metrics', path: '/metrics' }] },
      },
    });
    const withKustomization = (e: Edit, labels: Obj): void => {
      e.docs.push(serviceMonitor(labels));
      list(e.get('Kustomization'), 'resources').push('servicemonitor.yaml');
    };
    assert.deepEqual(problemsAfter((e) => withKustomization(e, { 'app.kubernetes.io/name': 'qualm' })), []);
    const problems = problemsAfter((e) => withKustomization(e, { 'app.kubernetes.io/name': 'nope' }));
    assertProblem(problems, /servicemonitor\.yaml: ServiceMonitor\/qualm: spec\.selector: selects no Service/);
  });
});

describe('autoscaling', () => {
  test('a ScaledObject on another consumer group or topic is a problem', () => {
    const problems = problemsAfter((e) => {
      kafkaTrigger(e).consumerGroup = 'qualm';
      kafkaTrigger(e).topic = 'samples';
    });
    assertProblem(problems, /^deploy\/k8s\/scaledobject\.yaml: ScaledObject\/qualm: spec\.triggers\[0\]\.metadata\.consumerGroup: "qualm", but the worker's QUALM_GROUP_ID is "qualm-worker"/);
    assertProblem(problems, /scaledobject\.yaml: ScaledObject\/qualm: spec\.triggers\[0\]\.metadata\.topic: "samples", but the worker's QUALM_INPUT_TOPIC is "qualm\.samples"/);
  });

  test('renaming the group in the ConfigMap alone is caught', () => {
    const problems = problemsAfter((e) => {
      configData(e).QUALM_GROUP_ID = 'qualm-v2';
    });
    assertProblem(problems, /scaledobject\.yaml: .*consumerGroup: "qualm-worker", but the worker's QUALM_GROUP_ID is "qualm-v2" \(deploy\/k8s\/configmap\.yaml/);
  });

  test('a ConfigMap that leaves the group to its default still agrees with the trigger', () => {
    assert.deepEqual(
      problemsAfter((e) => {
        delete configData(e).QUALM_GROUP_ID;
      }),
      [],
    );
  });

  test('the trigger may read the group from the worker environment instead', () => {
    assert.deepEqual(
      problemsAfter((e) => {
        delete kafkaTrigger(e).consumerGroup;
        kafkaTrigger(e).consumerGroupFromEnv = 'QUALM_GROUP_ID';
      }),
      [],
    );
    const problems = problemsAfter((e) => {
      delete kafkaTrigger(e).consumerGroup;
      kafkaTrigger(e).consumerGroupFromEnv = 'GROUP';
    });
    assertProblem(problems, /scaledobject\.yaml: .*consumerGroupFromEnv: GROUP, expected QUALM_GROUP_ID/);
  });

  test('other brokers, a wrong target, or a bad lag threshold are problems', () => {
    const problems = problemsAfter((e) => {
      kafkaTrigger(e).bootstrapServers = 'localhost:9092';
      kafkaTrigger(e).lagThreshold = '0';
      dig(e.get('ScaledObject'), 'spec', 'scaleTargetRef').name = 'qualm-worker';
    });
    assertProblem(problems, /scaledobject\.yaml: ScaledObject\/qualm: spec\.scaleTargetRef: Deployment\/qualm-worker is not a Deployment/);
    const noTarget = problemsAfter((e) => {
      kafkaTrigger(e).bootstrapServers = 'localhost:9092';
      kafkaTrigger(e).lagThreshold = '0';
    });
    assertProblem(noTarget, /metadata\.bootstrapServers: "localhost:9092", but the worker's KAFKA_BROKERS is/);
    assertProblem(noTarget, /metadata\.lagThreshold: "0", expected a positive integer/);
  });

  test('replica bounds must be set and ordered', () => {
    const problems = problemsAfter((e) => {
      dig(e.get('ScaledObject'), 'spec').minReplicaCount = 8;
      dig(e.get('HorizontalPodAutoscaler', 'deploy/k8s/alternatives/hpa.yaml'), 'spec').minReplicas = 9;
    });
    assertProblem(problems, /scaledobject\.yaml: ScaledObject\/qualm: spec\.minReplicaCount: 8 is above spec\.maxReplicaCount 6/);
    assertProblem(problems, /alternatives\/hpa\.yaml: HorizontalPodAutoscaler\/qualm: spec\.minReplicas: 9 is above spec\.maxReplicas 6/);
  });

  test('the HPA alternative must watch the input topic', () => {
    const problems = problemsAfter((e) => {
      dig(e.get('HorizontalPodAutoscaler', 'deploy/k8s/alternatives/hpa.yaml'), 'spec', 'metrics', 0, 'external', 'metric', 'selector', 'matchLabels').topic = 'other';
    });
    assertProblem(problems, /alternatives\/hpa\.yaml: HorizontalPodAutoscaler\/qualm: spec\.metrics\[0\]\.external\.metric\.selector\.matchLabels\.topic: other, but the worker's QUALM_INPUT_TOPIC is qualm\.samples/);
  });

  test('the HPA applied next to the ScaledObject is a conflict', () => {
    const problems = problemsAfter((e) => {
      const hpa = e.docs.find((d) => d.file === 'deploy/k8s/alternatives/hpa.yaml');
      assert.ok(hpa !== undefined);
      e.docs.push({ file: 'deploy/k8s/hpa.yaml', doc: hpa.doc });
      list(e.get('Kustomization'), 'resources').push('hpa.yaml');
    });
    assertProblem(problems, /^deploy\/k8s\/(hpa|scaledobject)\.yaml: .*spec\.scaleTargetRef: .* already scales this Deployment/);
  });
});

describe('resources and security', () => {
  test('a container without CPU or memory requests is a problem', () => {
    const problems = problemsAfter((e) => {
      delete dig(worker(e), 'resources', 'requests').cpu;
      delete dig(initContainer(e), 'resources', 'requests').memory;
    });
    assertProblem(problems, /deployment\.yaml: Deployment\/qualm: spec\.template\.spec\.containers\[worker\]\.resources\.requests\.cpu: missing/);
    assertProblem(problems, /deployment\.yaml: Deployment\/qualm: spec\.template\.spec\.initContainers\[build-index\]\.resources\.requests\.memory: missing/);
  });

  test('a container without a memory limit, or a request above it, is a problem', () => {
    const problems = problemsAfter((e) => {
      delete dig(worker(e), 'resources').limits;
      dig(initContainer(e), 'resources', 'requests').memory = '2Gi';
    });
    assertProblem(problems, /containers\[worker\]\.resources\.limits\.memory: missing/);
    assertProblem(problems, /initContainers\[build-index\]\.resources\.requests\.memory: larger than limits\.memory/);
  });

  test('a writable root filesystem, root, or a mount of a missing volume is a problem', () => {
    const problems = problemsAfter((e) => {
      dig(worker(e), 'securityContext').readOnlyRootFilesystem = false;
      delete dig(e.get('Deployment'), 'spec', 'template', 'spec', 'securityContext').runAsNonRoot;
      list(e.get('Deployment'), 'spec', 'template', 'spec', 'volumes').pop();
    });
    assertProblem(problems, /containers\[worker\]\.securityContext\.readOnlyRootFilesystem: must be true/);
    assertProblem(problems, /initContainers\[build-index\]\.securityContext\.runAsNonRoot: must be true/);
    assertProblem(problems, /containers\[worker\]\.volumeMounts\[tmp\]: no volume of that name/);
  });
});

describe('reading the files', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const copy = (): string => {
    const root = mkdtempSync(join(tmpdir(), 'qualm-k8s-'));
    dirs.push(root);
    cpSync(join(ROOT, 'deploy', 'k8s'), join(root, 'deploy', 'k8s'), { recursive: true });
    return root;
  };

  test('every document of a multi-document file is checked', async () => {
    const root = copy();
    writeFileSync(join(root, 'deploy/k8s/service.yaml'), '---\napiVersion: v1\nkind: Service\nmetadata: {name: qualm}\nspec: {selector: {app.kubernetes.io/name: qualm, app.kubernetes.io/component: worker}, ports: [{name: metrics, port: 9464, targetPort: metrics}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: extra}\nspec: {selector: {app: x}, ports: [{name: metrics, port: "http"}]}\n');
    const problems = await checkK8s(root);
    assertProblem(problems, /^deploy\/k8s\/service\.yaml: Service\/extra: schema: .*port must be integer/);
    assertProblem(problems, /^deploy\/k8s\/service\.yaml: Service\/extra: spec\.selector: .* selects no worker pods/);
    assert.ok(!problems.some((p) => p.includes('Service/qualm')), problems.join('\n'));
  });

  test('a YAML syntax error names the file', async () => {
    const root = copy();
    writeFileSync(join(root, 'deploy/k8s/pdb.yaml'), 'apiVersion: policy/v1\nkind: [PodDisruptionBudget\n');
    const problems = await checkK8s(root);
    assertProblem(problems, /^deploy\/k8s\/pdb\.yaml: YAML: /);
  });

  test('a YAML file added to deploy/k8s must be listed in the kustomization', async () => {
    const root = copy();
    writeFileSync(join(root, 'deploy/k8s/notes.yml'), '# nothing\n');
    const problems = await checkK8s(root);
    assertProblem(problems, /^deploy\/k8s\/notes\.yml: no Kubernetes resource/);
    assertProblem(problems, /kustomization\.yaml: Kustomization: resources: notes\.yml is missing/);
  });
});

describe('helpers', () => {
  test('parseQuantity reads binary and decimal suffixes and millis', () => {
    assert.equal(parseQuantity('512Mi'), 512 * 2 ** 20);
    assert.equal(parseQuantity('1Gi'), 2 ** 30);
    assert.equal(parseQuantity('1G'), 1e9);
    assert.equal(parseQuantity('250m'), 0.25);
    assert.equal(parseQuantity('2'), 2);
    assert.equal(parseQuantity('lots'), undefined);
  });

  test('selects applies matchLabels and every matchExpressions operator', () => {
    const labels = { app: 'qualm', tier: 'worker' };
    assert.ok(selects({ matchLabels: { app: 'qualm' } }, labels));
    assert.ok(!selects({ matchLabels: { app: 'other' } }, labels));
    assert.ok(selects({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['worker', 'x'] }] }, labels));
    assert.ok(!selects({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['worker'] }] }, labels));
    assert.ok(selects({ matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, labels));
    assert.ok(!selects({ matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, labels));
    assert.ok(!selects({ matchExpressions: [{ key: 'tier', operator: 'Bogus' }] }, labels));
    assert.ok(!selects(undefined, labels));
  });
});
