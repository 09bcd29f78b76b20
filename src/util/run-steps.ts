export type Step = readonly [name: string, run: () => Promise<void>];

/**
 * Runs shutdown steps in order, each even if an earlier one failed; every failure goes to
 * `onError` with the step's name. Used wherever close() must not stop half-way.
 */
export async function runSteps(steps: readonly Step[], onError: (step: string, err: unknown) => void): Promise<void> {
  for (const [name, run] of steps) {
    try {
      await run();
    } catch (err) {
      onError(name, err);
    }
  }
}
