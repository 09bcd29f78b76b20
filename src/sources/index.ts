export type { Source, SourceOptions, SourceRecord, SkipReport } from './types.js';
export { openSource, SOURCE_SPEC_FORMS } from './open.js';
export { labelOrder, labelValue, LabelCollector, type CollectedLabels } from './labels.js';
export { SkipCounter, SourceRecordError, mergeSkips, SKIP_LOCATIONS_KEPT } from './skips.js';
export { parseNpyHeader, type NpyLayout } from './vectors.js';
export { splitCsvLine } from './sidecar.js';
export { readLines, type Line } from './lines.js';
export { BUILTIN_SOURCES, type BuiltinName } from './builtin.js';
