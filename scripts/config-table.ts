/**
 * Prints the README's configuration table from src/config/options.ts, the one source of
 * truth. test/unit/docs/readme.test.ts fails when the README's table differs.
 * Run: node --import tsx scripts/config-table.ts
 */
import { OPTIONS } from '../src/config/index.js';

export function configTable(): string {
  const rows = Object.values(OPTIONS).map((o) => {
    const def = o.default === undefined ? '(unset)' : `\`${o.default}\``;
    return `| \`${o.env}\` | ${def} | ${o.unit.replace(/\|/g, '\\|')} | ${o.description.replace(/\|/g, '\\|')} |`;
  });
  return ['| variable | default | unit | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(configTable());
