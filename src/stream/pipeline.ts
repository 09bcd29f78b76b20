/**
 * An ordered pipeline of stages (the worker's four: decode, embed, search+score,
 * publish+commit): while one job is embedded, the next is decoded, an earlier one searched
 * and scored, and one before that published. Each stage runs its jobs one at a time in
 * admission order, so a job's last stage starts only after every earlier job's last stage
 * has ended: commits stay in offset order.
 * The messages held by admitted jobs are bounded; `admit` waits for room.
 */

/** One stage of a job: takes what the stage before it gave (undefined for the first). */
export type Stage = (input: never) => Promise<unknown>;

/** One unit of work: its stages, in order, and what to do when one fails. */
export interface PipelineJob {
  /** Messages it holds, counted against the pipeline's bound. */
  readonly size: number;
  /** One function per stage of the pipeline; each gets the previous one's result. */
  readonly stages: readonly Stage[];
  /** Checked before each stage: true drops the job there (its partition was rewound or revoked). */
  dropped(): boolean;
  /** Called once, synchronously, when a stage throws; the job's later stages are not run. */
  failed(err: unknown): void;
}

/** The stages of a job, typed end to end: each gets what the one before it returned. */
export function stages<A, B, C>(first: () => Promise<A>, second: (a: A) => Promise<B>, third: (b: B) => Promise<C>, last: (c: C) => Promise<void>): readonly Stage[] {
  return [first, second, third, last] as readonly Stage[];
}

const DROP = Symbol('drop');
const settle = (): void => undefined;

export class Pipeline {
  private readonly tails: Promise<unknown>[];
  private held = 0;
  private jobs = 0;
  private readonly waiters: (() => void)[] = [];

  /**
   * `depth` stages; `maxMessages`: messages admitted jobs may hold together (one job is
   * always let in, whatever its size).
   */
  constructor(
    private readonly maxMessages: number,
    private readonly depth = 4,
  ) {
    this.tails = Array.from({ length: depth }, () => Promise.resolve());
  }

  /** Messages held by admitted jobs. */
  get inFlight(): number {
    return this.held;
  }

  /** True when a job of `size` messages would be let in now. */
  hasRoom(size: number): boolean {
    return this.jobs === 0 || this.held + size <= this.maxMessages;
  }

  /** Resolves when a job has left (call hasRoom again), or at once when there is room. */
  room(size: number): Promise<void> {
    if (this.hasRoom(size)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves when every admitted job has left the pipeline. */
  async idle(): Promise<void> {
    while (this.jobs > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Lets a job in; returns a promise of its end (which never rejects: failures go to `failed`). */
  admit(job: PipelineJob): Promise<void> {
    if (job.stages.length !== this.depth) throw new RangeError(`a job of ${job.stages.length} stages in a pipeline of ${this.depth}`);
    this.held += job.size;
    this.jobs++;
    const run = async (input: unknown, stage: Stage): Promise<unknown> => {
      if (input === DROP || job.dropped()) return DROP;
      try {
        return await (stage as (i: unknown) => Promise<unknown>)(input);
      } catch (err) {
        job.failed(err);
        return DROP;
      }
    };
    let prev: Promise<unknown> = Promise.resolve(undefined);
    job.stages.forEach((stage, i) => {
      // Stage i of this job starts when its stage i-1 is done and the previous job's stage i is.
      const mine = Promise.all([prev, this.tails[i]]).then(([input]) => run(input, stage));
      this.tails[i] = mine;
      prev = mine;
    });
    return prev.then(() => {
      this.held -= job.size;
      this.jobs--;
      for (const wake of this.waiters.splice(0)) wake();
    }, settle);
  }
}
