/**
 * An fio-like load generator for the data plane: random or sequential reads,
 * writes or a mix at a fixed block size and queue depth on a VSA, driven
 * through the library's own API — `await vsa.read()` loops (promise) or
 * `vsa.readCallback()` chains (callback) — on the main thread or on worker
 * threads with a queue pair each. In the same invocation the same workload
 * runs through node:fs on a page-cached file of the same size (FileHandle
 * promises and the fs callback API) and through fio when it is installed, so
 * every number comes with its kernel-path reference.
 *
 *   node --import tsx bench/vsa.ts [--rw randread] [--bs 4k] [--qd 32] [--workers 0]
 *        [--runtime 5] [--size 256M] [--api both|promise|callback] [--rwmixread 70]
 *        [--repeat 1] [--quick] [--json] [--no-fs] [--no-fio]
 *        [--quiet-wait 3] [--max-others 25] [--retries 2] [--spin-us 50]
 *
 * --rw, --bs and --qd take comma lists (every combination runs). --workers 0
 * drives one queue pair from the main thread; N > 0 starts N workers, each
 * on its own queue pair (and, for node:fs, its own FileHandle / fd). Output:
 * a table on stdout; with --json the table goes to stderr and stdout is one
 * JSON document on one line.
 *
 * Per run: IOPS, MB/s, latency p50/p99/p99.9 (submission to completion as
 * the application sees it, one clock read per I/O into a preallocated
 * histogram), CPU per I/O of this process (process.cpuUsage: every thread,
 * polling included) and of the emulator process (/proc), and the CPU the
 * rest of the machine used meanwhile (noise). Each run starts once the
 * machine is quiet (waiting at most --quiet-wait seconds) and is done again
 * (up to --retries times) when other processes used more than --max-others %
 * of a core during it; the count of discarded runs is printed. Repetitions
 * (--repeat) interleave the engines and the table quotes medians.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import * as fs from 'node:fs';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { PfAdmin } from '../controlplane/pf/pf-admin.js';
import { parseSizeBytes } from '../controlplane/units.js';
import { controllerSocketName } from '../emulator/server.js';
import { NvmeController } from '../libstorage/driver/controller.js';
import { EmuTransport } from '../libstorage/transport/emu/emu-transport.js';
import { open, openQueue, type QueueHandle, type Vsa, type VsaQueue } from '../libstorage/index.js';
import { startEmulatorProcess, type BenchEmulator } from './lib/emulator.js';
import { LatencyHistogram } from './lib/latency-histogram.js';
import { machineBusyNs, waitForQuiet } from './lib/machine-load.js';
import { CpuMeter, processCpuNs, type CpuSource } from './lib/proc-cpu.js';
import { formatCount, formatNs, formatPercent, formatSpread, formatTable, type Cell } from './lib/report.js';
import { spread, type Spread } from './lib/stats.js';

const BLOCK_BYTES = 4096;
const CNTLID = 1;
/** Per VF: at most 9 VQ (admin queue included) and 5 VI. */
const MAX_VQ = 9;
const MAX_VI = 5;

type Rw = 'randread' | 'randwrite' | 'read' | 'write' | 'randrw' | 'rw';
const RW_VALUES: readonly Rw[] = ['randread', 'randwrite', 'read', 'write', 'randrw', 'rw'];

type Engine = 'offpath-promise' | 'offpath-callback' | 'fs-promise' | 'fs-callback' | 'fio';

const ENGINE_LABEL: Record<Engine, string> = {
  'offpath-promise': 'offpath await vsa.read/write',
  'offpath-callback': 'offpath vsa.read/writeCallback',
  'fs-promise': 'node:fs FileHandle.read/write',
  'fs-callback': 'node:fs fs.read/write (callback)',
  fio: 'fio',
};

interface Workload {
  rw: Rw;
  bs: number;
  qd: number;
  /** Percent of I/Os that are reads (100 for read workloads, 0 for writes). */
  readPercent: number;
  random: boolean;
  sizeBytes: number;
}

/** One thread's counters over the measured window. */
interface ThreadSnapshot {
  reads: number;
  writes: number;
  /** offpath: event-loop polls of the CQ, and those that found nothing. */
  polls: number;
  emptyPolls: number;
  errors: number;
  firstError: string | null;
  hist: { counts: Uint32Array; sumNs: number; maxNs: number };
}

// ---------------------------------------------------------------------------
// The load: runs on the main thread (--workers 0) or in each worker.

/**
 * Keeps `qd` I/Os in flight through one engine until stopped. The loops of
 * each engine are written out separately so each call site stays
 * monomorphic (the engines run one after the other in the same isolate).
 */
class LoadRunner {
  private readonly hist = new LatencyHistogram();
  private reads = 0;
  private writes = 0;
  private errors = 0;
  private firstError: string | null = null;
  private stopping = false;
  private active = 0;
  private idle: (() => void) | undefined;
  private rng = 1;
  private cursor = 0;
  private blocks = 0;
  private bs = 0;
  private readPercent = 100;
  private random = true;
  private sizeBytes = 0;
  private dmaBufs: Uint8Array[] = [];
  private plainBufs: Buffer[] = [];
  private slotLast = new Float64Array(1);
  private slotRead = new Uint8Array(1);
  private callbacks: Array<(error: Error | null) => void> = [];
  private fsCallbacks: Array<(error: Error | null, bytes: number) => void> = [];
  private fileHandle: FileHandle | undefined;
  private fd = -1;
  private polls = 0;
  private emptyPolls = 0;

  constructor(
    private readonly queue: VsaQueue | undefined,
    private readonly filePath: string,
    private readonly threadIndex: number,
    private readonly threads: number,
  ) {}

