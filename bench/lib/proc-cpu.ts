/**
 * CPU time of another process (or of some of this process's threads) from
 * /proc, to charge a server's cost to the work it did:
 *  - /proc/<pid>/task/<tid>/schedstat, first field: nanoseconds on a CPU,
 *    exact, but only for threads alive now (threads that exited are lost);
 *  - /proc/<pid>/stat utime + stime: whole process including dead threads,
 *    but in clock ticks (USER_HZ = 100, i.e. 10 ms) — the fallback.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** USER_HZ: the unit of utime/stime; 100 on every Linux ABI Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

export type CpuSource = 'schedstat' | 'stat';

export function threadIds(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map(Number);
}

function threadCpuNs(pid: number, tid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return 0; // the thread exited between readdir and read
  }
}

function statCpuNs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start at ") ".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  return (ticks * 1e9) / CLOCK_TICKS_PER_SECOND;
}

let schedstatAvailable: boolean | undefined;

export interface ThreadFilter {
  /** Count only these threads (e.g. the ones a server started). */
  onlyTids?: readonly number[];
  /** Leave these threads out (e.g. the thread running the client). */
  excludeTids?: readonly number[];
}

/** Nanoseconds of CPU used so far by `pid`, or by some of its threads. */
export function processCpuNs(pid: number, options: ThreadFilter = {}): { cpuNs: number; source: CpuSource } {
  schedstatAvailable ??= (() => {
    try {
      readFileSync(`/proc/${process.pid}/schedstat`);
      return true;
    } catch {
      return false;
    }
  })();
  const exclude = options.excludeTids ?? [];
  const only = options.onlyTids;
  if (!schedstatAvailable) {
    if (exclude.length > 0 || only) throw new Error('per-thread CPU time needs /proc/<pid>/task/<tid>/schedstat');
    return { cpuNs: statCpuNs(pid), source: 'stat' };
  }
  let cpuNs = 0;
  for (const tid of only ?? threadIds(pid)) if (!exclude.includes(tid)) cpuNs += threadCpuNs(pid, tid);
  return { cpuNs, source: 'schedstat' };
}

export interface CpuSample {
  cpuNs: number;
  wallNs: number;
  /** cpuNs / wallNs * 100: 100 = one core busy all the time. */
  percentOfCore: number;
  source: CpuSource;
}

/** Measures the CPU a process (minus some threads) uses between start() and stop(). */
export class CpuMeter {
  private startCpuNs = 0;
  private startWallNs = 0n;

  constructor(
    readonly pid: number,
    private readonly options: ThreadFilter = {},
  ) {}

  start(): void {
    this.startWallNs = process.hrtime.bigint();
    this.startCpuNs = processCpuNs(this.pid, this.options).cpuNs;
  }

  stop(): CpuSample {
    const { cpuNs, source } = processCpuNs(this.pid, this.options);
    const wallNs = Number(process.hrtime.bigint() - this.startWallNs);
    const used = cpuNs - this.startCpuNs;
    return { cpuNs: used, wallNs, percentOfCore: (used / wallNs) * 100, source };
  }
}
