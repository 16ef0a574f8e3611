/**
 * Memory and descriptors of another process from /proc, to tell a leak from
 * a steady state over a long run. VmRSS is what the process has resident;
 * RssAnon is its heap and stacks (a leak in the process shows there), while
 * RssShmem/RssFile are shared mappings (for the emulator: applications' DMA
 * memory and the BAR pages it maps).
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcUsage {
  pid: number;
  rssBytes: number;
  rssAnonBytes: number;
  rssShmemBytes: number;
  fds: number;
  threads: number;
}

function kib(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) * 1024 : NaN;
}

/** Undefined when the process is gone. */
export function procUsage(pid: number): ProcUsage | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return {
      pid,
      rssBytes: kib(status, 'VmRSS'),
      rssAnonBytes: kib(status, 'RssAnon'),
      rssShmemBytes: kib(status, 'RssShmem'),
      fds: readdirSync(`/proc/${pid}/fd`).length,
      threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? NaN),
    };
  } catch {
    return undefined;
  }
}
