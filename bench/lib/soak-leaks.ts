/**
 * The soak's leak rule. Only "settled" samples count: every app open and
 * verified, and no kill or restart in the last few seconds — then the
 * daemon and the emulator serve the same 32 sessions as at any other
 * settled moment, and their descriptors and memory should be the same.
 *
 * Per process incarnation (a restarted daemon or emulator is a new process),
 * comparing the median of its first 3 settled samples with the median of
 * its last 3:
 *   - open fds grew by more than 2           → fd leak;
 *   - VmRSS grew by more than max(16 MiB, 20%) → memory leak.
 * Fewer than 6 settled samples: no verdict (the run was too short to tell).
 */
import type { ProcUsage } from './proc-status.js';
import { median } from './stats.js';

export const LEAK_RULE = { fdGrowth: 2, rssGrowthBytes: 16 << 20, rssGrowthFraction: 0.2, window: 3, minSamples: 6 };

export interface LeakVerdict {
  process: string;
  pid: number;
  samples: number;
  first: { rssBytes: number; rssAnonBytes: number; fds: number };
  last: { rssBytes: number; rssAnonBytes: number; fds: number };
  /** Least-squares slope of VmRSS over the settled samples, MiB per minute. */
  rssSlopeMiBPerMin: number;
  verdict: 'flat' | 'fd leak' | 'rss growth' | 'fd leak, rss growth' | 'too few samples';
}

function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

/** `samples`: settled samples of one role (daemon or emulator), in time order, t in seconds. */
export function leakVerdicts(role: string, samples: ReadonlyArray<{ t: number; usage: ProcUsage }>): LeakVerdict[] {
  const byPid = new Map<number, Array<{ t: number; usage: ProcUsage }>>();
  for (const sample of samples) byPid.set(sample.usage.pid, [...(byPid.get(sample.usage.pid) ?? []), sample]);
  return [...byPid].map(([pid, list], incarnation) => {
    const summary = (part: typeof list) => ({
      rssBytes: median(part.map((s) => s.usage.rssBytes)),
      rssAnonBytes: median(part.map((s) => s.usage.rssAnonBytes)),
      fds: median(part.map((s) => s.usage.fds)),
    });
    const first = summary(list.slice(0, LEAK_RULE.window));
    const last = summary(list.slice(-LEAK_RULE.window));
    const process = `${role} #${incarnation + 1}`;
    const rssSlopeMiBPerMin = slope(list.map((s) => [s.t / 60, s.usage.rssBytes / 2 ** 20]));
    if (list.length < LEAK_RULE.minSamples) return { process, pid, samples: list.length, first, last, rssSlopeMiBPerMin, verdict: 'too few samples' };
    const fdLeak = last.fds - first.fds > LEAK_RULE.fdGrowth;
    const rssGrowth = last.rssBytes - first.rssBytes > Math.max(LEAK_RULE.rssGrowthBytes, LEAK_RULE.rssGrowthFraction * first.rssBytes);
    const verdict = fdLeak && rssGrowth ? 'fd leak, rss growth' : fdLeak ? 'fd leak' : rssGrowth ? 'rss growth' : 'flat';
    return { process, pid, samples: list.length, first, last, rssSlopeMiBPerMin, verdict };
  });
}
