/**
 * An ordered three-stage pipeline: while one job is in stage B (search and score) and an
 * earlier one in stage C (publish and commit), the next is already in stage A (decode and
 * embed). Each stage runs its jobs one at a time in admission order, so a job's stage C
 * starts only after every earlier job's stage C has ended: commits stay in offset order.
 * The messages held by admitted jobs are bounded; `admit` waits for room.
 */

/** One unit of work: the stages it goes through and what to do when one fails. */
export interface PipelineJob<P, F> {
  /** Messages it holds, counted against the pipeline's bound. */
  readonly size: number;
  /** Stage A. */
  prepare(): Promise<P>;
  /** Stage B. */
  finish(prepared: P): Promise<F>;
  /** Stage C. */
  publish(finished: F): Promise<void>;
  /** Checked before each stage: true drops the job there (its partition was rewound or revoked). */
  dropped(): boolean;
  /** Called once, synchronously, when a stage throws; the job's later stages are not run. */
  failed(err: unknown): void;
}

const DROP = Symbol('drop');
const settle = (): void => undefined;

export class Pipeline {
  private tailA: Promise<unknown> = Promise.resolve();
  private tailB: Promise<unknown> = Promise.resolve();
  private tailC: Promise<unknown> = Promise.resolve();
  private held = 0;
  private jobs = 0;
  private readonly waiters: (() => void)[] = [];

  /** `maxMessages`: messages admitted jobs may hold together (one job is always let in, whatever its size). */
  constructor(private readonly maxMessages: number) {}

  /** Messages held by admitted jobs. */
  get inFlight(): number {
    return this.held;
  }

  /** True when a job of `size` messages would be let in now. */
  hasRoom(size: number): boolean {
    return this.jobs === 0 || this.held + size <= this.maxMessages;
  }

  /** Resolves when a job of `size` could be let in (or at once when it can). */
  room(size: number): Promise<void> {
    if (this.hasRoom(size)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves when every admitted job has left the pipeline. */
  async idle(): Promise<void> {
    while (this.jobs > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Lets a job in; returns a promise of its end (which never rejects: failures go to `failed`). */
  admit<P, F>(job: PipelineJob<P, F>): Promise<void> {
    this.held += job.size;
    this.jobs++;
    const stage = async <I, O>(input: I | typeof DROP, run: (i: I) => Promise<O>): Promise<O | typeof DROP> => {
      if (input === DROP || job.dropped()) return DROP;
      try {
        return await run(input);
      } catch (err) {
        job.failed(err);
        return DROP;
      }
    };
    const a = this.tailA.then(() => stage(undefined, () => job.prepare()));
    this.tailA = a;
    const b = Promise.all([a, this.tailB]).then(([p]) => stage(p, (x: P) => job.finish(x)));
    this.tailB = b;
    const c = Promise.all([b, this.tailC]).then(([f]) => stage(f, (x: F) => job.publish(x)));
    this.tailC = c;
    return c.then(() => {
      this.held -= job.size;
      this.jobs--;
      for (const wake of this.waiters.splice(0)) wake();
    }, settle);
  }
}
