/**
 * What the rest of the machine is doing: on a small shared host another
 * process's burst decides a benchmark's result (two spinning threads on one
 * core lose 100× at queue depth 1). Benchmarks wait for a quiet moment before
 * each phase and record the CPU others used during it, so a disturbed run is
 * visible instead of silently averaged in.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { processCpuNs } from './proc-cpu.js';

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ, the unit of /proc/stat

/** CPU time spent not idle, all CPUs together, since boot (10 ms resolution). */
export function machineBusyNs(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...: everything but idle and iowait.
  const [user, nice, system, , , irq, softirq, steal] = fields;
  return ((user! + nice! + system! + irq! + softirq! + (steal ?? 0)) * 1e9) / CLOCK_TICKS_PER_SECOND;
}

export interface QuietWait {
  waitedMs: number;
  /** Busy CPU in the last window, % of one core (all processes, ours included). */
  busyPercentOfCore: number;
  quiet: boolean;
}

/**
 * Waits until the whole machine used at most `maxBusyPercent` of one core
 * over a `windowMs` window, or `maxWaitMs` passed (then quiet = false).
 */
export async function waitForQuiet(options: { maxBusyPercent?: number; windowMs?: number; maxWaitMs?: number } = {}): Promise<QuietWait> {
  const maxBusy = options.maxBusyPercent ?? 15;
  const windowMs = options.windowMs ?? 250;
  const maxWaitMs = options.maxWaitMs ?? 20_000;
  const started = Date.now();
  for (;;) {
    const before = machineBusyNs();
    const windowStarted = process.hrtime.bigint();
    await sleep(windowMs);
    const busy = ((machineBusyNs() - before) / Number(process.hrtime.bigint() - windowStarted)) * 100;
    const waitedMs = Date.now() - started;
    if (busy <= maxBusy) return { waitedMs, busyPercentOfCore: busy, quiet: true };
    if (waitedMs >= maxWaitMs) return { waitedMs, busyPercentOfCore: busy, quiet: false };
  }
}

/** CPU that processes other than `ours` used between start() and stop(), % of one core. */
export class OthersCpuMeter {
  private readonly pids: number[];
  private machineNs = 0;
  private oursNs = 0;
  private wallNs = 0n;

  constructor(ours: readonly number[]) {
    this.pids = [...new Set(ours)];
  }

  private ours(): number {
    return this.pids.reduce((sum, pid) => sum + processCpuNs(pid).cpuNs, 0);
  }

  start(): void {
    this.oursNs = this.ours();
    this.machineNs = machineBusyNs();
    this.wallNs = process.hrtime.bigint();
  }

  stopPercentOfCore(): number {
    const machine = machineBusyNs() - this.machineNs;
    const others = machine - (this.ours() - this.oursNs);
    // /proc/stat counts 10 ms ticks: small negative values are rounding.
    return Math.max(0, (others / Number(process.hrtime.bigint() - this.wallNs)) * 100);
  }
}
