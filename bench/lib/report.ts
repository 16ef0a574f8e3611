/**
 * Printing benchmark results: an aligned text table for people and one JSON
 * document for machines. Numbers are formatted here, never rounded in the
 * data.
 */

export type Cell = string | number;

/** The first `labelColumns` columns are left-aligned text, the rest right-aligned values. */
export function formatTable(headers: readonly string[], rows: readonly Cell[][], labelColumns = 1): string {
  const text = [headers.map(String), ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...text.map((row) => (row[column] ?? '').length)));
  const line = (row: string[]) =>
    row.map((cell, column) => (column < labelColumns ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd();
  return [line(text[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...text.slice(1).map(line)].join('\n');
}

/** Nanoseconds as ns / µs / ms with three significant digits. */
export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return '-';
  if (ns < 1_000) return `${ns.toFixed(0)}ns`;
  if (ns < 1_000_000) return `${(ns / 1_000).toPrecision(3)}µs`;
  return `${(ns / 1_000_000).toPrecision(3)}ms`;
}

/** A count with thousands separators (IOPS). */
export function formatCount(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-';
}

export function formatPercent(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(value < 10 ? 2 : 1)}%` : '-';
}

/** "median (min–max)" for a value over several runs. */
export function formatSpread(s: { median: number; min: number; max: number; runs: number }, format: (v: number) => string): string {
  if (s.runs <= 1) return format(s.median);
  return `${format(s.median)} (${format(s.min)}–${format(s.max)})`;
}
