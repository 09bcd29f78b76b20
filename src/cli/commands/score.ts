import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import type { Config } from '../../config/index.js';
import type { FileRef, RecordSource, Sample, SourceRef } from '../../contracts/index.js';
import { OnnxEncoder } from '../../encoder/index.js';
import { LocalBundleStore, loadCurrentFromStore, type IndexSnapshot } from '../../index/index.js';
import { Scorer, csvHeader, csvRow, type ScoreItem, type Scored } from '../../scorer/index.js';
import { checkCombination } from '../../scoring/index.js';
import { SkipCounter, SourceRecordError, mergeSkips, openSource, type SourceRecord } from '../../sources/index.js';
import { createLogger } from '../../logging/index.js';
import { createPolicy } from '../../stream/index.js';
import { KafkajsTransport } from '../../transport/index.js';
import { inputSpecFor } from '../../encoder/index.js';
import { intFlag, parseFlags, UsageError } from '../args.js';
import { Progress } from '../progress.js';
import { stopOnSignals } from '../stop-signals.js';

export const HELP = `qualm score: score a file (or stdin) offline against the current bundle

Usage: qualm score --in PATH|- [--out PATH|-] [--format jsonl|csv] [--flagged-only] [--skip-invalid]
                   [--dim D] [--sidecar PATH]

Reads samples in the input wire format, one JSON object per line (README "Message formats";
an optional "label" is ignored), from PATH or from stdin (-); or a .npy / .f32 / .parquet file
(see qualm build-index --references), or a topic read to its end (topic:NAME). Embeds them with the model at QUALM_MODEL_PATH in runs of
QUALM_INFERENCE_BATCH, scores them against the bundle named by QUALM_BUNDLE_DIR/CURRENT
(loaded and checked as the worker loads it, the model's sha256 included) with the worker's
flag rules, and writes one score record per sample (the JSON of the scores topic), or with
--flagged-only one review record per flagged sample. A record's "source" is {"file", "line"}
(line 1-based; file "-" for stdin) for line input, {"file", "row"} (0-based) for .npy, .f32 and
.parquet rows. CSV: one row per sample with id, uncertainty, predicted_accuracy, flagged,
reason, rule, suggested_label and one column per signal.

A malformed line is an error that names it (exit 1), unless --skip-invalid: then it is
skipped, reported on stderr with its line number and counted in the summary. A progress bar
on stderr when it is a terminal; a JSON summary on stderr at the end.

Options:
  --in PATH|-        the samples (required)
  --out PATH|-       where the records go (default: - , stdout)
  --format F         jsonl (default) or csv
  --flagged-only     only flagged samples (review records in jsonl)
  --skip-invalid     skip and count malformed lines instead of failing on the first
  --dim D            values per row of a raw .f32 file
  --sidecar PATH     ids (and labels) of a .npy / .f32 file: JSONL or CSV
  -h, --help         this text

Exit codes: 0 success, 1 failure (a malformed line, a missing bundle, ...), 2 usage error,
78 invalid configuration.`;

export type ScoreFormat = 'jsonl' | 'csv';

export interface ScoreCommandOptions {
  readonly in: string;
  readonly out: string;
  readonly format: ScoreFormat;
  readonly flaggedOnly: boolean;
  readonly skipInvalid: boolean;
  readonly dim?: number;
  readonly sidecar?: string;
}

/** What `qualm score` reports on stderr at the end. */
export interface ScoreSummary {
  in: string;
  out: string;
  format: ScoreFormat;
  /** Samples scored. */
  scored: number;
  flagged: number;
  /** Records written (all scored samples, or the flagged ones with --flagged-only). */
  written: number;
  /** Lines (or rows) skipped under --skip-invalid, with the first few locations per reason. */
  skipped: number;
  skipped_by_reason: Record<string, { count: number; first: readonly string[] }>;
  index_version: string;
  model_version: string;
  /** Reading, embedding, scoring and writing (from the first line to the last record). */
  seconds: number;
  /** Samples scored per second of `seconds`. */
  per_s: number;
  /** Everything, loading the model and the bundle included. */
  total_seconds: number;
}

const LINE_WHERE = /^(.*):(\d+)$/;
const ROW_WHERE = /^(.*)#(\d+)$/;
const TOPIC_WHERE = /^topic (.+)\/(\d+)@(\d+)$/;

/**
 * A record's `source` from the location a source reader gives it: a file line (stdin is
 * "-"), a file row, a topic message, or null (a built-in set: its id names the row).
 */
