import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { COMMAND_NAMES, MAIN_HELP } from '../../../src/cli/main.js';
import {
  checkComposeAndDockerfile,
  dockerignoreMatcher,
  parseCompose,
  parseDuration,
  validateCompose,
  validateDockerfile,
} from '../../../scripts/deploy-checks/compose.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');
const composeText = readFileSync(resolve(ROOT, 'docker-compose.yml'), 'utf8');
const dockerfileText = readFileSync(resolve(ROOT, 'Dockerfile'), 'utf8');
const ignoreText = readFileSync(resolve(ROOT, '.dockerignore'), 'utf8');

type Obj = Record<string, unknown>;

function realDoc(): Obj {
  const { doc, problems } = parseCompose(composeText);
  assert.deepEqual(problems, []);
  return structuredClone(doc) as Obj;
}

function service(doc: Obj, name: string): Obj {
  const services = doc.services as Obj;
  const svc = services[name];
  assert.ok(typeof svc === 'object' && svc !== null, `services.${name} exists`);
  return svc as Obj;
}

/** Problems the mutation adds to those of the unmodified compose file. */
function composeProblemsAdded(mutate: (doc: Obj) => void): string[] {
  const before = new Set(validateCompose(realDoc(), ROOT));
  const doc = realDoc();
  mutate(doc);
  return validateCompose(doc, ROOT).filter((p) => !before.has(p));
}

/** Problems the edit adds to those of the unmodified Dockerfile. */
function dockerfileProblemsAdded(text: string, ignore: string = ignoreText): string[] {
  const before = new Set(validateDockerfile(dockerfileText, ROOT, ignoreText));
  return validateDockerfile(text, ROOT, ignore).filter((p) => !before.has(p));
}

function edit(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to);
  assert.notEqual(out, text, `the edit ${String(from)} applies`);
  return out;
}

test('the committed docker-compose.yml, Dockerfile and .dockerignore pass every check', async () => {
  assert.deepEqual(await checkComposeAndDockerfile(ROOT), []);
});

