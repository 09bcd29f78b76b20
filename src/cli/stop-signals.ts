/** An AbortSignal that SIGINT or SIGTERM aborts, until `release()` takes the handlers off again. */
export interface StopSignals {
  readonly signal: AbortSignal;
  release(): void;
}

/** Ctrl-C (or a SIGTERM) cancels the command's work through `signal`; call `release()` in its finally. */
export function stopOnSignals(): StopSignals {
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: ac.signal,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
