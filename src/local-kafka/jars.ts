import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { KAFKA_VERSION } from './version.js';

/** Walks up from this module until it finds the repo (the dir holding scripts/kafka.sh). */
export function findRepoRoot(start: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, 'scripts', 'kafka.sh')) && existsSync(join(dir, 'tools', 'kafka', 'pom.xml'))) {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`local-kafka: cannot find the repo root (scripts/kafka.sh) above ${start}`);
    }
    dir = parent;
  }
}

export function kafkaCacheDir(repoRoot: string, version: string = KAFKA_VERSION): string {
  return join(repoRoot, '.cache', 'kafka', version);
}

function libsIfComplete(repoRoot: string, version: string): string | undefined {
  const base = kafkaCacheDir(repoRoot, version);
  const libs = join(base, 'libs');
  return existsSync(join(base, 'COMPLETE')) && existsSync(join(libs, `kafka_2.13-${version}.jar`)) ? libs : undefined;
}

/**
 * Returns the directory holding the broker's jars (`.cache/kafka/<version>/libs`),
 * running `scripts/kafka.sh fetch` (Maven) first if they are not there yet.
 */
export async function ensureKafkaJars(repoRoot?: string): Promise<string> {
  return ensureKafkaJarsFor(KAFKA_VERSION, repoRoot);
}

/** Same as {@link ensureKafkaJars} for any version; other versions are for experiments only. */
export async function ensureKafkaJarsFor(version: string, repoRoot?: string): Promise<string> {
  const root = repoRoot ?? findRepoRoot();
  const ready = libsIfComplete(root, version);
  if (ready !== undefined) return ready;

  await new Promise<void>((resolvePromise, reject) => {
    execFile(
      'bash',
      [join(root, 'scripts', 'kafka.sh'), 'fetch'],
      {
        cwd: root,
        env: { ...process.env, QUALM_KAFKA_VERSION: version },
        maxBuffer: 16 * 1024 * 1024,
        timeout: 10 * 60 * 1000,
      },
      (err, stdout, stderr) => {
        if (err) {
          const out = `${stdout}\n${stderr}`.trim().split('\n').slice(-30).join('\n');
          reject(new Error(`local-kafka: fetching Kafka ${version} jars failed: ${err.message}\n${out}`));
        } else {
          resolvePromise();
        }
      },
    );
  });

  const libs = libsIfComplete(root, version);
  if (libs === undefined) {
    throw new Error(`local-kafka: scripts/kafka.sh fetch finished but ${kafkaCacheDir(root, version)} is incomplete`);
  }
  return libs;
}