export function recordSource(where: string, input: string): RecordSource {
  const topic = TOPIC_WHERE.exec(where);
  if (topic !== null) return { topic: topic[1] as string, partition: Number(topic[2]), offset: topic[3] as string } satisfies SourceRef;
  if (input.startsWith('builtin:')) return null;
  const line = LINE_WHERE.exec(where);
  if (line !== null) return { file: input === '-' ? '-' : (line[1] as string), line: Number(line[2]) } satisfies FileRef;
  const row = ROW_WHERE.exec(where);
  if (row !== null) return { file: row[1] as string, row: Number(row[2]) } satisfies FileRef;
  return null;
}

/** Lines of a regular file (for the progress bar's total); undefined for stdin and anything else. */
async function countLines(path: string, signal: AbortSignal): Promise<number | undefined> {
  if (path === '-' || !/\.(jsonl|ndjson)$/i.test(path)) return undefined;
  let n = 0;
  let last = 0x0a;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, signal }) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) n++;
    if (chunk.length > 0) last = chunk[chunk.length - 1] as number;
  }
  return last === 0x0a ? n : n + 1;
}

/** Writes strings to `out`, waiting for it to drain when its buffer is full; rethrows the stream's error. */
async function write(out: Writable, s: string): Promise<void> {
  if (out.errored !== null) throw out.errored;
  if (s !== '' && !out.write(s)) await once(out, 'drain');
}

/** The reader of our stdout went away (`qualm score ... | head`): not a failure of the scoring. */
function isClosedPipe(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'EPIPE';
}

/**
 * Scores `opts.in` with `scorer` and writes the records to `out`. Reads the next run of
 * samples while the previous one is embedded; runs are scored one after the other, in input
 * order, so that a target-rate policy sees the stream as the worker would.
 */
export async function scoreToSink(
  scorer: Scorer,
  records: AsyncIterable<SourceRecord>,
  opts: Pick<ScoreCommandOptions, 'in' | 'format' | 'flaggedOnly'>,
  out: Writable,
  rejects: SkipCounter,
  onProgress: (scored: number) => void,
): Promise<{ scored: number; flagged: number; written: number }> {
  const counts = { scored: 0, flagged: 0, written: 0 };
  if (opts.format === 'csv') await write(out, `${csvHeader()}\n`);
  const emit = async (scored: readonly Scored[], wheres: readonly string[]): Promise<void> => {
    let text = '';
    scored.forEach((s, i) => {
      if (!s.ok) {
        // Refused by the encoder stage (an undecodable image): a malformed input like any other.
        rejects.reject(new SourceRecordError(wheres[i] as string, s.code, s.message));
        return;
      }
      counts.scored++;
      if (s.review !== null) counts.flagged++;
      if (opts.flaggedOnly && s.review === null) return;
      counts.written++;
      if (opts.format === 'csv') text += `${csvRow(s.record)}\n`;
      else text += `${JSON.stringify(opts.flaggedOnly ? s.review : s.record)}\n`;
    });
    await write(out, text);
    onProgress(counts.scored);
  };

  let pending: Promise<void> | undefined;
  let run: { items: ScoreItem[]; wheres: string[] } = { items: [], wheres: [] };
  const start = (): void => {
    const { items, wheres } = run;
    run = { items: [], wheres: [] };
    const previous = pending;
    pending = (async () => {
      await previous;
      await emit(await scorer.score(items), wheres);
    })();
  };
  try {
    for await (const r of records) {
      const sample: Sample = { id: r.id, input: r.input, meta: r.meta, ...(r.prediction === undefined ? {} : { prediction: r.prediction }) };
      run.items.push({ sample, source: recordSource(r.where, opts.in) });
      run.wheres.push(r.where);
      if (run.items.length >= scorer.batch) {
        // At most one run in flight: wait for the one before, then start this one and read on.
        await pending;
        start();
      }
    }
  } catch (err) {
    // A bad line (or a cancellation) ends the command; the run in flight must not fail unobserved.
    await pending?.catch(() => undefined);
    throw err;
  }
  if (run.items.length > 0) start();
  await pending;
  return counts;
}

export function parseScoreFlags(argv: string[]): ScoreCommandOptions | 'help' {
  const { values } = parseFlags(argv, {
    in: { type: 'string' },
    out: { type: 'string' },
    format: { type: 'string' },
    'flagged-only': { type: 'boolean' },
    'skip-invalid': { type: 'boolean' },
    dim: { type: 'string' },
    sidecar: { type: 'string' },
  });
  if (values.help === true) return 'help';
  if (values.in === undefined || values.in === '') throw new UsageError('--in PATH|- is required');
  const format = values.format ?? 'jsonl';
  if (format !== 'jsonl' && format !== 'csv') throw new UsageError(`--format must be jsonl or csv, got ${JSON.stringify(format)}`);
  const out = values.out ?? '-';
  if (out !== '-' && out === values.in) throw new UsageError('--out must not be the --in file');
  return {
    in: values.in,
    out,
    format,
    flaggedOnly: values['flagged-only'] === true,
    skipInvalid: values['skip-invalid'] === true,
    ...(values.dim === undefined ? {} : { dim: intFlag('dim', values.dim, 0, 1) }),
    ...(values.sidecar === undefined ? {} : { sidecar: values.sidecar }),
  };
}

