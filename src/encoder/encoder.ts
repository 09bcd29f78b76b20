import { dirname, isAbsolute, resolve } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { modelManifestPath } from '../config/index.js';
import { ErrorCodes, QualmError } from '../errors.js';
import { sha256File } from '../util/sha256.js';
import { spawnThread, threadUrl } from '../util/spawn-thread.js';
import { fixedBatch, inputTensorDim, manifestMismatches, readModelManifest, type ImageSpec, type Metric, type ModelInputKind, type ModelSpec } from './model-manifest.js';
import type { EmbedRequest, EmbedTextRequest, InitMessage, ThreadPreprocess, ThreadReply } from './protocol.js';

export interface EncoderOptions {
  /** onnxruntime intra-op threads inside the inference thread. */
  intraOpThreads?: number;
}

/** How embedTexts splits its texts into ONNX runs. */
export interface TextEmbedOptions {
  /** Most texts in one run (default TEXT_RUN_ROWS). */
  readonly batch?: number;
  /** Called after each run with the number of texts done so far (heartbeats, progress). */
  readonly between?: (done: number) => Promise<void> | void;
  /** false: return the pooled vectors before L2 normalisation (the L2-norm baseline). Default: normalised when the metric is cosine. */
  readonly normalize?: boolean;
  /** Checked between runs; an aborted signal stops the work with QUALM_ABORTED. */
  readonly signal?: AbortSignal;
}

/**
 * Token budget of one text run: runs hold at most this many (estimated) tokens, padding
 * included, so one run takes one to two seconds on one core and a Kafka batch heartbeats between
 * runs. At MiniLM's 256 tokens that is 16 long texts, or up to TEXT_RUN_ROWS short ones.
 */
export const TEXT_RUN_TOKENS = 4096;
/** Most texts in one run when the caller names no batch. */
export const TEXT_RUN_ROWS = 64;

/**
 * A cheap upper-side estimate of a text's WordPiece tokens from its length (English runs at
 * about 4 to 5 characters a token): used only to group texts of similar length into runs.
 */