  async start(engine: Exclude<Engine, 'fio'>, w: Workload, seed: number): Promise<void> {
    this.hist.reset();
    this.reads = this.writes = this.errors = 0;
    this.firstError = null;
    this.stopping = false;
    this.active = 0;
    this.rng = (seed * 2654435761 + this.threadIndex * 40503 + 1) >>> 0 || 1;
    this.bs = w.bs;
    this.blocks = Math.floor(w.sizeBytes / w.bs);
    this.sizeBytes = this.blocks * w.bs;
    this.readPercent = w.readPercent;
    this.random = w.random;
    // Sequential threads start spread over the space.
    this.cursor = Math.floor((this.blocks * this.threadIndex) / this.threads) * w.bs;
    this.slotLast = new Float64Array(w.qd);
    this.slotRead = new Uint8Array(w.qd);
    if (engine === 'offpath-promise' || engine === 'offpath-callback') {
      const queue = this.queue!;
      this.dmaBufs = Array.from({ length: w.qd }, (_, i) => queue.alloc(w.bs).fill(0x40 + (i & 63)));
      this.countPolls(queue);
    } else {
      this.plainBufs = Array.from({ length: w.qd }, (_, i) => Buffer.alloc(w.bs, 0x40 + (i & 63)));
      if (engine === 'fs-promise') this.fileHandle = await openFile(this.filePath, 'r+');
      else this.fd = fs.openSync(this.filePath, 'r+');
    }
    const now = performance.now();
    this.slotLast.fill(now);
    switch (engine) {
      case 'offpath-promise':
        for (let slot = 0; slot < w.qd; slot++) this.track(this.offpathPromiseLoop(slot));
        break;
      case 'offpath-callback':
        this.callbacks = Array.from({ length: w.qd }, (_, slot) => (error: Error | null) => this.offpathDone(slot, error));
        this.active = w.qd;
        for (let slot = 0; slot < w.qd; slot++) this.offpathSubmit(slot);
        break;
      case 'fs-promise':
        for (let slot = 0; slot < w.qd; slot++) this.track(this.filePromiseLoop(slot));
        break;
      case 'fs-callback':
        this.fsCallbacks = Array.from({ length: w.qd }, (_, slot) => (error: Error | null, bytes: number) => this.fsDone(slot, error, bytes));
        this.active = w.qd;
        for (let slot = 0; slot < w.qd; slot++) this.fsSubmit(slot);
        break;
    }
  }

  /** Starts the measured window: counters and histogram from zero. */
  begin(): void {
    this.hist.reset();
    this.reads = this.writes = this.polls = this.emptyPolls = 0;
  }

  end(): ThreadSnapshot {
    return {
      reads: this.reads,
      writes: this.writes,
      polls: this.polls,
      emptyPolls: this.emptyPolls,
      errors: this.errors,
      firstError: this.firstError,
      hist: this.hist.snapshot(),
    };
  }

  /**
   * Counts the queue's polls (it polls once per event-loop turn while I/O is
   * outstanding): an own-property wrapper of the public poll(), a few ns per
   * turn, nothing per I/O. I/Os per poll is how well the turn's fixed cost
   * is shared.
   */
  private countPolls(queue: VsaQueue): void {
    const poll = Object.getPrototypeOf(queue).poll as () => number;
    Object.defineProperty(queue, 'poll', {
      configurable: true,
      writable: true,
      value: () => {
        const reaped = poll.call(queue);
        this.polls++;
        if (reaped === 0) this.emptyPolls++;
        return reaped;
      },
    });
  }

  /** Lets every loop finish its I/O in flight, then releases buffers and files. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.active > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    this.idle = undefined;
    if (this.queue && Object.hasOwn(this.queue, 'poll')) delete (this.queue as { poll?: unknown }).poll;
    for (const buffer of this.dmaBufs) this.queue!.free(buffer);
    this.dmaBufs = [];
    this.plainBufs = [];
    this.callbacks = [];
    this.fsCallbacks = [];
    if (this.fileHandle) await this.fileHandle.close();
    this.fileHandle = undefined;
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  // --- shared per-I/O pieces (no allocation) ---------------------------------

  private nextRandom(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng;
  }

  private nextOffset(): number {
    if (this.random) return (this.nextRandom() % this.blocks) * this.bs;
    const offset = this.cursor;
    this.cursor = offset + this.bs >= this.sizeBytes ? 0 : offset + this.bs;
    return offset;
  }

  private pickRead(): boolean {
    const percent = this.readPercent;
    if (percent >= 100) return true;
    if (percent <= 0) return false;
    return this.nextRandom() % 100 < percent;
  }

  /** Latency since the slot's last completion (= this I/O's submission, same turn). */
  private completed(slot: number, read: boolean): void {
    const t = performance.now();
    this.hist.record((t - this.slotLast[slot]!) * 1e6);
    this.slotLast[slot] = t;
    if (read) this.reads++;
    else this.writes++;
  }

  private failed(error: unknown): void {
    this.errors++;
    this.firstError ??= error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    this.stopping = true;
  }

  private track(loop: Promise<void>): void {
    this.active++;
    loop.catch((error) => this.failed(error)).finally(() => this.loopEnded());
  }

  private loopEnded(): void {
    if (--this.active === 0) this.idle?.();
  }

  // --- offpath, promises ----------------------------------------------------

  private async offpathPromiseLoop(slot: number): Promise<void> {
    const queue = this.queue!;
    const buffer = this.dmaBufs[slot]!;
    while (!this.stopping) {
      const offset = this.nextOffset();
      const read = this.pickRead();
      if (read) await queue.read(offset, buffer);
      else await queue.write(offset, buffer);
      this.completed(slot, read);
    }
  }

  // --- offpath, callbacks ---------------------------------------------------

