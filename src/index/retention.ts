import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readPointer } from './loader.js';
import { MANIFEST_FILE } from './manifest.js';

/**
 * Deletes all but the newest `keep` bundle versions (by manifest created_at), never the one
 * CURRENT names. Directories without a readable manifest are left alone. Returns the removed
 * versions. Workers that still serve a removed version keep it in memory; they only need the
 * files to load it.
 */
export async function pruneBundles(bundleDir: string, keep: number): Promise<string[]> {
  if (!Number.isInteger(keep) || keep < 1) throw new RangeError('keep must be an integer >= 1');
  const current = await readPointer(bundleDir);
  const versions: { name: string; createdAt: number }[] = [];
  for (const entry of await readdir(bundleDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    try {
      const m = JSON.parse(await readFile(join(bundleDir, entry.name, MANIFEST_FILE), 'utf8')) as { created_at?: unknown };
      const t = typeof m.created_at === 'string' ? Date.parse(m.created_at) : NaN;
      if (Number.isFinite(t)) versions.push({ name: entry.name, createdAt: t });
    } catch {
      // not a bundle: leave it
    }
  }
  versions.sort((a, b) => b.createdAt - a.createdAt || b.name.localeCompare(a.name));
  const removed: string[] = [];
  for (const v of versions.slice(keep)) {
    if (v.name === current) continue;
    await rm(join(bundleDir, v.name), { recursive: true, force: true });
    removed.push(v.name);
  }
  return removed;
}
