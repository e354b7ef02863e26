/**
 * Medians over rounds and the side-by-side table the benchmark prints.
 */
import type { FioResult } from './fio-run.js';

export interface RowResult {
  readonly row: string;
  readonly plinth: FioResult;
  readonly nbdkit: FioResult;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] ?? Number.NaN;
  if (sorted.length % 2 === 1) return upper;
  return ((sorted[middle - 1] ?? Number.NaN) + upper) / 2;
}

/** Each metric's median separately (a round's p99 need not be its IOPS median). */
export function medianResult(results: readonly FioResult[]): FioResult {
  return {
    iops: median(results.map((r) => r.iops)),
    mibPerSec: median(results.map((r) => r.mibPerSec)),
    p99Us: median(results.map((r) => r.p99Us)),
  };
}

export function formatNumber(value: number, fractionDigits: number): string {
  if (!Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', { minimumFractionDigits: fractionDigits, maximumFractionDigits: fractionDigits });
}

export function formatRatio(ratio: number): string {
  return Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : '-';
}

export function cells(result: FioResult): string[] {
  return [formatNumber(result.iops, 0), formatNumber(result.mibPerSec, 1), formatNumber(result.p99Us, 0)];
}

export function renderTable(rows: readonly RowResult[]): string {
  const header = ['row', 'plinth IOPS', 'MiB/s', 'p99 us', 'nbdkit IOPS', 'MiB/s', 'p99 us', 'plinth/nbdkit'];
  const body = rows.map((row) => [
    row.row,
    ...cells(row.plinth),
    ...cells(row.nbdkit),
    formatRatio(row.plinth.iops / row.nbdkit.iops),
  ]);
  return renderAligned(header, body);
}

/** Columns padded to their widest cell: the first left-aligned, the rest right-aligned. */
export function renderAligned(header: readonly string[], body: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((line) => (line[column] ?? '').length)));
  const render = (line: readonly string[]): string =>
    line
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)))
      .join('  ');
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [render(header), rule, ...body.map(render)].join('\n');
}
