/**
 * An ordered pipeline of stages (the worker's: decode, start the embedding, start the search,
 * score; then the group stage, publish and commit): while one job is embedded, the next is
 * decoded and an earlier one searched and scored. Each stage runs its jobs one at a time in
 * admission order.
 *
 * Optionally the pipeline ends in a group stage (the worker's publish and commit): what the
 * jobs' last stage returns is gathered, in admission order, and handed to it in groups: every
 * job that became ready while the group before was being handled goes in the next one. A slow
 * round trip is then paid once for several jobs instead of once per job, so the round trips do
 * not become the bottleneck when jobs come quickly. (Smaller jobs do not shorten the latency on
 * a 2-core machine: each ONNX run has a fixed cost, and small jobs queue on the inference
 * thread; see docs/benchmarks.md.) Groups run one at a time, so a job's records are written
 * after every earlier job's: commits stay in offset order.
 *
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
  /** Checked before each stage (and before the group stage): true drops the job there (its partition was rewound or revoked). */
  dropped(): boolean;
  /** Called once, synchronously, when one of its stages (or its group) throws; its later stages are not run. */
  failed(err: unknown): void;
}

/** A job that has been through every stage, with what its last stage returned, waiting for the group stage. */
export interface Ready<T> {
  readonly job: PipelineJob;
  readonly value: T;
}

/** The group stage: writes the outputs of several jobs at once, in admission order; a throw fails every one of them. */
export type GroupStage<T> = (ready: readonly Ready<T>[]) => Promise<void>;

/** Four stages whose last result goes to the pipeline's group stage (a `GroupStage<D>`). */
export function stagesToGroup<A, B, C, D>(first: () => Promise<A>, second: (a: A) => Promise<B>, third: (b: B) => Promise<C>, fourth: (c: C) => Promise<D>): readonly Stage[] {
  return [first, second, third, fourth] as readonly Stage[];
}

/**
 * Work a stage has started but not waited for (an ONNX run or a search handed to its thread),
 * so that the stage lets the next job in at once and the thread finds that job's work queued
 * behind this one's; the next stage waits for it. A failure is kept for that stage to see,
 * not reported as unhandled meanwhile.
 */
export interface Started<T> {
  readonly result: Promise<T>;
}

export function started<T>(result: Promise<T>): Started<T> {
  result.catch(() => undefined);
  return { result };
}

const DROP = Symbol('drop');
const settle = (): void => undefined;

interface Waiting<T> extends Ready<T> {
  readonly done: () => void;
}

export class Pipeline<T = unknown> {
  private readonly tails: Promise<unknown>[];
  private held = 0;
  private jobs = 0;
  private readonly waiters: (() => void)[] = [];
  /** Jobs through their stages, waiting for the group stage, in admission order. */
  private readyQueue: Waiting<T>[] = [];
  private grouping = false;

  /**
   * `depth` stages per job; `maxMessages`: messages admitted jobs may hold together (one job is
   * always let in, whatever its size). With `group`, the last stage's results go to it.
   */
  constructor(
    private readonly maxMessages: number,
    private readonly depth = 4,
    private readonly group?: GroupStage<T>,
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
    const group = this.group;
    // The last stages end in admission order (each waits for the job before it), so the queue is in that order too.
    const end = group === undefined ? prev : prev.then((value) => (value === DROP ? undefined : this.enqueue(job, value as T, group)));
    return end.then(() => {
      this.held -= job.size;
      this.jobs--;
      for (const wake of this.waiters.splice(0)) wake();
    }, settle);
  }

  private enqueue(job: PipelineJob, value: T, group: GroupStage<T>): Promise<void> {
    return new Promise<void>((done) => {
      this.readyQueue.push({ job, value, done });
      if (!this.grouping) void this.drainGroups(group);
    });
  }

  /** Hands the waiting jobs to the group stage, all at once, until none is waiting; one group at a time. */
  private async drainGroups(group: GroupStage<T>): Promise<void> {
    this.grouping = true;
    // Let the jobs that become ready in the same turn join this group.
    await Promise.resolve();
    while (this.readyQueue.length > 0) {
      const taken = this.readyQueue;
      this.readyQueue = [];
      const live = taken.filter((w) => !w.job.dropped());
      if (live.length > 0) {
        try {
          await group(live.map(({ job, value }) => ({ job, value })));
        } catch (err) {
          for (const w of live) w.job.failed(err);
        }
      }
      for (const w of taken) w.done();
    }
    this.grouping = false;
  }
}