  private offpathSubmit(slot: number): void {
    const offset = this.nextOffset();
    const read = this.pickRead();
    this.slotRead[slot] = read ? 1 : 0;
    try {
      if (read) this.queue!.readCallback(offset, this.dmaBufs[slot]!, this.callbacks[slot]!);
      else this.queue!.writeCallback(offset, this.dmaBufs[slot]!, this.callbacks[slot]!);
    } catch (error) {
      this.failed(error);
      this.loopEnded();
    }
  }

  private offpathDone(slot: number, error: Error | null): void {
    if (error !== null) {
      this.failed(error);
      this.loopEnded();
      return;
    }
    this.completed(slot, this.slotRead[slot] === 1);
    if (this.stopping) this.loopEnded();
    else this.offpathSubmit(slot);
  }

  // --- node:fs, FileHandle promises -----------------------------------------

  private async filePromiseLoop(slot: number): Promise<void> {
    const file = this.fileHandle!;
    const buffer = this.plainBufs[slot]!;
    const bs = this.bs;
    while (!this.stopping) {
      const offset = this.nextOffset();
      const read = this.pickRead();
      if (read) await file.read(buffer, 0, bs, offset);
      else await file.write(buffer, 0, bs, offset);
      this.completed(slot, read);
    }
  }

  // --- node:fs, callbacks ---------------------------------------------------

  private fsSubmit(slot: number): void {
    const offset = this.nextOffset();
    const read = this.pickRead();
    this.slotRead[slot] = read ? 1 : 0;
    if (read) fs.read(this.fd, this.plainBufs[slot]!, 0, this.bs, offset, this.fsCallbacks[slot]!);
    else fs.write(this.fd, this.plainBufs[slot]!, 0, this.bs, offset, this.fsCallbacks[slot]!);
  }

  private fsDone(slot: number, error: Error | null, bytes: number): void {
    if (error !== null || bytes !== this.bs) {
      this.failed(error ?? new Error(`short transfer: ${bytes} of ${this.bs} bytes`));
      this.loopEnded();
      return;
    }
    this.completed(slot, this.slotRead[slot] === 1);
    if (this.stopping) this.loopEnded();
    else this.fsSubmit(slot);
  }
}

// ---------------------------------------------------------------------------
// Worker side: one LoadRunner on the worker's own queue pair.

interface WorkerSetup {
  entry: string;
  role: 'vsa-bench-load';
  handle: QueueHandle;
  filePath: string;
  threadIndex: number;
  threads: number;
}

type Command =
  | { id: number; cmd: 'start'; engine: Exclude<Engine, 'fio'>; workload: Workload; seed: number }
  | { id: number; cmd: 'begin' | 'end' | 'stop' | 'close' };

async function workerMain(setup: WorkerSetup): Promise<void> {
  const queue = openQueue(setup.handle);
  const runner = new LoadRunner(queue, setup.filePath, setup.threadIndex, setup.threads);
  const port = parentPort!;
  port.on('message', async (message: Command) => {
    try {
      let result: unknown;
      switch (message.cmd) {
        case 'start':
          await runner.start(message.engine, message.workload, message.seed);
          break;
        case 'begin':
          runner.begin();
          break;
        case 'end':
          result = runner.end();
          break;
        case 'stop':
          await runner.stop();
          break;
        case 'close':
          await queue.close();
          port.postMessage({ id: message.id, ok: true });
          port.close();
          return;
      }
      port.postMessage({ id: message.id, ok: true, result });
    } catch (error) {
      port.postMessage({ id: message.id, ok: false, error: error instanceof Error ? error.stack : String(error) });
    }
  });
}

// ---------------------------------------------------------------------------
// Main side: the same interface over a local runner or a worker.

interface LoadThread {
  start(engine: Exclude<Engine, 'fio'>, workload: Workload, seed: number): Promise<void>;
  begin(): Promise<void>;
  end(): Promise<ThreadSnapshot>;
  stop(): Promise<void>;
  close(): Promise<void>;
}

class LocalThread implements LoadThread {
  constructor(private readonly runner: LoadRunner) {}
  start(engine: Exclude<Engine, 'fio'>, workload: Workload, seed: number) {
    return this.runner.start(engine, workload, seed);
  }
  async begin() {
    this.runner.begin();
  }
  async end() {
    return this.runner.end();
  }
  stop() {
    return this.runner.stop();
  }
  async close() {}
}

class WorkerThread implements LoadThread {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: any) => void; reject: (error: Error) => void }>();
  private readonly worker: Worker;

  constructor(setup: Omit<WorkerSetup, 'entry' | 'role'>) {
    const data: WorkerSetup = { ...setup, entry: import.meta.url, role: 'vsa-bench-load' };
    this.worker = new Worker(new URL('./lib/ts-worker-entry.mjs', import.meta.url), { workerData: data });
    this.worker.on('message', (message: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.ok) waiter?.resolve(message.result);
      else waiter?.reject(new Error(`worker: ${message.error}`));
    });
    this.worker.on('error', (error) => {
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    });
  }

  private call<T>(command: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...command });
    });
  }

  start(engine: Exclude<Engine, 'fio'>, workload: Workload, seed: number) {
    return this.call<void>({ cmd: 'start', engine, workload, seed });
  }
  begin() {
    return this.call<void>({ cmd: 'begin' });
  }
  end() {
    return this.call<ThreadSnapshot>({ cmd: 'end' });
  }
  stop() {
    return this.call<void>({ cmd: 'stop' });
  }
  async close() {
    await this.call<void>({ cmd: 'close' });
    await new Promise<void>((resolve) => (this.worker.threadId === -1 ? resolve() : this.worker.once('exit', () => resolve())));
  }
}

// ---------------------------------------------------------------------------
// Measuring

