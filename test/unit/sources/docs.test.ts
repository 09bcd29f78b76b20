import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { HELP as BUILD_HELP } from '../../../src/cli/commands/build-index.js';
import { HELP as PRODUCE_HELP } from '../../../src/cli/commands/produce.js';
import { BUILTIN_SOURCES } from '../../../src/sources/index.js';

const doc = readFileSync('docs/sources.md', 'utf8');

test('every flag docs/sources.md names is one that build-index or produce takes', () => {
  const flags = new Set([...doc.matchAll(/(?<![\w-])--([a-z][a-z-]+)/g)].map((m) => m[1] as string));
  assert.ok(flags.has('references') && flags.has('sidecar') && flags.has('skip-invalid'));
  for (const f of flags) assert.ok(BUILD_HELP.includes(`--${f}`) || PRODUCE_HELP.includes(`--${f}`), `--${f} is in docs/sources.md but in neither help text`);
});

test('docs/sources.md lists exactly the built-in sources and their splits', () => {
  const rows = [...doc.matchAll(/^\| `builtin:([a-z-]+)(?:\[\/([a-z0-9\\|]+)\])?` \|/gm)].map((m) => [m[1] as string, (m[2] ?? '').replace(/\\/g, '')]);
  assert.deepEqual(
    rows,
    Object.entries(BUILTIN_SOURCES).map(([name, splits]) => [name, splits.length > 1 ? splits.join('|') : '']),
  );
});
