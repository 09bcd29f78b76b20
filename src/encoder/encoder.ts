import { resolve } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { modelManifestPath } from '../config/index.js';
import { ErrorCodes, QualmError } from '../errors.js';
import { sha256File } from '../util/sha256.js';
import { spawnThread, threadUrl } from '../util/spawn-thread.js';
import { readModelManifest, type ModelManifest } from './model-manifest.js';
import type { EmbedRequest, InitMessage, ThreadReply } from './protocol.js';

export interface EncoderOptions {
  /** onnxruntime intra-op threads inside the inference thread. */
  intraOpThreads?: number;
}

interface Pending {
  resolve: (v: Float32Array) => void;
  reject: (e: Error) => void;
  n: number;
}

/** Scales each row of a row-major matrix to unit L2 norm in place (zero rows stay zero). */
export function normalizeRows(data: Float32Array, dim: number): Float32Array {
  for (let off = 0; off < data.length; off += dim) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += (data[off + j] as number) ** 2;
    if (s === 0) continue;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dim; j++) data[off + j] = (data[off + j] as number) * inv;
  }
  return data;
}

const THREAD_URL = threadUrl(import.meta.url, 'onnx-thread');

/**
 * The ONNX encoder: one inference thread holding the session, batched embed() calls
 * answered in order, rows returned L2-normalised.
 */
export class OnnxEncoder {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  private failure: Error | undefined;

  private constructor(
    readonly manifest: ModelManifest,
    /** sha256 of the ONNX file: bundles record it, workers check it. */
    readonly sha256: string,
    readonly modelPath: string,
    private readonly worker: Worker,
  ) {
    worker.on('message', (msg: ThreadReply) => this.onReply(msg));
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', (code) => {
      if (!this.closed) this.failAll(new Error(`inference thread exited with code ${code}`));
    });
  }

  static async open(modelPath: string, opts: EncoderOptions = {}): Promise<OnnxEncoder> {
    const abs = resolve(modelPath);
    const manifest = await readModelManifest(modelManifestPath(abs));
    let sha256: string;
    try {
      sha256 = await sha256File(abs);
    } catch (err) {
      throw new QualmError(ErrorCodes.MODEL_INVALID, `cannot read model ${abs}: ${(err as Error).message}`, { cause: err, context: { path: abs } });
    }
    const init: InitMessage = {
      modelPath: abs,
      inputName: manifest.input_name,
      outputName: manifest.output_name,
      inputDim: manifest.input_dim,
      intraOpThreads: opts.intraOpThreads ?? 1,
    };
    const worker = spawnThread(THREAD_URL, init);
    const ready = await new Promise<ThreadReply>((res, rej) => {
      worker.once('message', res);
      worker.once('error', rej);
    }).catch((err: unknown) => ({ type: 'init-failed' as const, message: String(err) }));
    if (ready.type !== 'ready') {
      await worker.terminate();
      const why = ready.type === 'init-failed' ? ready.message : `unexpected ${ready.type}`;
      throw new QualmError(ErrorCodes.MODEL_INVALID, `cannot load model ${abs}: ${why}`, { context: { path: abs } });
    }
    if (!ready.inputNames.includes(manifest.input_name) || !ready.outputNames.includes(manifest.output_name)) {
      await worker.terminate();
      throw new QualmError(
        ErrorCodes.MODEL_INVALID,
        `model ${abs} has inputs [${ready.inputNames.join(', ')}] and outputs [${ready.outputNames.join(', ')}], manifest names ${manifest.input_name} -> ${manifest.output_name}`,
        { context: { path: abs } },
      );
    }
    return new OnnxEncoder(manifest, sha256, abs, worker);
  }

  get dim(): number {
    return this.manifest.dim;
  }

  get inputDim(): number {
    return this.manifest.input_dim;
  }

  /**
   * Embeds n rows of input_dim features (row-major) in one ONNX run off the main thread.
   * The input buffer is copied, so the caller keeps it.
   */
  embed(features: Float32Array, n: number): Promise<Float32Array> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new QualmError(ErrorCodes.INFERENCE_FAILED, 'encoder is closed'));
    if (features.length !== n * this.inputDim) {
      return Promise.reject(new RangeError(`embed got ${features.length} values for ${n} rows of ${this.inputDim}`));
    }
    if (n === 0) return Promise.resolve(new Float32Array(0));
    const id = this.nextId++;
    const data = Float32Array.from(features);
    const req: EmbedRequest = { id, n, data };
    return new Promise<Float32Array>((res, rej) => {
      this.pending.set(id, { resolve: res, reject: rej, n });
      this.worker.postMessage(req, [data.buffer]);
    });
  }

  /** Embeds any number of rows in runs of at most `batch`, calling `between` after each run. */
  async embedAll(features: Float32Array, n: number, batch: number, between?: (done: number) => Promise<void> | void): Promise<Float32Array> {
    const out = new Float32Array(n * this.dim);
    for (let start = 0; start < n; start += batch) {
      const m = Math.min(batch, n - start);
      const part = await this.embed(features.subarray(start * this.inputDim, (start + m) * this.inputDim), m);
      out.set(part, start * this.dim);
      if (between !== undefined) await between(start + m);
    }
    return out;
  }

  private onReply(msg: ThreadReply): void {
    if (msg.type !== 'result' && msg.type !== 'error') return;
    const p = this.pending.get(msg.id);
    if (p === undefined) return;
    this.pending.delete(msg.id);
    if (msg.type === 'error') {
      p.reject(new QualmError(ErrorCodes.INFERENCE_FAILED, `inference failed: ${msg.message}`, { retriable: false }));
      return;
    }
    if (msg.dims.length !== 2 || msg.dims[0] !== p.n || msg.dims[1] !== this.dim) {
      p.reject(new QualmError(ErrorCodes.INFERENCE_FAILED, `model returned shape [${msg.dims.join(', ')}], expected [${p.n}, ${this.dim}]`));
      return;
    }
    p.resolve(normalizeRows(msg.data, this.dim));
  }

  private failAll(err: Error): void {
    this.failure = new QualmError(ErrorCodes.INFERENCE_FAILED, `inference thread failed: ${err.message}`, { cause: err });
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }

  /** Stops the inference thread; pending calls fail. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new Error('encoder closed'));
    await this.worker.terminate();
  }
}