/** One engine, one workload, one repetition. NaN where a number does not apply (JSON: null). */
type RunRecord = {
  iops: number;
  mbPerSecond: number;
  latencyP50Ns: number;
  latencyP99Ns: number;
  latencyP999Ns: number;
  latencyMeanNs: number;
  /** CPU of this process (all threads) per I/O; for fio, fio's own CPU. */
  appCpuNsPerIo: number;
  emulatorCpuNsPerIo: number;
  /** This process's CPU as % of one core (100 = one core busy). */
  appCpuPercentOfCore: number;
  emulatorCpuPercentOfCore: number;
  /** CPU the rest of the machine used during the run, % of one core. */
  othersCpuPercentOfCore: number;
  /** offpath: completions per event-loop poll of the CQ, and % of polls that found none. */
  iosPerPoll: number;
  emptyPollPercent: number;
  ios: number;
  elapsedMs: number;
};

interface Options {
  rws: Rw[];
  blockSizes: number[];
  queueDepths: number[];
  workers: number;
  runtimeMs: number;
  warmupMs: number;
  sizeBytes: number;
  readPercent: number;
  apis: Array<'promise' | 'callback'>;
  repeat: number;
  json: boolean;
  fs: boolean;
  fio: boolean;
  quietWaitMs: number;
  /** A run during which other processes used more than this (% of a core) is done again. */
  maxOthersPercent: number;
  retries: number;
  spinUs: number;
}

