// A real Prometheus (Debian's `prometheus` binary) for integration tests.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from '../../src/util/ports.js';
import { waitFor } from './kafka.js';

/** One series of a query result: its labels and its (time, value) points. */
export interface Series {
  readonly metric: Record<string, string>;
  readonly values: readonly (readonly [number, string])[];
}

interface ApiResponse {
  status: 'success' | 'error';
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] }[] };
}

export class PrometheusProcess {
  private readonly output: string[] = [];
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    private readonly dir: string,
  ) {
    child.stdout?.on('data', (d: Buffer) => this.output.push(d.toString('utf8')));
    child.stderr?.on('data', (d: Buffer) => this.output.push(d.toString('utf8')));
    this.exited = new Promise((res) => child.once('exit', () => res()));
  }

  /** Starts Prometheus on a free loopback port with `config` (a prometheus.yml document) and waits until it is ready. */
  static async start(config: string): Promise<PrometheusProcess> {
    if (spawnSync('prometheus', ['--version']).error !== undefined) {
      throw new Error('the prometheus binary is not on PATH: install Debian package `prometheus` (.ci/run does)');
    }
    const dir = mkdtempSync(join(tmpdir(), 'qualm-prometheus-'));
    const configFile = join(dir, 'prometheus.yml');
    writeFileSync(configFile, config);
    const port = await freeLoopbackPort();
    const child = spawn(
      'prometheus',
      [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const p = new PrometheusProcess(child, `http://127.0.0.1:${port}`, dir);
    try {
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${p.log()}`);
        const res = await fetch(`${p.url}/-/ready`).catch(() => undefined);
        return res?.status === 200;
      }, 'prometheus /-/ready', 30_000);
    } catch (err) {
      await p.stop();
      throw err;
    }
    return p;
  }

  log(): string {
    return this.output.join('');
  }

  async api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const res = await fetch(`${this.url}/api/v1/${path}?${new URLSearchParams(params).toString()}`);
    const body = (await res.json()) as { status: string; error?: string; data: T };
    if (body.status !== 'success') throw new Error(`prometheus ${path} ${JSON.stringify(params)}: ${body.error ?? res.status}`);
    return body.data;
  }

  /** An instant query at `time` (seconds; default now); throws with Prometheus's message on a bad expression. */
  async query(expr: string, time?: number): Promise<Series[]> {
    const data = await this.api<NonNullable<ApiResponse['data']>>('query', { query: expr, ...(time === undefined ? {} : { time: String(time) }) });
    if (data.resultType !== 'vector') return [];
    return data.result.map((r) => ({ metric: r.metric, values: r.value === undefined ? [] : [r.value] }));
  }

  /** A range query over [start, end] seconds at `step` seconds. */
  async queryRange(expr: string, start: number, end: number, step: number): Promise<Series[]> {
    const data = await this.api<NonNullable<ApiResponse['data']>>('query_range', { query: expr, start: String(start), end: String(end), step: String(step) });
    return data.result.map((r) => ({ metric: r.metric, values: r.values ?? [] }));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
