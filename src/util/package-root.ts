import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/**
 * The directory of qualm's own package.json, found by walking up from this module: the same
 * answer whether the code runs from src/ (tsx) or from the compiled dist/src/, and wherever
 * the package is installed (the repo, /app in the image).
 */
export function packageRoot(): string {
  if (cached !== undefined) return cached;
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'qualm') {
      cached = dir;
      return dir;
    }
    if (dirname(dir) === dir) throw new Error(`cannot find qualm's package.json above ${start}`);
  }
}
