/**
 * Shared benchmark helpers: percentiles and the printed table. A benchmark module exports
 * `run(): Promise<BenchRow[]>`; bench/run.ts runs them in order and prints one table. Figures are
 * compared with a baseline measured in the same run (ratio = subject p99 / baseline p99).
 */
export interface BenchRow {
  /** What was measured, e.g. "lock acquire+release (cellops)". */
  readonly name: string;
  readonly samples: number;
  readonly p50: number;
  readonly p99: number;
  /** Unit of p50/p99: "ms" unless stated. */
  readonly unit?: string;
  /** Name of the baseline row this one is compared with. */
  readonly baseline?: string;
  /** subject p99 / baseline p99, when there is a baseline. */
  readonly ratio?: number;
  /** The goal from the issue and anything else worth saying. */
  readonly note?: string;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

export function summarize(name: string, samples: readonly number[], extra: Partial<BenchRow> = {}): BenchRow {
  const sorted = [...samples].sort((a, b) => a - b);
  return { name, samples: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), ...extra };
}

/** Adds `baseline` and `ratio` to a subject row. */
export function compare(subject: BenchRow, baseline: BenchRow): BenchRow {
  return { ...subject, baseline: baseline.name, ratio: subject.p99 / baseline.p99 };
}

/** Milliseconds since `start` (from process.hrtime.bigint()). */
export function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export function formatTable(rows: readonly BenchRow[]): string {
  const header = ['benchmark', 'n', 'p50', 'p99', 'unit', 'ratio (p99 vs baseline)', 'note'];
  const body = rows.map((r) => [
    r.name,
    String(r.samples),
    r.p50.toFixed(3),
    r.p99.toFixed(3),
    r.unit ?? 'ms',
    r.ratio === undefined ? '' : `${r.ratio.toFixed(2)} vs ${r.baseline ?? ''}`,
    r.note ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}
