import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { HELP } from '../../../src/cli/commands/score.js';
import { CSV_RECORD_COLUMNS } from '../../../src/scorer/index.js';

const flagsIn = (text: string): Set<string> => new Set([...text.matchAll(/(?<![\w-])--([a-z][a-z-]*)/g)].map((m) => m[1] as string));

test("docs/scoring-cli.md and the README's row name exactly qualm score's flags, and the CSV columns", () => {
  const options = HELP.slice(HELP.indexOf('Options:'));
  const declared = flagsIn(options);
  assert.ok(declared.has('in') && declared.has('flagged-only'), [...declared].join(' '));
  // One other command's flag is named on purpose: the sources `build-index --references` reads.
  const doc = readFileSync('docs/scoring-cli.md', 'utf8').replaceAll('build-index --references', 'build-index').replace(/\s+/g, ' ');
  const inDoc = flagsIn(doc);
  for (const f of inDoc) assert.ok(declared.has(f), `docs/scoring-cli.md names --${f}, which qualm score does not take`);
  for (const f of declared) if (f !== 'help') assert.ok(inDoc.has(f), `docs/scoring-cli.md does not mention --${f}`);
  const row = readFileSync('README.md', 'utf8').split('\n').find((l) => l.startsWith('| `qualm score'));
  assert.ok(row, "README's CLI table has a qualm score row");
  for (const f of flagsIn(row)) assert.ok(declared.has(f), `README names --${f}`);
  assert.ok(doc.includes(CSV_RECORD_COLUMNS.join(', ')), 'docs/scoring-cli.md lists the CSV record columns in order');
});
