import type { SignalValues } from '../signals.js';

/**
 * The signals of one embedding against the reference bundle (see score.ts computeSignals),
 * by their names in code. Declared, with each one's meaning, in the signal table (src/signals.ts).
 */
export type Signals = SignalValues;
