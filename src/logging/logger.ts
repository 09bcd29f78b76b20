import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';

export type { Logger };

/** Structured JSON logs on stdout (or `destination`); areas get child loggers. */
export function createLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  return pino({ level, base: { service: 'qualm' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
