export { QualmMetrics, REFRESH_OUTCOMES, STAGES, type BundleView, type DriftSource, type DriftView, type RefreshOutcome, type Stage } from './metrics.js';
export { startHealthServer, type HealthServer, type HealthServerOptions } from './server.js';
