export { trainLinearProbe, accuracy, DEFAULT_PROBE, type LinearProbe, type ProbeOptions } from './linear-probe.js';
export * from './evaluation-exports.js';
