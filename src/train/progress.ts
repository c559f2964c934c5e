/** A one-line console progress bar (step, loss, learning rate, tokens/s, ETA) on stderr. */
export class ProgressBar {
  private readonly start = Date.now();
  private readonly tty: boolean;

  constructor(
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  update(
    step: number,
    fields: { loss: number; lr: number; tokensPerSecond: number },
    force = false,
  ): void {
    const elapsed = (Date.now() - this.start) / 1000;
    const eta = step > 0 ? (elapsed / step) * (this.total - step) : 0;
    const width = 24;
    const done = Math.round((width * step) / Math.max(1, this.total));
    const bar = `[${"=".repeat(done)}${" ".repeat(width - done)}]`;
    const line = `step ${step}/${this.total} ${bar} loss ${fields.loss.toFixed(4)} lr ${fields.lr.toExponential(2)} ${fields.tokensPerSecond.toFixed(0)} tok/s ETA ${formatSeconds(eta)}`;
    if (this.tty) this.stream.write(`\r${line}\u001b[K`);
    else if (force) this.stream.write(`${line}\n`);
  }

  end(): void {
    if (this.tty) this.stream.write("\n");
  }
}

export function formatSeconds(s: number): string {
  const m = Math.floor(s / 60);
  const sec = Math.round(s % 60);
  return m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}
