/**
 * Summaries across repeated runs. A noisy machine (2 cores shared with the
 * system under test) makes single runs misleading: quote the median and show
 * the spread so a reader can see how much to trust it.
 */

export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function spread(values: readonly number[]): Spread {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return { median: NaN, min: NaN, max: NaN, runs: 0 };
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite), runs: finite.length };
}

/** Per-run records (same keys) -> one Spread per numeric key. */
export function spreadByKey<T extends Record<string, number>>(records: readonly T[]): Record<keyof T, Spread> {
  const out = {} as Record<keyof T, Spread>;
  if (records.length === 0) return out;
  for (const key of Object.keys(records[0]!) as Array<keyof T>) out[key] = spread(records.map((r) => r[key]));
  return out;
}
