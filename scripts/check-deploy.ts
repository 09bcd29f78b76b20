// npm run check:deploy: every static check of deploy/, the Dockerfile and docker-compose.yml.
// Prometheus (promtool check config, test rules, check metrics), the Grafana dashboard and the
// alert rules against the metrics the worker exports, the compose file and Dockerfile (no Docker
// engine needed), and the Kubernetes manifests against their schemas and the worker's settings.
// Exits 1 when any check finds a problem; each problem names its file and key.
import { resolve } from 'node:path';
import { checkComposeAndDockerfile } from './deploy-checks/compose.js';
import { checkK8s } from './deploy-checks/k8s.js';
import { checkObservability } from './deploy-checks/observability.js';

const root = resolve(import.meta.dirname, '..');
const checks: [string, (root: string) => Promise<string[]>][] = [
  ['prometheus + grafana (deploy/prometheus, deploy/grafana)', checkObservability],
  ['docker compose + Dockerfile', checkComposeAndDockerfile],
  ['kubernetes (deploy/k8s)', checkK8s],
];

let failed = 0;
for (const [name, check] of checks) {
  const problems = await check(root).catch((err: unknown) => [`the check itself failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`]);
  if (problems.length === 0) {
    console.log(`ok    ${name}`);
  } else {
    failed++;
    console.log(`FAIL  ${name}`);
    for (const p of problems) console.log(`      - ${p.replaceAll('\n', '\n        ')}`);
  }
}
console.log(failed === 0 ? 'check:deploy: all checks pass' : `check:deploy: ${failed} of ${checks.length} checks failed`);
process.exitCode = failed === 0 ? 0 : 1;
