/**
 * A one-line progress bar on a terminal; on a pipe, a plain line every 10%.
 * Writes to stderr so that stdout stays machine-readable.
 */
export class Progress {
  private lastDecile = -1;
  private lastDraw = 0;
  private readonly tty: boolean;

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = out.isTTY;
  }

  update(phase: string, done: number, total: number): void {
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    if (this.tty) {
      const now = Date.now();
      if (now - this.lastDraw < 100 && done < total) return;
      this.lastDraw = now;
      const width = 30;
      const filled = Math.round(frac * width);
      this.out.write(`\r${phase.padEnd(14)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${(frac * 100).toFixed(0).padStart(3)}%`);
      if (done >= total) this.out.write('\n');
      return;
    }
    const decile = Math.floor(frac * 10);
    if (decile !== this.lastDecile) {
      this.lastDecile = decile;
      this.out.write(`${phase}: ${done}/${total} (${decile * 10}%)\n`);
    }
  }

  /** Resets the per-phase state between phases. */
  next(): void {
    this.lastDecile = -1;
  }
}
