#!/usr/bin/env node
// The qualm CLI. Runs the compiled code (npm run build) when present, else the TypeScript
// sources through tsx (a development dependency).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/src/cli/main.js', import.meta.url);
let mod;
if (existsSync(compiled)) {
  mod = await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
const code = await mod.main(process.argv.slice(2));
process.exit(code);