export async function run(argv: string[], config: Config): Promise<number> {
  const opts = parseScoreFlags(argv);
  if (opts === 'help') {
    console.log(HELP);
    return 0;
  }
  const stop = stopOnSignals();
  const t0 = performance.now();
  const encoder = await OnnxEncoder.open(config.modelPath, { intraOpThreads: config.intraOpThreads });
  try {
    const source = await openSource(opts.in, {
      spec: inputSpecFor(encoder, config.maxMessageBytes),
      skipInvalid: opts.skipInvalid,
      ...(opts.dim === undefined ? {} : { dim: opts.dim }),
      ...(opts.sidecar === undefined ? {} : { sidecar: opts.sidecar }),
      ...(opts.in.startsWith('topic:') ? { transport: KafkajsTransport.fromConfig(config, createLogger(config.logLevel)) } : {}),
    });
    // As the worker loads it: the model's sha256 and metric must match, the fitted combination must be one this qualm computes.
    const snapshot: IndexSnapshot = await loadCurrentFromStore(
      new LocalBundleStore(config.bundleDir),
      {
        efSearch: config.efSearch,
        expectModelSha256: encoder.sha256,
        expectMetric: encoder.metric,
        checkScoring: (m) => {
          if (m.scoring.combination !== undefined) checkCombination(m.scoring.combination);
        },
      },
      stop.signal,
    );
    const scorer = new Scorer({ embedder: encoder, snapshot: () => snapshot, policy: createPolicy(config), batch: config.inferenceBatch });

    const tty = process.stderr.isTTY;
    const total = tty ? await countLines(opts.in, stop.signal) : undefined;
    const progress = new Progress();
    let lastDraw = 0;
    const onProgress = (n: number): void => {
      if (!tty) return;
      if (total !== undefined) progress.update('scoring', n, total);
      else if (Date.now() - lastDraw > 100) {
        lastDraw = Date.now();
        process.stderr.write(`\rscoring        ${n}`);
      }
    };

    const out: Writable = opts.out === '-' ? process.stdout : createWriteStream(opts.out);
    if (out !== process.stdout) await once(out, 'open');
    // Kept on out.errored and rethrown by the next write (an 'error' without a listener would end the process).
    const onOutError = (): void => undefined;
    out.on('error', onOutError);
    const rejects = new SkipCounter(opts.skipInvalid);
    const t1 = performance.now();
    let counts: { scored: number; flagged: number; written: number };
    try {
      counts = await scoreToSink(scorer, source.records(stop.signal), opts, out, rejects, onProgress);
    } catch (err) {
      if (out === process.stdout && isClosedPipe(err)) return 0;
      throw err;
    } finally {
      out.off('error', onOutError);
      if (out !== process.stdout) {
        out.end();
        await once(out, 'close');
      }
    }
    // Skipped and blank lines count in the file's total but not as scored: close the bar at its end.
    if (tty) {
      if (total === undefined) process.stderr.write('\n');
      else progress.update('scoring', total, total);
    }

    const skipped = mergeSkips(source.skipped, rejects.report);
    for (const [reason, r] of Object.entries(skipped.byReason)) {
      const more = r.count > r.first.length ? ` and ${r.count - r.first.length} more` : '';
      process.stderr.write(`qualm score: skipped ${r.count} invalid (${reason}): ${r.first.join(', ')}${more}\n`);
    }
    const t2 = performance.now();
    const seconds = (t2 - t1) / 1000;
    const summary: ScoreSummary = {
      in: opts.in,
      out: opts.out,
      format: opts.format,
      ...counts,
      skipped: skipped.total,
      skipped_by_reason: Object.fromEntries(Object.entries(skipped.byReason).map(([k, v]) => [k, { count: v.count, first: v.first }])),
      index_version: snapshot.version,
      model_version: `${encoder.manifest.name}@${encoder.manifest.version}`,
      seconds: Math.round(seconds * 1000) / 1000,
      per_s: Math.round(counts.scored / Math.max(seconds, 1e-9)),
      total_seconds: Math.round(t2 - t0) / 1000,
    };
    process.stderr.write(`${JSON.stringify(summary)}\n`);
    return 0;
  } finally {
    stop.release();
    await encoder.close();
  }
}