function estimateTokens(text: string, maxTokens: number, prefixChars: number): number {
  return Math.min(maxTokens, Math.ceil((text.length + prefixChars) / 3.5) + 2);
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

/** A text manifest's tokenizer file: absolute, or relative to the model file's directory. */
function tokenizerFile(modelPath: string, tokenizer: string): string {
  return isAbsolute(tokenizer) ? tokenizer : resolve(dirname(modelPath), tokenizer);
}

/** A features model's preprocessing for the thread; null when it is the identity (the fast path). */
function threadPreprocess(spec: ModelSpec): ThreadPreprocess | null {
  if (spec.input_kind !== 'features') return null;
  const p = spec.preprocess;
  const list = (v: number | number[]): number[] => (Array.isArray(v) ? v : [v]);
  const mean = list(p.mean);
  const std = list(p.std);
  if (p.scale === 1 && mean.every((v) => v === 0) && std.every((v) => v === 1)) return null;
  return { scale: p.scale, mean, std };
}

/** What the inference thread needs from the manifest. */
function initMessage(spec: ModelSpec, modelPath: string, intraOpThreads: number): InitMessage {
  if (spec.input_kind === 'text') {
    return {
      kind: 'text',
      modelPath,
      tokenizerPath: tokenizerFile(modelPath, spec.tokenizer),
      maxTokens: spec.max_tokens,
      inputIds: spec.input_names.input_ids,
      attentionMask: spec.input_names.attention_mask,
      tokenTypeIds: spec.input_names.token_type_ids ?? null,
      prefix: spec.prefix,
      outputName: spec.output.name,
      pooling: spec.output.pooling,
      intraOpThreads,
    };
  }
  return {
    kind: 'tensor',
    modelPath,
    inputName: spec.input.name,
    outputName: spec.output.name,
    dims: spec.input.shape.slice(1),
    dtype: spec.input.dtype,
    fixedBatch: fixedBatch(spec),
    preprocess: threadPreprocess(spec),
    pooling: spec.output.pooling,
    intraOpThreads,
  };
}

/**
 * The ONNX encoder: one inference thread holding the session (and, for text models, the
 * tokenizer); batched embed() calls for features and image models (image rows come already
 * preprocessed), embedTexts() for text models; rows returned L2-normalised when the metric is
 * cosine, as the model gives them for l2 and ip.
 */
export class OnnxEncoder {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  private failure: Error | undefined;

  private constructor(
    /** The manifest as format 2 (format 1 files are converted): name, version, input, output, metric. */
    readonly manifest: ModelSpec,
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
    const worker = spawnThread(THREAD_URL, initMessage(manifest, abs, opts.intraOpThreads ?? 1));
    const ready = await new Promise<ThreadReply>((res, rej) => {
      worker.once('message', res);
      worker.once('error', rej);
    }).catch((err: unknown) => ({ type: 'init-failed' as const, message: String(err) }));
    if (ready.type !== 'ready') {
      await worker.terminate();
      const why = ready.type === 'init-failed' ? ready.message : `unexpected ${ready.type}`;
      throw new QualmError(ErrorCodes.MODEL_INVALID, `cannot load model ${abs}: ${why}`, { context: { path: abs } });
    }
    // Names only, when this onnxruntime does not describe the values.
    const declared = (names: readonly string[], infos: typeof ready.inputs): typeof ready.inputs => (infos.length > 0 ? infos : names.map((name) => ({ name, type: null, shape: [] })));
    const problems = manifestMismatches(manifest, declared(ready.inputNames, ready.inputs), declared(ready.outputNames, ready.outputs));
    if (problems.length > 0) {
      await worker.terminate();
      throw new QualmError(ErrorCodes.MODEL_INVALID, `model ${abs} does not match its manifest ${modelManifestPath(abs)}: ${problems.join('; ')}`, { context: { path: abs } });
    }
    return new OnnxEncoder(manifest, sha256, abs, worker);
  }

  get dim(): number {
    return this.manifest.dim;
  }

  /** What the model takes: `features` (inputDim numbers), `image` (decoded and preprocessed into inputDim numbers) or `text`. */
  get inputKind(): ModelInputKind {
    return this.manifest.input_kind;
  }

  /** Values per row (features and image models: the input shape's product after the batch); 0 for text models, which take strings. */
  get inputDim(): number {
    return inputTensorDim(this.manifest);
  }

  /** The distance the reference bundle uses; cosine rows come back L2-normalised. */
  get metric(): Metric {
    return this.manifest.metric;
  }

  /** A features model's declared range of wire values (the manifest's value_range), checked by parseSample; undefined when it declares none, and for image and text models. */
  get valueRange(): readonly [number, number] | undefined {
    return this.manifest.input_kind === 'features' ? this.manifest.input.value_range : undefined;
  }

  /** The image model's manifest (for the image preprocessing); undefined for features and text models. */
  get imageSpec(): ImageSpec | undefined {
    return this.manifest.input_kind === 'image' ? this.manifest : undefined;
  }


  /** The tokenizer.json a text model uses, as an absolute path; null for features models. */
  get tokenizerPath(): string | null {
    return this.manifest.input_kind === 'text' ? tokenizerFile(this.modelPath, this.manifest.tokenizer) : null;
  }

  /** Longest token sequence a text model sees (longer texts are truncated); 0 for features models. */
  get maxTokens(): number {
    return this.manifest.input_kind === 'text' ? this.manifest.max_tokens : 0;
  }

  /** Runs that returned embeddings since the encoder opened. */
  private successfulRuns = 0;
  /** Errors of runs that onnxruntime refused (while the inference thread lives on). */
  private readonly refusedRuns = new WeakSet<Error>();

  /**
   * True when `err` is a run that onnxruntime refused for what it was given while the
   * inference thread lives on: a failure that may belong to the run's inputs (encodeInputs
   * then splits the run to find them). A dead thread or a closed encoder is not.
   */
  isInputFailure(err: unknown): boolean {
    return err instanceof Error && this.refusedRuns.has(err) && this.unusable() === undefined;
  }

  /** True once a run has returned embeddings: the model works, so a lone input it refuses is that input's fault. */
  get hasEmbedded(): boolean {
    return this.successfulRuns > 0;
  }

  private unusable(): Error | undefined {
    if (this.failure !== undefined) return this.failure;
    if (this.closed) return new QualmError(ErrorCodes.INFERENCE_FAILED, 'encoder is closed');
    return undefined;
  }

  private wrongKind(takes: string): QualmError {
    return new QualmError(ErrorCodes.MODEL_INVALID, `model ${this.modelPath} takes ${this.inputKind}, not ${takes}`, { context: { path: this.modelPath } });
  }

  /**
   * Embeds n rows of inputDim values (row-major) off the main thread: one ONNX run, or runs of
   * exactly the model's fixed batch size. Features rows get the manifest's preprocessing
   * there; image rows must come preprocessed. The input buffer is copied, so the caller keeps it.
   * `normalize: false` returns the rows as the model gives them (default: normalised when the
   * metric is cosine).
   */
  embed(features: Float32Array, n: number, opts: { readonly normalize?: boolean } = {}): Promise<Float32Array> {
    const bad = this.unusable();
    if (bad !== undefined) return Promise.reject(bad);
    if (this.manifest.input_kind === 'text') return Promise.reject(this.wrongKind('features'));
    if (features.length !== n * this.inputDim) {
      return Promise.reject(new RangeError(`embed got ${features.length} values for ${n} rows of ${this.inputDim}`));
    }
    if (n === 0) return Promise.resolve(new Float32Array(0));
    const id = this.nextId++;
    const data = Float32Array.from(features);
    const req: EmbedRequest = { type: 'features', id, n, data };
    return new Promise<Float32Array>((res, rej) => {
      this.pending.set(id, { resolve: (v) => res((opts.normalize ?? this.manifest.metric === 'cosine') ? normalizeRows(v, this.dim) : v), reject: rej, n });
      this.worker.postMessage(req, [data.buffer]);
    });
  }

  /** One text run: tokenized, padded to its longest text and pooled on the inference thread; rows not normalised. */
  private poolTexts(texts: readonly string[]): Promise<Float32Array> {
    const bad = this.unusable();
    if (bad !== undefined) return Promise.reject(bad);
    if (texts.length === 0) return Promise.resolve(new Float32Array(0));
    const id = this.nextId++;
    const req: EmbedTextRequest = { type: 'text', id, texts };
    return new Promise<Float32Array>((res, rej) => {
      this.pending.set(id, { resolve: res, reject: rej, n: texts.length });
      this.worker.postMessage(req);
    });
  }

  /**
   * Embeds texts (text models): the texts are ordered by length and grouped into runs of at
   * most `batch` texts and TEXT_RUN_TOKENS estimated tokens, so that a run pads little and
   * stays short; `between` is called after each run. Returns one row per text, in the order
   * given, L2-normalised for the cosine metric (the pooled vectors with `normalize: false`, or
   * for l2 and ip).
   */
  async embedTexts(texts: readonly string[], opts: TextEmbedOptions = {}): Promise<Float32Array> {
    if (this.manifest.input_kind !== 'text') throw this.wrongKind('text');
    const maxTokens = this.manifest.max_tokens;
    const prefix = this.manifest.prefix.length;
    const maxRows = Math.max(1, opts.batch ?? TEXT_RUN_ROWS);
    const dim = this.dim;
    const out = new Float32Array(texts.length * dim);
    const order = Array.from(texts.keys()).sort((a, b) => (texts[a] as string).length - (texts[b] as string).length || a - b);
    let done = 0;
    while (done < order.length) {
      if (opts.signal?.aborted === true) throw new QualmError(ErrorCodes.ABORTED, 'text embedding cancelled');
      // Ascending length: the last text of a run is its longest, and sets the padding.
      let m = 1;
      while (done + m < order.length && m < maxRows && (m + 1) * estimateTokens(texts[order[done + m] as number] as string, maxTokens, prefix) <= TEXT_RUN_TOKENS) m++;
      const run = order.slice(done, done + m);
      const pooled = await this.poolTexts(run.map((i) => texts[i] as string));
      run.forEach((i, r) => out.set(pooled.subarray(r * dim, (r + 1) * dim), i * dim));
      done += m;
      if (opts.between !== undefined) await opts.between(done);
    }
    const normalize = opts.normalize ?? this.manifest.metric === 'cosine';
    return normalize ? normalizeRows(out, dim) : out;
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
      const err = new QualmError(ErrorCodes.INFERENCE_FAILED, `inference failed: ${msg.message}`, { retriable: false });
      this.refusedRuns.add(err);
      p.reject(err);
      return;
    }
    if (msg.dims.length !== 2 || msg.dims[0] !== p.n || msg.dims[1] !== this.dim) {
      p.reject(new QualmError(ErrorCodes.INFERENCE_FAILED, `model returned shape [${msg.dims.join(', ')}], expected [${p.n}, ${this.dim}]`));
      return;
    }
    this.successfulRuns++;
    p.resolve(msg.data);
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
