export { QualmMetrics, STAGES, type BundleView, type DriftSource, type DriftView, type Stage } from './metrics.js';
export { startHealthServer, type HealthServer, type HealthServerOptions } from './server.js';
