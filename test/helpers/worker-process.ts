import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freeLoopbackPort } from '../../src/util/ports.js';
import { waitFor } from './kafka.js';

const BIN = fileURLToPath(new URL('../../bin/qualm.js', import.meta.url));

/** `qualm worker` as a real child process, the way it runs in production. */
export class WorkerProcess {
  readonly output: string[] = [];
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly child: ChildProcess,
    readonly metricsPort: number,
  ) {
    child.stdout?.on('data', (d: Buffer) => this.output.push(d.toString('utf8')));
    child.stderr?.on('data', (d: Buffer) => this.output.push(d.toString('utf8')));
    this.exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
  }

  static async start(env: Record<string, string>): Promise<WorkerProcess> {
    const port = await freeLoopbackPort();
    // BENCH_NODE_ARGS passes node flags to the worker, e.g. '--cpu-prof --cpu-prof-dir=DIR' to profile it in a benchmark.
    const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    const child = spawn(process.execPath, [...nodeArgs, BIN, 'worker'], {
      env: { ...process.env, QUALM_LOG_LEVEL: 'info', ...env, QUALM_METRICS_HOST: '127.0.0.1', QUALM_METRICS_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const w = new WorkerProcess(child, port);
    try {
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`worker exited early with ${child.exitCode}:\n${w.log()}`);
        return (await w.get('/readyz').catch(() => 0)) === 200;
      }, 'worker /readyz', 90_000);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    return w;
  }

  async get(path: string): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${this.metricsPort}${path}`);
    await res.text();
    return res.status;
  }

  async metrics(): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`);
    return res.text();
  }

  log(): string {
    return this.output.join('');
  }

  /** Sends `signal` and resolves with the exit code (or the signal that ended it). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        rej(new Error(`worker did not exit within ${timeoutMs} ms after ${signal}:\n${this.log().slice(-3000)}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