interface FioInfo {
  available: boolean;
  version: string | null;
  ioengine: string | null;
  note: string;
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: bench/vsa.ts [--rw randread|randwrite|read|write|randrw[,...]] [--rwmixread 70] [--bs 4k[,...]] [--qd 32[,...]]\n` +
      `       [--workers N] [--runtime S] [--size 256M] [--api both|promise|callback] [--repeat N] [--quick] [--json]\n` +
      `       [--no-fs] [--no-fio] [--quiet-wait S] [--max-others PCT] [--retries N] [--spin-us US]\n`,
  );
  process.exit(64);
}

function parseOptions(): Options {
  const { values: v } = parseArgs({
    options: {
      rw: { type: 'string', default: 'randread' },
      rwmixread: { type: 'string', default: '70' },
      bs: { type: 'string', default: '4k' },
      qd: { type: 'string', default: '32' },
      workers: { type: 'string', default: '0' },
      runtime: { type: 'string' },
      size: { type: 'string', default: '256M' },
      api: { type: 'string', default: 'both' },
      repeat: { type: 'string', default: '1' },
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'no-fs': { type: 'boolean', default: false },
      'no-fio': { type: 'boolean', default: false },
      'quiet-wait': { type: 'string', default: '3' },
      'max-others': { type: 'string', default: '25' },
      retries: { type: 'string', default: '2' },
      'spin-us': { type: 'string', default: '50' },
    },
  });
  const rws = v.rw.split(',') as Rw[];
  if (rws.some((rw) => !RW_VALUES.includes(rw))) usage(`--rw must be one of ${RW_VALUES.join(', ')}`);
  const blockSizes = v.bs.split(',').map((s) => parseSizeBytes(s));
  if (blockSizes.some((bs) => bs < BLOCK_BYTES || bs % BLOCK_BYTES !== 0 || bs > 1 << 20)) usage('--bs must be a multiple of 4k, at most 1M');
  const queueDepths = v.qd.split(',').map(Number);
  if (queueDepths.some((qd) => !Number.isInteger(qd) || qd < 1 || qd > 1023)) usage('--qd must be 1..1023');
  const workers = Number(v.workers);
  if (!Number.isInteger(workers) || workers < 0 || workers > MAX_VQ - 2) usage(`--workers must be 0..${MAX_VQ - 2} (a VF has ${MAX_VQ} queues, admin and main thread included)`);
  const runtimeS = Number(v.runtime ?? (v.quick ? 1 : 5));
  if (!(runtimeS > 0)) usage('--runtime must be positive (seconds)');
  const sizeBytes = parseSizeBytes(v.size);
  if (sizeBytes < 1 << 20 || sizeBytes % BLOCK_BYTES !== 0) usage('--size must be at least 1M, a multiple of 4k');
  const readPercent = Number(v.rwmixread);
  if (!(readPercent >= 0 && readPercent <= 100)) usage('--rwmixread must be 0..100');
  const apis: Array<'promise' | 'callback'> =
    v.api === 'both' ? ['promise', 'callback'] : v.api === 'promise' || v.api === 'callback' ? [v.api] : usage('--api must be promise, callback or both');
  const repeat = Number(v.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) usage('--repeat must be a positive integer');
  return {
    rws,
    blockSizes,
    queueDepths,
    workers,
    runtimeMs: Math.round(runtimeS * 1000),
    warmupMs: v.quick ? 300 : 1000,
    sizeBytes,
    readPercent,
    apis,
    repeat,
    json: v.json,
    fs: !v['no-fs'],
    fio: !v['no-fio'],
    quietWaitMs: Math.round(Number(v['quiet-wait']) * 1000),
    maxOthersPercent: Number(v['max-others']),
    retries: Number(v.retries),
    spinUs: Number(v['spin-us']),
  };
}

function workloadOf(rw: Rw, bs: number, qd: number, o: Options): Workload {
  const readPercent = rw === 'randread' || rw === 'read' ? 100 : rw === 'randwrite' || rw === 'write' ? 0 : o.readPercent;
  return { rw, bs, qd, readPercent, random: rw.startsWith('rand'), sizeBytes: o.sizeBytes };
}

/** fio, if installed, with io_uring when this kernel lets it run (else psync). */
function probeFio(filePath: string): FioInfo {
  const version = spawnSync('fio', ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    return { available: false, version: null, ioengine: null, note: 'fio is not installed: its rows are skipped (apt-get install fio)' };
  }
  const trial = spawnSync(
    'fio',
    ['--name=probe', '--ioengine=io_uring', `--filename=${filePath}`, '--size=1M', '--rw=randread', '--bs=4k', '--iodepth=4', '--io_size=64k', '--invalidate=0', '--output-format=json'],
    { encoding: 'utf8' },
  );
  let ok = false;
  try {
    ok = trial.status === 0 && JSON.parse(trial.stdout.slice(trial.stdout.indexOf('{'))).jobs[0].error === 0;
  } catch {
    ok = false;
  }
  return ok
    ? { available: true, version: version.stdout.trim(), ioengine: 'io_uring', note: 'fio ioengine=io_uring, iodepth = QD per job' }
    : { available: true, version: version.stdout.trim(), ioengine: 'psync', note: 'io_uring unavailable: fio ioengine=psync (QD 1 per job; --workers jobs)' };
}

async function runFio(info: FioInfo, w: Workload, o: Options, filePath: string): Promise<RunRecord> {
  const jobs = Math.max(1, o.workers);
  const args = [
    '--name=bench',
    `--filename=${filePath}`,
    `--size=${w.sizeBytes}`,
    `--rw=${w.rw}`,
    `--bs=${w.bs}`,
    `--ioengine=${info.ioengine}`,
    `--iodepth=${info.ioengine === 'psync' ? 1 : w.qd}`,
    `--numjobs=${jobs}`,
    '--thread',
    '--group_reporting',
    '--invalidate=0',
    '--time_based',
    `--runtime=${o.runtimeMs}ms`,
    `--ramp_time=${o.warmupMs}ms`,
    '--lat_percentiles=1',
    '--percentile_list=50:99:99.9',
    '--output-format=json',
  ];
  if (w.rw === 'randrw' || w.rw === 'rw') args.push(`--rwmixread=${w.readPercent}`);
  const child = spawn('fio', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`fio exited ${code}: ${stderr}`);
  const job = JSON.parse(stdout.slice(stdout.indexOf('{'))).jobs[0];
  const sides = [job.read, job.write].filter((side) => side.total_ios > 0);
  const ios = sides.reduce((sum, side) => sum + side.total_ios, 0);
  const iops = sides.reduce((sum, side) => sum + side.iops, 0);
  const bytesPerSecond = sides.reduce((sum, side) => sum + side.bw_bytes, 0);
  // Latency percentiles of the first side with I/O (reads in a mix).
  const main = sides[0];
  const percentile = (p: string) => Number(main?.lat_ns?.percentile?.[p] ?? NaN);
  const wallMs = Math.max(...sides.map((side) => Number(side.runtime)));
  // usr_cpu/sys_cpu: % of one CPU, averaged over the jobs; job_runtime: ms, summed over the jobs.
  const jobMs = Number(job.job_runtime ?? wallMs * jobs);
  const cpuNs = ((Number(job.usr_cpu) + Number(job.sys_cpu)) / 100) * jobMs * 1e6;
  return {
    iops,
    mbPerSecond: bytesPerSecond / 1e6,
    latencyP50Ns: percentile('50.000000'),
    latencyP99Ns: percentile('99.000000'),
    latencyP999Ns: percentile('99.900000'),
    latencyMeanNs: Number(main?.lat_ns?.mean ?? NaN),
    appCpuNsPerIo: cpuNs / ios,
    emulatorCpuNsPerIo: NaN,
    appCpuPercentOfCore: (cpuNs / (wallMs * 1e6)) * 100,
    emulatorCpuPercentOfCore: NaN,
    // fio does not say what else ran meanwhile.
    othersCpuPercentOfCore: NaN,
    iosPerPoll: NaN,
    emptyPollPercent: NaN,
    ios,
    elapsedMs: wallMs,
  };
}

async function runLoad(
  engine: Exclude<Engine, 'fio'>,
  w: Workload,
  o: Options,
  threads: LoadThread[],
  emulator: BenchEmulator,
  seed: number,
): Promise<RunRecord> {
  await Promise.all(threads.map((t) => t.start(engine, w, seed)));
  try {
    await sleep(o.warmupMs);
    const offpath = engine.startsWith('offpath');
    const emulatorMeter = new CpuMeter(emulator.pid);
    const machine0 = machineBusyNs();
    const own0 = processCpuNs(process.pid).cpuNs;
    emulatorMeter.start();
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    await Promise.all(threads.map((t) => t.begin()));
    await sleep(o.runtimeMs);
    const snapshots = await Promise.all(threads.map((t) => t.end()));
    const wallNs = (performance.now() - wall0) * 1e6;
    const cpu = process.cpuUsage(cpu0);
    const emulatorSample = emulatorMeter.stop();
    const ownNs = processCpuNs(process.pid).cpuNs - own0;
    const machineNs = machineBusyNs() - machine0;
    const hist = new LatencyHistogram();
    let reads = 0;
    let writes = 0;
    let polls = 0;
    let emptyPolls = 0;
    for (const s of snapshots) {
      if (s.errors > 0) throw new Error(`${engine}: ${s.errors} I/O errors, first: ${s.firstError}`);
      hist.add(s.hist);
      reads += s.reads;
      writes += s.writes;
      polls += s.polls;
      emptyPolls += s.emptyPolls;
    }
    const ios = reads + writes;
    const appCpuNs = (cpu.user + cpu.system) * 1000;
    return {
      iops: (ios * 1e9) / wallNs,
      mbPerSecond: (ios * w.bs * 1e3) / wallNs,
      latencyP50Ns: hist.quantile(0.5),
      latencyP99Ns: hist.quantile(0.99),
      latencyP999Ns: hist.quantile(0.999),
      latencyMeanNs: hist.meanNs,
      appCpuNsPerIo: appCpuNs / ios,
      emulatorCpuNsPerIo: offpath ? emulatorSample.cpuNs / ios : NaN,
      appCpuPercentOfCore: (appCpuNs / wallNs) * 100,
      emulatorCpuPercentOfCore: (emulatorSample.cpuNs / wallNs) * 100,
      othersCpuPercentOfCore: Math.max(0, ((machineNs - ownNs - emulatorSample.cpuNs) / wallNs) * 100),
      iosPerPoll: offpath ? ios / polls : NaN,
      emptyPollPercent: offpath ? (emptyPolls / polls) * 100 : NaN,
      ios,
      elapsedMs: wallNs / 1e6,
    };
  } finally {
    await Promise.all(threads.map((t) => t.stop()));
  }
}

// ---------------------------------------------------------------------------
// Setup

async function provision(emulator: BenchEmulator, o: Options): Promise<{ pf: PfAdmin; nsid: number }> {
  const transport = await EmuTransport.connect(join(emulator.socketDir, controllerSocketName(0)));
  const pf = new PfAdmin(await NvmeController.bringUp(transport, { ioQueuePairs: 1 }));
  const nsid = await pf.createNamespace(o.sizeBytes / BLOCK_BYTES, BLOCK_BYTES);
  await pf.attach(nsid, CNTLID);
  // Admin queue + the main thread's queue pair + one per worker; a vector
  // each where the VF has them (the rest poll only).
  const queuePairs = 1 + o.workers;
  await pf.bringOnline(CNTLID, Math.min(MAX_VQ, 1 + queuePairs), Math.min(MAX_VI, 1 + queuePairs));
  return { pf, nsid };
}

/** Writes every block once, so reads hit allocated store memory (not holes). */
async function prefillVsa(vsa: Vsa, sizeBytes: number): Promise<void> {
  const chunk = 128 * 1024;
  const depth = 8;
  const buffers = Array.from({ length: depth }, (_, i) => vsa.alloc(chunk).fill(0x30 + i));
  let next = 0;
  await Promise.all(
    buffers.map(async (buffer) => {
      while (next < sizeBytes) {
        const offset = next;
        next += chunk;
        await vsa.write(offset, buffer.subarray(0, Math.min(chunk, sizeBytes - offset)));
      }
    }),
  );
  for (const buffer of buffers) vsa.free(buffer);
}

/** A regular file of the same size, written through (so in the page cache) and read back once. */
function prefillFile(path: string, sizeBytes: number): void {
  const fd = openSync(path, 'w+');
  const chunk = Buffer.alloc(1 << 20);
  for (let offset = 0; offset < sizeBytes; offset += chunk.length) {
    chunk.fill(0x30 + ((offset >> 20) & 63));
    writeSync(fd, chunk, 0, Math.min(chunk.length, sizeBytes - offset), offset);
  }
  for (let offset = 0; offset < sizeBytes; offset += chunk.length) readSync(fd, chunk, 0, Math.min(chunk.length, sizeBytes - offset), offset);
  closeSync(fd);
}

/** What one clock read costs: every measured I/O pays one (counted in app CPU/IO). */
function clockReadNs(): number {
  let sink = 0;
  for (let i = 0; i < 200_000; i++) sink += performance.now();
  const t0 = performance.now();
  const n = 1_000_000;
  for (let i = 0; i < n; i++) sink += performance.now();
  const ns = ((performance.now() - t0) * 1e6) / n;
  return sink > 0 ? ns : ns;
}

// ---------------------------------------------------------------------------
// Reporting

interface EngineSummary {
  engine: Engine;
  label: string;
  median: Record<keyof RunRecord, number>;
  spread: Record<keyof RunRecord, Spread>;
  runs: RunRecord[];
}

interface ConfigSummary {
  workload: Workload;
  workers: number;
  engines: EngineSummary[];
  ratios: Record<string, number>;
}

interface TargetCheck {
  target: string;
  limit: string;
  measured: number;
  met: boolean;
  detail: string;
}

function summarise(engine: Engine, label: string, runs: RunRecord[]): EngineSummary {
  const keys = Object.keys(runs[0]!) as Array<keyof RunRecord>;
  const spreads = {} as Record<keyof RunRecord, Spread>;
  const medians = {} as Record<keyof RunRecord, number>;
  for (const key of keys) {
    spreads[key] = spread(runs.map((r) => r[key]));
    medians[key] = spreads[key].median;
  }
  return { engine, label, median: medians, spread: spreads, runs };
}

function ratiosOf(engines: EngineSummary[]): Record<string, number> {
  const iops = (e: Engine) => engines.find((s) => s.engine === e)?.median.iops ?? NaN;
  const out: Record<string, number> = {};
  for (const ours of ['offpath-promise', 'offpath-callback'] as const) {
    for (const theirs of ['fs-promise', 'fs-callback', 'fio'] as const) {
      const ratio = iops(ours) / iops(theirs);
      if (Number.isFinite(ratio)) out[`${ours}/${theirs}`] = ratio;
    }
  }
  return out;
}

function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : '-';
}

function configTitle(c: ConfigSummary): string {
  const w = c.workload;
  const mix = w.rw === 'randrw' || w.rw === 'rw' ? ` (${w.readPercent}% reads)` : '';
  const where = c.workers === 0 ? 'main thread, 1 queue pair' : `${c.workers} workers, a queue pair each`;
  return `${w.rw}${mix} bs=${formatBytes(w.bs)} QD${w.qd} per thread, ${where}`;
}

function formatBytes(bytes: number): string {
  return bytes >= 1 << 20 && bytes % (1 << 20) === 0 ? `${bytes >> 20}M` : bytes % 1024 === 0 ? `${bytes >> 10}k` : String(bytes);
}

function printConfig(c: ConfigSummary, repeat: number): string {
  const fileHandle = c.engines.find((e) => e.engine === 'fs-promise')?.median.iops ?? NaN;
  const fsCallback = c.engines.find((e) => e.engine === 'fs-callback')?.median.iops ?? NaN;
  const headers = ['engine', repeat > 1 ? 'IOPS median (min–max)' : 'IOPS', 'MB/s', 'p50', 'p99', 'p99.9', 'app CPU/IO', 'emu CPU/IO', 'app CPU', 'emu CPU', 'others', 'IO/poll', '×FileHandle', '×fs cb'];
  const rows: Cell[][] = c.engines.map((e) => [
    e.label,
    formatSpread(e.spread.iops, formatCount),
    e.median.mbPerSecond.toFixed(1),
    formatNs(e.median.latencyP50Ns),
    formatNs(e.median.latencyP99Ns),
    formatNs(e.median.latencyP999Ns),
    formatNs(e.median.appCpuNsPerIo),
    formatNs(e.median.emulatorCpuNsPerIo),
    formatPercent(e.median.appCpuPercentOfCore),
    formatPercent(e.median.emulatorCpuPercentOfCore),
    formatPercent(e.median.othersCpuPercentOfCore),
    Number.isFinite(e.median.iosPerPoll) ? e.median.iosPerPoll.toFixed(2) : '-',
    formatRatio(e.median.iops / fileHandle),
    formatRatio(e.median.iops / fsCallback),
  ]);
  return `${configTitle(c)}\n${formatTable(headers, rows, 1)}`;
}

function checkTargets(configs: ConfigSummary[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const find = (pred: (w: Workload) => boolean) => configs.filter((c) => c.workers === 0 && c.workload.rw === 'randread' && c.workload.bs === 4096 && pred(c.workload));
  for (const c of find((w) => w.qd === 32)) {
    for (const ours of ['offpath-promise', 'offpath-callback'] as const) {
      const ratio = c.ratios[`${ours}/fs-promise`];
      if (ratio === undefined) continue;
      checks.push({
        target: `4k randread QD32, 1 queue: ${ours} IOPS ≥ 8× FileHandle.read`,
        limit: '≥ 8×',
        measured: ratio,
        met: ratio >= 8,
        detail: ratio >= 8 ? `${ratio.toFixed(2)}×` : `${ratio.toFixed(2)}× (${((1 - ratio / 8) * 100).toFixed(0)}% short; needs ${(8 / ratio).toFixed(2)}× more)`,
      });
    }
  }
  for (const c of find((w) => w.qd === 1)) {
    for (const e of c.engines.filter((s) => s.engine.startsWith('offpath'))) {
      const p50 = e.median.latencyP50Ns;
      checks.push({
        target: `4k randread QD1 p50 ≤ 4 µs (${e.engine})`,
        limit: '≤ 4000 ns',
        measured: p50,
        met: p50 <= 4000,
        detail: p50 <= 4000 ? formatNs(p50) : `${formatNs(p50)} (${(p50 / 4000).toFixed(2)}× the target)`,
      });
    }
  }
  for (const c of find(() => true)) {
    for (const e of c.engines.filter((s) => s.engine.startsWith('offpath'))) {
      const limit = e.engine === 'offpath-callback' ? 150 : 300;
      const v = e.median.appCpuNsPerIo;
      checks.push({
        target: `app CPU/IO ≤ ${limit} ns, 4k randread QD${c.workload.qd} (${e.engine})`,
        limit: `≤ ${limit} ns`,
        measured: v,
        met: v <= limit,
        detail: v <= limit ? formatNs(v) : `${formatNs(v)} (${(v / limit).toFixed(1)}× the target)`,
      });
    }
  }
  return checks;
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseOptions();
  const folder = mkdtempSync(join(tmpdir(), 'offpath-bench-vsa-'));
  const filePath = join(folder, 'reference.dat');
  const maxBs = Math.max(...o.blockSizes);
  const maxQd = Math.max(...o.queueDepths);
  const queueEntries = Math.min(1024, Math.max(64, maxQd + 1));
  const poolBytes = Math.ceil((maxQd * maxBs + (2 << 20)) / BLOCK_BYTES) * BLOCK_BYTES;
  // The store carries its metadata on the pool: leave it room.
  const storeBytes = o.sizeBytes + Math.max(64 << 20, o.sizeBytes / 8);
  const emulator = await startEmulatorProcess({ storeSpec: `memory:${Math.ceil(storeBytes / (1 << 20))}M`, vfs: 1, spinUs: o.spinUs });
  let vsa: Vsa | undefined;
  let pf: PfAdmin | undefined;
  const threads: LoadThread[] = [];
  try {
    const provisioned = await provision(emulator, o);
    pf = provisioned.pf;
    vsa = await open(join(emulator.socketDir, controllerSocketName(CNTLID)), { queueEntries, poolBytes });
    log(`prefilling a ${formatBytes(o.sizeBytes)} VSA and a ${formatBytes(o.sizeBytes)} file in ${tmpdir()} ...`);
    await prefillVsa(vsa, o.sizeBytes);
    if (o.fs || o.fio) prefillFile(filePath, o.sizeBytes);
    const fio: FioInfo = o.fio ? probeFio(filePath) : { available: false, version: null, ioengine: null, note: 'fio skipped (--no-fio)' };
    if (o.fio) log(fio.note);
    if (o.workers === 0) {
      threads.push(new LocalThread(new LoadRunner(vsa, filePath, 0, 1)));
    } else {
      for (let i = 0; i < o.workers; i++) {
        const handle = await vsa.queueHandle({ queueEntries, poolBytes });
        threads.push(new WorkerThread({ handle, filePath, threadIndex: i, threads: o.workers }));
      }
    }
    const clockNs = clockReadNs();
    const engines: Engine[] = [
      ...o.apis.map((api) => `offpath-${api}` as Engine),
      ...(o.fs ? (['fs-promise', 'fs-callback'] as const) : []),
      ...(fio.available ? (['fio'] as const) : []),
    ];
    const configs: ConfigSummary[] = [];
    const discarded: Array<{ rw: Rw; bs: number; qd: number; engine: Engine; record: RunRecord }> = [];
    const total = o.rws.length * o.blockSizes.length * o.queueDepths.length * engines.length * o.repeat;
    let done = 0;
    for (const rw of o.rws) {
      for (const bs of o.blockSizes) {
        for (const qd of o.queueDepths) {
          const w = workloadOf(rw, bs, qd, o);
          const runs = new Map<Engine, RunRecord[]>(engines.map((e) => [e, []]));
          // Repetitions interleave engines, so drift on a shared machine hits all alike.
          for (let rep = 0; rep < o.repeat; rep++) {
            for (const engine of engines) {
              let record: RunRecord;
              for (let attempt = 0; ; attempt++) {
                if (o.quietWaitMs > 0) {
                  const quiet = await waitForQuiet({ maxWaitMs: o.quietWaitMs, maxBusyPercent: 25 });
                  if (!quiet.quiet) log(`  machine busy (${quiet.busyPercentOfCore.toFixed(0)}% of a core): measuring anyway`);
                }
                record = engine === 'fio' ? await runFio(fio, w, o, filePath) : await runLoad(engine, w, o, threads, emulator, rep + 1);
                const disturbed = o.maxOthersPercent > 0 && record.othersCpuPercentOfCore > o.maxOthersPercent;
                log(
                  `  [${done + 1}/${total}] ${rw} bs=${formatBytes(bs)} qd=${qd} ${engine}: ${formatCount(record.iops)} IOPS, p50 ${formatNs(record.latencyP50Ns)}, ` +
                    `app ${formatNs(record.appCpuNsPerIo)}/IO, emu ${formatNs(record.emulatorCpuNsPerIo)}/IO, others ${formatPercent(record.othersCpuPercentOfCore)}` +
                    (disturbed ? (attempt < o.retries ? ' — disturbed, again' : ' — disturbed, kept (retries exhausted)') : ''),
                );
                if (!disturbed || attempt >= o.retries) break;
                discarded.push({ rw, bs, qd, engine, record });
              }
              runs.get(engine)!.push(record);
              done++;
            }
          }
          const summaries = engines.map((e) => summarise(e, e === 'fio' ? `fio ${fio.ioengine}` : ENGINE_LABEL[e], runs.get(e)!));
          configs.push({ workload: w, workers: o.workers, engines: summaries, ratios: ratiosOf(summaries) });
        }
      }
    }
    const targets = checkTargets(configs);
    const cpuSource: CpuSource = processCpuNs(emulator.pid).source;
    const header =
      `offpath data-plane bench: ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), Linux ${release()}, Node ${process.version}; ` +
      `${formatBytes(o.sizeBytes)} VSA (emulator memory store, own process) vs ${formatBytes(o.sizeBytes)} page-cached file; ` +
      `${o.runtimeMs / 1000} s per run after ${o.warmupMs / 1000} s warm-up, ${o.repeat} run${o.repeat > 1 ? 's' : ''} each${o.repeat > 1 ? ', medians' : ''}`;
    const notes = [
      `latency: submission → completion seen by the application; one clock read per I/O (${clockNs.toFixed(0)} ns, included in app CPU/IO)`,
      `app CPU = this process, all threads (process.cpuUsage), polling included; emu CPU = the emulator process (${cpuSource}), spinning included; others = rest of the machine (/proc/stat)`,
      `IO/poll = completions per event-loop poll of the CQ (the queue polls once per turn while I/O is outstanding)`,
      o.maxOthersPercent > 0
        ? `runs during which other processes used > ${o.maxOthersPercent}% of a core were done again (up to ${o.retries} times): ${discarded.length} discarded`
        : 'disturbed runs are kept (--max-others 0)',
      fio.available ? `fio: ${fio.version}, ${fio.note}; its CPU/IO is fio's own (usr+sys)` : fio.note,
    ];
    const text = [
      header,
      '',
      ...configs.flatMap((c) => [printConfig(c, o.repeat), '']),
      ...notes,
      '',
      'targets:',
      ...(targets.length > 0 ? targets.map((t) => `  ${t.met ? 'met   ' : 'MISSED'} ${t.target}: ${t.detail}`) : ['  (run --rw randread --bs 4k --qd 1,32 --workers 0 to check them)']),
    ].join('\n');
    if (o.json) {
      log(text);
      const json = {
        bench: 'vsa',
        host: { cpus: cpus().length, cpuModel: cpus()[0]?.model.trim(), kernel: release(), node: process.version },
        options: { ...o, rws: undefined, rw: o.rws, blockSizes: undefined, bs: o.blockSizes, queueDepths: undefined, qd: o.queueDepths },
        clockReadNs: clockNs,
        emulatorCpuSource: cpuSource,
        fio,
        discardedRuns: discarded,
        configs: configs.map((c) => ({
          ...c.workload,
          workers: c.workers,
          ratios: c.ratios,
          engines: Object.fromEntries(c.engines.map((e) => [e.engine, { label: e.label, median: e.median, runs: e.runs }])),
        })),
        targets,
      };
      process.stdout.write(`${JSON.stringify(json, (_, value) => (typeof value === 'number' && !Number.isFinite(value) ? null : value))}\n`);
    } else {
      process.stdout.write(`${text}\n`);
    }
  } finally {
    for (const t of threads) await t.close().catch(() => {});
    if (vsa) await vsa.close().catch(() => {});
    if (pf) await pf.controller.shutdown().catch(() => {});
    await emulator.stop();
    rmSync(folder, { recursive: true, force: true });
  }
}

if (isMainThread) {
  await main();
} else if ((workerData as WorkerSetup | undefined)?.role === 'vsa-bench-load') {
  await workerMain(workerData as WorkerSetup);
}
