import { Worker } from 'node:worker_threads';

/**
 * The URL of a worker-thread entry module beside `callerUrl` (pass `import.meta.url`): the
 * `.ts` file when the caller runs from TypeScript sources (tsx), the `.js` file when compiled.
 */
export function threadUrl(callerUrl: string, baseName: string): URL {
  return new URL(callerUrl.endsWith('.ts') ? `./${baseName}.ts` : `./${baseName}.js`, callerUrl);
}

/**
 * Starts a worker thread on `url`. Compiled, the thread runs the .js file directly. From
 * TypeScript sources the thread needs the tsx loader, which a parent that registered tsx
 * through its API (bin/qualm.js) does not pass on: a small bootstrap registers it first.
 */
export function spawnThread(url: URL, workerData: unknown): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData });
  const api = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(boot, { eval: true, workerData });
}
