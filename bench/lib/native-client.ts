/**
 * The native benchmark client (emulator/native/bench_client.cc) with types:
 * a C++ loop that drives one NVMe queue pair, so the measured cost is the
 * controller's and not the JS driver's, and a pread/pwrite loop as the
 * kernel-path reference.
 */
import { StorageError } from '../../libstorage/errors.js';
import { native } from '../../libstorage/native.js';
import type { BenchVf } from './emulator.js';

export interface LatencySummary {
  count: number;
  minNs: number;
  meanNs: number;
  p50Ns: number;
  p99Ns: number;
  p999Ns: number;
  maxNs: number;
}

export interface ClientResult {
  submitted: number;
  completed: number;
  elapsedNs: number;
  /** CPU time of the thread that ran the loop (CLOCK_THREAD_CPUTIME_ID). */
  clientCpuNs: number;
  /** The client's work without its waiting: completion seen -> next doorbell rung (file runs: time in the syscalls). */
  clientBusyNs: number;
  /** Completions with a non-success status (file runs: failed syscalls). */
  statusErrors: number;
  /** Stamped reads whose data was not the block asked for. */
  verifyErrors: number;
  /** Completions for a command id that was not outstanding. */
  strayCompletions: number;
  /** Wake eventfd writes: doorbells rung while the poller slept. */
  wakeSignals: number;
  latency: LatencySummary;
}

interface RawResult extends Partial<ClientResult> {
  latency: LatencySummary;
  timedOut: boolean;
  error?: string;
  sqTail?: number;
  cqHead?: number;
  phase?: number;
  nextLba?: number;
}

export interface QueueRunOptions {
  op: 'read' | 'write';
  queueDepth: number;
  /** Stop after this many commands, or after durationMs, whichever first. */
  commands?: number;
  durationMs?: number;
  /** LBAs in order from where the last sequential run stopped (default: uniform random). */
  sequential?: boolean;
  /** Writes fill each block from its LBA; reads check it (costs a 4 KiB pass per command). */
  stamp?: boolean;
  seed?: number;
  /** Longest wait for any completion before the run gives up. */
  timeoutMs?: number;
}

const benchQueueRun = native.benchQueueRun as (options: Record<string, unknown>) => RawResult;
const benchFileRun = native.benchFileRun as (options: Record<string, unknown>) => RawResult;

function finish(raw: RawResult): ClientResult {
  if (raw.timedOut || raw.error) throw new StorageError(raw.timedOut ? 'ETIMEDOUT' : 'EIO', `bench client: ${raw.error}`);
  return {
    submitted: raw.submitted ?? 0,
    completed: raw.completed ?? 0,
    elapsedNs: raw.elapsedNs ?? 0,
    clientCpuNs: raw.clientCpuNs ?? 0,
    clientBusyNs: raw.clientBusyNs ?? 0,
    statusErrors: raw.statusErrors ?? 0,
    verifyErrors: raw.verifyErrors ?? 0,
    strayCompletions: raw.strayCompletions ?? 0,
    wakeSignals: raw.wakeSignals ?? 0,
    latency: raw.latency,
  };
}

/**
 * Drives the VF's queue pair from C++ on this thread (the event loop is
 * blocked for the run). Give it a queue pair nothing else has used: ring
 * positions are carried from one run to the next here.
 */
export class NativeQueueClient {
  private sqTail = 0;
  private cqHead = 0;
  private phase = 1;
  private nextLba = 0;
  private broken: StorageError | undefined;

  constructor(private readonly vf: BenchVf) {}

  run(options: QueueRunOptions): ClientResult {
    if (this.broken) throw this.broken;
    const { vf } = this;
    const raw = benchQueueRun({
      bar: vf.transport.bar,
      sqRing: vf.queue.sqRing.bytes,
      cqRing: vf.queue.cqRing.bytes,
      data: vf.data.bytes,
      dataIova: vf.data.iova,
      qid: vf.queue.sqid,
      entries: vf.queue.entries,
      nsid: vf.nsid,
      lbaCount: vf.lbaCount,
      wakeFd: vf.transport.wakeFd,
      sqTail: this.sqTail,
      cqHead: this.cqHead,
      phase: this.phase,
      firstLba: this.nextLba,
      ...options,
    });
    this.sqTail = raw.sqTail ?? 0;
    this.cqHead = raw.cqHead ?? 0;
    this.phase = raw.phase ?? 1;
    this.nextLba = (raw.nextLba ?? 0) % vf.lbaCount;
    try {
      return finish(raw);
    } catch (error) {
      // Commands may still be outstanding: the queue cannot be reused.
      if (raw.timedOut) this.broken = error as StorageError;
      throw error;
    }
  }
}

export interface FileRunOptions {
  fd: number;
  op: 'read' | 'write';
  /** File size in 4 KiB blocks; offsets are uniform random below it. */
  lbaCount: number;
  commands?: number;
  durationMs?: number;
  seed?: number;
}

/** pread/pwrite of 4 KiB at random offsets, one at a time, on this thread. */
export function runFileClient(options: FileRunOptions): ClientResult {
  return finish(benchFileRun({ ...options }));
}

const benchCoreToCore = native.benchCoreToCore as (options: { rounds?: number }) => { rounds: number; roundTripNs: number };

/**
 * Round trip of one cache line between CPU 0 and CPU 1 (two pinned threads,
 * at most 1 s): the floor under every command of a queue pair whose two ends
 * run on different cores. NaN when the peer thread never ran.
 */
export function coreToCoreRoundTripNs(rounds = 100_000): number {
  return benchCoreToCore({ rounds }).roundTripNs;
}