test('the committed files pass the checks that do not depend on deploy/ (mounted configs)', () => {
  const problems = validateCompose(realDoc(), ROOT).filter((p) => !/bind-mount source \.\/deploy\//.test(p));
  assert.deepEqual(problems, []);
  assert.deepEqual(validateDockerfile(dockerfileText, ROOT, ignoreText), []);
});

describe('docker-compose.yml checks', () => {
  test('an environment variable the config schema does not know', () => {
    const added = composeProblemsAdded((doc) => {
      (service(doc, 'worker').environment as Obj).QUALM_FOO = '1';
    });
    assert.deepEqual(added, ['docker-compose.yml: services.worker.environment.QUALM_FOO is not a qualm setting']);
  });

  test('an unknown variable on another qualm service (list form) is caught too', () => {
    const added = composeProblemsAdded((doc) => {
      service(doc, 'producer').environment = ['KAFKA_BROKERS=kafka:9092', 'QUALM_RATE=50'];
    });
    assert.deepEqual(added, ['docker-compose.yml: services.producer.environment.QUALM_RATE is not a qualm setting']);
  });

  test('a value the worker would refuse at start', () => {
    const added = composeProblemsAdded((doc) => {
      (service(doc, 'worker').environment as Obj).QUALM_LOG_LEVEL = 'loud';
    });
    assert.equal(added.length, 1, added.join('\n'));
    assert.match(added[0] ?? '', /^docker-compose\.yml: services\.worker\.environment\.QUALM_LOG_LEVEL: .*"loud"/);
  });

  test('a bind-mount source that does not exist', () => {
    const added = composeProblemsAdded((doc) => {
      service(doc, 'prometheus').volumes = ['./deploy/no-such-dir:/etc/prometheus:ro', 'prometheus-data:/prometheus'];
    });
    assert.deepEqual(added, ['docker-compose.yml: services.prometheus.volumes[0]: bind-mount source ./deploy/no-such-dir does not exist']);
  });

  test('a named volume that is not declared', () => {
    const added = composeProblemsAdded((doc) => {
      service(doc, 'worker').volumes = ['bundle-store:/var/lib/qualm/bundles'];
    });
    assert.deepEqual(added, ['docker-compose.yml: services.worker.volumes[0]: named volume bundle-store is not declared under the top-level volumes']);
  });

  test('depends_on naming a service that does not exist', () => {
    const added = composeProblemsAdded((doc) => {
      (service(doc, 'worker').depends_on as Obj)['kafka-setup'] = { condition: 'service_completed_successfully' };
    });
    assert.deepEqual(added, ['docker-compose.yml: services.worker.depends_on.kafka-setup is not a service']);
  });

  test('a key the Compose schema does not allow', () => {
    const added = composeProblemsAdded((doc) => {
      service(doc, 'worker').restart_policy = 'always';
    });
    assert.ok(
      added.includes('docker-compose.yml: services.worker does not match the Compose schema: must NOT have additional properties (restart_policy)'),
      added.join('\n'),
    );
  });

  test('a value of the wrong form for the Compose schema', () => {
    const added = composeProblemsAdded((doc) => {
      service(doc, 'worker').stop_grace_period = 'a while';
    });
    assert.ok(added.includes('docker-compose.yml: services.worker.stop_grace_period does not match the Compose schema: must match format "duration"'), added.join('\n'));
  });

  test('a command the CLI does not have', () => {
    const added = composeProblemsAdded((doc) => {
      service(doc, 'producer').command = ['generate', '--rate', '50'];
    });
    assert.equal(added.length, 1, added.join('\n'));
    assert.match(added[0] ?? '', /^docker-compose\.yml: services\.producer\.command: "generate" is not a qualm command \(worker, build-index, produce/);
  });

  test('a shell wrapper that never runs the CLI', () => {
    const added = composeProblemsAdded((doc) => {
      service(doc, 'bundle').command = ['echo building'];
    });
    assert.deepEqual(added, ['docker-compose.yml: services.bundle.command: the shell script never runs bin/qualm.js <command>']);
  });

  test('a shell wrapper that runs an unknown command', () => {
    const added = composeProblemsAdded((doc) => {
      service(doc, 'bundle').command = ['exec node bin/qualm.js build-indexes'];
    });
    assert.equal(added.length, 1, added.join('\n'));
    assert.match(added[0] ?? '', /^docker-compose\.yml: services\.bundle\.command: "build-indexes" is not a qualm command/);
  });

  test('no service named worker', () => {
    const added = composeProblemsAdded((doc) => {
      const services = doc.services as Obj;
      services['qualm-worker'] = services.worker;
      delete services.worker;
    });
    assert.ok(added.includes('docker-compose.yml: services.worker is missing (Prometheus scrapes worker:9464)'), added.join('\n'));
  });

  test('a worker that does not publish its metrics port', () => {
    const added = composeProblemsAdded((doc) => {
      service(doc, 'worker').ports = ['9465:9465'];
    });
    assert.deepEqual(added, ['docker-compose.yml: services.worker.ports does not expose the metrics port 9464']);
  });

  test('the metrics port follows QUALM_METRICS_PORT', () => {
    const added = composeProblemsAdded((doc) => {
      (service(doc, 'worker').environment as Obj).QUALM_METRICS_PORT = '9500';
    });
    assert.deepEqual(added, ['docker-compose.yml: services.worker.ports does not expose the metrics port 9500']);
  });

  test('a stop grace period no longer than the shutdown timeout', () => {
    assert.deepEqual(
      composeProblemsAdded((doc) => {
        service(doc, 'worker').stop_grace_period = '30s';
      }),
      ['docker-compose.yml: services.worker.stop_grace_period 30s must be longer than QUALM_SHUTDOWN_TIMEOUT_MS=30000 ms'],
    );
    assert.deepEqual(
      composeProblemsAdded((doc) => {
        (service(doc, 'worker').environment as Obj).QUALM_SHUTDOWN_TIMEOUT_MS = '60000';
      }),
      ['docker-compose.yml: services.worker.stop_grace_period 45s must be longer than QUALM_SHUTDOWN_TIMEOUT_MS=60000 ms'],
    );
    assert.deepEqual(
      composeProblemsAdded((doc) => {
        delete service(doc, 'worker').stop_grace_period;
      }),
      ["docker-compose.yml: services.worker.stop_grace_period is not set (Compose's default 10s is shorter than QUALM_SHUTDOWN_TIMEOUT_MS=30000 ms)"],
    );
  });

  test('a worker topic that kafka-init does not create', () => {
    const added = composeProblemsAdded((doc) => {
      (service(doc, 'worker').environment as Obj).QUALM_SCORES_TOPIC = 'qualm.scores.v2';
    });
    assert.deepEqual(added, ['docker-compose.yml: services.worker.environment.QUALM_SCORES_TOPIC: topic qualm.scores.v2 is not created by the kafka-topics.sh --create command']);
  });

  test('YAML that does not parse', () => {
    const { problems } = parseCompose('services:\n  worker: [unclosed\n');
    assert.equal(problems.length > 0, true);
    assert.match(problems[0] ?? '', /^docker-compose\.yml: YAML: /);
  });
});

describe('Dockerfile checks', () => {
  test('a final stage without USER runs as root', () => {
    const added = dockerfileProblemsAdded(edit(dockerfileText, /^USER node\n/m, ''));
    assert.equal(added.length, 1, added.join('\n'));
    assert.match(added[0] ?? '', /^Dockerfile:\d+: the final stage has no USER, so it runs as root$/);
  });

  test('a final stage with USER root', () => {
    const added = dockerfileProblemsAdded(edit(dockerfileText, /^USER node$/m, 'USER root'));
    assert.equal(added.length, 1, added.join('\n'));
    assert.match(added[0] ?? '', /^Dockerfile:\d+: the final stage runs as root \(USER root\)$/);
  });

  test('a final stage without HEALTHCHECK', () => {
    const added = dockerfileProblemsAdded(edit(dockerfileText, /^HEALTHCHECK [^\n]*\\\n[^\n]*\n/m, ''));
    assert.equal(added.length, 1, added.join('\n'));
    assert.match(added[0] ?? '', /^Dockerfile:\d+: the final stage has no HEALTHCHECK$/);
  });

  test('COPY of a path that does not exist', () => {
    const added = dockerfileProblemsAdded(edit(dockerfileText, /^COPY models \.\/models$/m, 'COPY models ./models\nCOPY weights ./weights'));
    assert.equal(added.length, 1, added.join('\n'));
    assert.match(added[0] ?? '', /^Dockerfile:\d+: COPY source weights does not exist in the build context$/);
  });

  test('COPY of a path that .dockerignore excludes', () => {
    const added = dockerfileProblemsAdded(dockerfileText, `${ignoreText}\nmodels\n`);
    assert.equal(added.length, 1, added.join('\n'));
    assert.match(added[0] ?? '', /^Dockerfile:\d+: COPY source models is excluded by \.dockerignore$/);
  });

  test('a FROM image that is not pinned', () => {
    const latest = dockerfileProblemsAdded(edit(dockerfileText, /^FROM node:\$\{NODE_VERSION\}-bookworm-slim/m, 'FROM node:latest'));
    assert.equal(latest.length, 1, latest.join('\n'));
    assert.match(latest[0] ?? '', /^Dockerfile:\d+: FROM node:latest is not pinned \(:latest\)$/);
    const untagged = dockerfileProblemsAdded(edit(dockerfileText, /^FROM node:\$\{NODE_VERSION\}-bookworm /m, 'FROM node '));
    assert.equal(untagged.length, 1, untagged.join('\n'));
    assert.match(untagged[0] ?? '', /^Dockerfile:\d+: FROM node is not pinned \(no tag\)$/);
    const unsetArg = dockerfileProblemsAdded(edit(dockerfileText, /^ARG NODE_VERSION=.*$/m, 'ARG NODE_VERSION'));
    assert.equal(unsetArg.length, 2, unsetArg.join('\n'));
    assert.match(unsetArg[0] ?? '', /^Dockerfile:\d+: FROM node:\$\{NODE_VERSION\}-bookworm names an image through an unset ARG$/);
  });

  test('build tools or development dependencies in the final stage', () => {
    const tools = dockerfileProblemsAdded(
      edit(dockerfileText, /^USER node$/m, 'RUN apt-get update && apt-get install -y --no-install-recommends g++ make\nUSER node'),
    );
    assert.equal(tools.length, 1, tools.join('\n'));
    assert.match(tools[0] ?? '', /^Dockerfile:\d+: the final stage installs build tools \(g\+\+, make\)$/);
    const dev = dockerfileProblemsAdded(edit(dockerfileText, /^USER node$/m, 'RUN npm ci\nUSER node'));
    assert.equal(dev.length, 1, dev.join('\n'));
    assert.match(dev[0] ?? '', /development dependencies/);
  });

  test('a final stage that does not expose the metrics port', () => {
    const added = dockerfileProblemsAdded(edit(dockerfileText, /^EXPOSE 9464\n/m, ''));
    assert.equal(added.length, 1, added.join('\n'));
    assert.match(added[0] ?? '', /does not EXPOSE the metrics port 9464$/);
  });
});

describe('helpers', () => {
  test('.dockerignore rules: directories, wildcards, exceptions, last match wins', () => {
    const ignored = dockerignoreMatcher('# comment\nnode_modules\n/dist/\n**/*.log\ndocs\n!docs/keep.md\ndata/*.tmp\n');
    assert.equal(ignored('node_modules'), true);
    assert.equal(ignored('node_modules/yaml/package.json'), true);
    assert.equal(ignored('dist/src/cli/main.js'), true);
    assert.equal(ignored('a/b/debug.log'), true);
    assert.equal(ignored('debug.log'), true);
    assert.equal(ignored('docs/metrics.md'), true);
    assert.equal(ignored('docs/keep.md'), false);
    assert.equal(ignored('data/x.tmp'), true);
    assert.equal(ignored('data/fashion-mnist/train-images-idx3-ubyte.gz'), false);
    assert.equal(ignored('src/node_modules.ts'), false);
    assert.equal(ignored('models'), false);
  });

  test('Compose durations', () => {
    assert.equal(parseDuration('45s'), 45_000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('45'), undefined);
    assert.equal(parseDuration('soon'), undefined);
  });

  test('the command list is the one the CLI dispatches on, and qualm --help lists every command', () => {
    const names = new Set(COMMAND_NAMES);
    for (const c of ['worker', 'build-index', 'produce']) assert.ok(names.has(c), c);
    assert.ok(!names.has('Run'));
    for (const c of COMMAND_NAMES) assert.match(MAIN_HELP, new RegExp(`^  ${c}\\s{2,}\\S`, 'm'), c);
  });
});
