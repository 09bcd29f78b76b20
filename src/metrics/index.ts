export { QualmMetrics, STAGES, type BundleView, type Stage } from './metrics.js';
export { startHealthServer, type HealthServer, type HealthServerOptions } from './server.js';
