/**
 * Writes docs/model-manifest.schema.json, the JSON Schema of the model manifest, from the zod
 * schemas in src/encoder/model-manifest.ts: format 2 (`format_version: 2`) or format 1 (none).
 * Cross-field rules (a channel count that matches the colour mode, one mean per feature, the
 * model's own shapes) are the reader's, not the schema's: `qualm model check` applies them all.
 *
 *   node --import tsx scripts/gen-manifest-schema.ts          # write the file
 *   node --import tsx scripts/gen-manifest-schema.ts --check  # exit 1 when the file is stale
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { modelManifestSchema, modelManifestV2Schema } from '../src/encoder/index.js';
import { packageRoot } from '../src/util/package-root.js';

export const SCHEMA_FILE = join(packageRoot(), 'docs', 'model-manifest.schema.json');

/** The schema document as text (stable key order, two-space indent, trailing newline). */
export function manifestJsonSchema(): string {
  // io: 'input': fields with defaults are optional in the file.
  const v2 = z.toJSONSchema(modelManifestV2Schema, { io: 'input', target: 'draft-2020-12' });
  const v1 = z.toJSONSchema(modelManifestSchema, { io: 'input', target: 'draft-2020-12' });
  const strip = (schema: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(schema).filter(([key]) => key !== '$schema'));
  const doc = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'qualm model manifest',
    description:
      'The JSON file beside an ONNX encoder (MODEL.json beside MODEL.onnx) that tells qualm what the model takes and returns. Format 2 has format_version 2; a file without format_version is format 1. Generated from src/encoder/model-manifest.ts by scripts/gen-manifest-schema.ts; see docs/models.md.',
    anyOf: [
      { title: 'format 2', ...strip(v2) },
      { title: 'format 1 (no format_version)', ...strip(v1), not: { required: ['format_version'] } },
    ],
  };
  return JSON.stringify(doc, null, 2) + '\n';
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const text = manifestJsonSchema();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(SCHEMA_FILE, 'utf8');
    } catch {
      // missing: stale
    }
    if (current !== text) {
      console.error(`${SCHEMA_FILE} is stale: run node --import tsx scripts/gen-manifest-schema.ts`);
      process.exit(1);
    }
    console.log(`${SCHEMA_FILE} is up to date`);
  } else {
    writeFileSync(SCHEMA_FILE, text);
    console.log(`wrote ${SCHEMA_FILE}`);
  }
}
