/** Sizes on the command line: 4096, 512K, 64M, 2G, 1T (powers of 1024). */
const SUFFIX_SHIFT: Record<string, number> = { '': 0, K: 10, M: 20, G: 30, T: 40 };

export function parseSizeBytes(text: string): number {
  const match = /^(\d+)([KMGT]?)(i?B)?$/i.exec(text.trim());
  if (!match) throw new RangeError(`not a size: ${JSON.stringify(text)} (use e.g. 4096, 512K, 64M, 2G)`);
  const bytes = Number(match[1]) * 2 ** SUFFIX_SHIFT[match[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`size too large: ${text}`);
  return bytes;
}

export function formatBytes(bytes: number): string {
  for (const [suffix, shift] of [['T', 40], ['G', 30], ['M', 20], ['K', 10]] as const) {
    if (bytes >= 2 ** shift && bytes % 2 ** shift === 0) return `${bytes / 2 ** shift}${suffix}`;
  }
  return String(bytes);
}
