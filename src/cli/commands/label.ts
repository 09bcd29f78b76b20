import type { Config } from '../../config/index.js';
import type { LabelRecord, ReviewRecord } from '../../contracts/index.js';
import { createLogger } from '../../logging/index.js';
import { KafkajsTransport } from '../../transport/index.js';
import { intFlag, parseFlags, UsageError } from '../args.js';
import { readReviewRecords } from '../reviewed-references.js';

export const HELP = `qualm label: publish reviewers' labels to the labels topic

Usage: qualm label --id ID --label NAME [--reviewer NAME]
       qualm label --simulate N [--reviewer NAME]

Publishes a label record {id, label, reviewer, reviewed_at} to QUALM_LABELS_TOPIC, keyed by
id: the verdict on a sample the worker sent to QUALM_REVIEW_TOPIC. 'qualm build-index --labels'
later joins each label with its review record (which carries the sample's embedding) and
adds the sample to the next bundle's references. Prints what it published as JSON.

Options:
  --id ID          the reviewed sample's id
  --label NAME     its label, one of the bundle's label names
  --reviewer NAME  who reviewed it (default: $USER, or "unknown")
  --simulate N     a stand-in reviewer for demos and tests: reads the review topic to its end
                   and labels up to N reviewed samples with the ground truth their producer
                   put in meta.label ('qualm produce' does); samples without one are skipped
  -h, --help       this text`;

/** Up to `n` label records for review records that carry a ground-truth meta.label. */
export function simulatedLabels(reviews: readonly ReviewRecord[], n: number, reviewer: string, now: () => Date = () => new Date()): LabelRecord[] {
  const out: LabelRecord[] = [];
  const seen = new Set<string>();
  for (const r of reviews) {
    if (out.length >= n) break;
    const truth = r.meta?.label;
    if (typeof truth !== 'string' || truth === '' || seen.has(r.id)) continue;
    seen.add(r.id);
    out.push({ id: r.id, label: truth, reviewer, reviewed_at: now().toISOString() });
  }
  return out;
}

export async function run(argv: string[], config: Config): Promise<number> {
  const { values } = parseFlags(argv, {
    id: { type: 'string' },
    label: { type: 'string' },
    reviewer: { type: 'string' },
    simulate: { type: 'string' },
  });
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  const reviewer = values.reviewer ?? process.env.USER ?? 'unknown';
  const single = values.id !== undefined || values.label !== undefined;
  if (single === (values.simulate !== undefined)) throw new UsageError('give either --id and --label, or --simulate N');
  const transport = KafkajsTransport.fromConfig(config, createLogger(config.logLevel), '-label');

  let records: LabelRecord[];
  if (values.simulate !== undefined) {
    const n = intFlag('simulate', values.simulate, 0, 1);
    records = simulatedLabels(await readReviewRecords(transport, config.reviewTopic), n, reviewer);
  } else {
    if (values.id === undefined || values.id === '' || values.label === undefined || values.label === '') throw new UsageError('--id and --label are both required');
    records = [{ id: values.id, label: values.label, reviewer, reviewed_at: new Date().toISOString() }];
  }

  const { failed } = await transport.ensureTopics([config.labelsTopic]);
  if (failed !== undefined) throw failed.error;
  const publisher = transport.publisher();
  await publisher.connect();
  try {
    if (records.length > 0) await publisher.publish([{ topic: config.labelsTopic, records: records.map((r) => ({ key: r.id, value: JSON.stringify(r) })) }]);
  } finally {
    await publisher.close();
  }
  console.log(JSON.stringify({ topic: config.labelsTopic, published: records.length, labels: countBy(records.map((r) => r.label)) }));
  return 0;
}

function countBy(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
