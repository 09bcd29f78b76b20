import { parseSample, type InputSpec } from '../contracts/index.js';
import { labelValue } from './labels.js';
import { SourceRecordError, type SkipCounter } from './skips.js';
import type { SourceRecord } from './types.js';

/**
 * One line or message of the input wire format plus an optional top-level `label`, judged by
 * the worker's own parseSample (so a file line and a Kafka message pass or fail by the same
 * rules), as a SourceRecord; or null when it is bad and `skips` counts it (without
 * --skip-invalid, `skips` throws it, named by `where`).
 */
export function wireRecord(value: Buffer | null, key: Buffer | null, spec: InputSpec, where: string, skips: SkipCounter): SourceRecord | null {
  const parsed = parseSample(value, key, spec);
  if (!parsed.ok) {
    skips.reject(new SourceRecordError(where, parsed.code, parsed.message));
    return null;
  }
  let label: string | undefined;
  try {
    label = labelValue(parsed.doc?.label, where);
  } catch (err) {
    if (!(err instanceof SourceRecordError)) throw err;
    skips.reject(err);
    return null;
  }
  const { id, input, meta, prediction } = parsed.sample;
  return { id, input, where, ...(label === undefined ? {} : { label }), ...(meta === undefined ? {} : { meta }), ...(prediction === undefined ? {} : { prediction }) };
}
