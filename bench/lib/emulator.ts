/**
 * An emulator and a VF ready for a benchmark: the emulator as its own process
 * (as in production: its pollers compete with the application for cores) or
 * inside this process (then its controller statistics are readable), a
 * namespace attached to the VF, the VF brought up with one I/O queue pair
 * and a data buffer — everything a native client needs to drive the queue.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PfAdmin } from '../../controlplane/pf/pf-admin.js';
import { EmulatorServer, controllerSocketName } from '../../emulator/server.js';
import { NvmeController } from '../../libstorage/driver/controller.js';
import type { DmaBuffer } from '../../libstorage/dma.js';
import type { QueuePair } from '../../libstorage/queue/queue-pair.js';
import { EMU_WAKEUPS_OFFSET } from '../../libstorage/transport/emu/bar.js';
import { EmuTransport } from '../../libstorage/transport/emu/emu-transport.js';
import { threadIds, type ThreadFilter } from './proc-cpu.js';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'controlplane', 'cli.ts');
const BLOCK_BYTES = 4096;

export interface BenchEmulator {
  mode: 'process' | 'in-process';
  socketDir: string;
  /** The process whose CPU time is the emulator's... */
  pid: number;
  /** ...restricted to these threads (in-process: the ones the emulator started). */
  threads: ThreadFilter;
  /** Controller statistics (busyNs, commands, ...); in-process only. */
  stats: ((cntlid: number) => Record<string, unknown>) | undefined;
  stop(): Promise<void>;
}

export interface EmulatorSettings {
  storeSpec?: string;
  vfs?: number;
  spinUs?: number;
}

/** `offpath emulator` as a child process; resolves once it printed `ready`. */
export async function startEmulatorProcess(settings: EmulatorSettings = {}): Promise<BenchEmulator> {
  const socketDir = mkdtempSync(join(tmpdir(), 'offpath-bench-'));
  const args = ['--store', settings.storeSpec ?? 'memory:256M', '--vfs', String(settings.vfs ?? 1), '--spin-us', String(settings.spinUs ?? 50)];
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'emulator', '--socket-dir', socketDir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let stdout = '';
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      if (stdout.includes('ready ')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`emulator exited ${code}: ${stderr}`)));
  });
  // If the benchmark exits without stop() (an error, process.exit on a
  // signal), the emulator must not outlive it.
  const onExit = () => {
    child.kill('SIGKILL');
    rmSync(socketDir, { recursive: true, force: true });
  };
  process.on('exit', onExit);
  return {
    mode: 'process',
    socketDir,
    pid: child.pid!,
    threads: {},
    stats: undefined,
    async stop() {
      process.off('exit', onExit);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(socketDir, { recursive: true, force: true });
    },
  };
}

/** The emulator inside this process: same sockets, plus readable statistics. */
export function startEmulatorInProcess(settings: EmulatorSettings = {}): BenchEmulator {
  const socketDir = mkdtempSync(join(tmpdir(), 'offpath-bench-'));
  const [kind, size] = (settings.storeSpec ?? 'memory:256M').split(':');
  if (kind !== 'memory') throw new RangeError('in-process benchmarks use a memory store');
  const before = new Set(threadIds(process.pid));
  const server = new EmulatorServer({
    socketDir,
    store: { kind: 'memory', sizeBytes: parseMiB(size ?? '256M') },
    secondaryControllers: settings.vfs ?? 1,
    spinUs: settings.spinUs ?? 50,
  });
  // The threads the subsystem started are its pollers.
  const pollers = threadIds(process.pid).filter((tid) => !before.has(tid));
  const onExit = () => rmSync(socketDir, { recursive: true, force: true });
  process.on('exit', onExit);
  return {
    mode: 'in-process',
    socketDir,
    pid: process.pid,
    threads: { onlyTids: pollers },
    stats: (cntlid) => server.subsystem.stats(cntlid),
    async stop() {
      process.off('exit', onExit);
      server.close();
      rmSync(socketDir, { recursive: true, force: true });
    },
  };
}

function parseMiB(text: string): number {
  const match = /^(\d+)([MG])$/i.exec(text);
  if (!match) throw new RangeError(`store size must look like 256M or 1G, not ${text}`);
  return Number(match[1]) * (match[2]!.toUpperCase() === 'G' ? 1 << 30 : 1 << 20);
}

async function connect(emulator: BenchEmulator, cntlid: number, ioQueuePairs: number): Promise<NvmeController> {
  const transport = await EmuTransport.connect(join(emulator.socketDir, controllerSocketName(cntlid)));
  return NvmeController.bringUp(transport, { ioQueuePairs });
}

export interface BenchVf {
  pf: PfAdmin;
  controller: NvmeController;
  transport: EmuTransport;
  /** Owned by the native client: taken out of the driver's completion pump. */
  queue: QueuePair;
  /** queueDepth 4 KiB slots, one per command id. */
  data: DmaBuffer;
  nsid: number;
  lbaCount: number;
  /** The VF's BAR counter of poller wake-ups (sleeps that ended). */
  pollerWakeups(): number;
  close(): Promise<void>;
}

export interface VfSettings {
  cntlid?: number;
  /** Namespace size in 4 KiB blocks. */
  lbaCount: number;
  queueEntries?: number;
  /** I/O queue pairs beyond the client's, for the JS driver (tests). */
  spareQueuePairs?: number;
}

/** Namespace + VF online (through the PF), VF up with one queue pair and a data buffer. */
export async function openBenchVf(emulator: BenchEmulator, settings: VfSettings): Promise<BenchVf> {
  const cntlid = settings.cntlid ?? 1;
  const entries = settings.queueEntries ?? 64;
  const pf = new PfAdmin(await connect(emulator, 0, 1));
  const nsid = await pf.createNamespace(settings.lbaCount, BLOCK_BYTES);
  await pf.attach(nsid, cntlid);
  const spare = settings.spareQueuePairs ?? 0;
  // VQ resources count the admin queue.
  await pf.bringOnline(cntlid, 2 + spare, 1);
  const controller = await connect(emulator, cntlid, 1 + spare);
  const queue = await controller.createQueuePair(1, entries);
  // The native client owns the rings from now on; the JS pump must never
  // reap them (its head and phase would be stale).
  controller.pump.remove(queue);
  const region = await controller.newRegion((entries - 1) * BLOCK_BYTES);
  const data = region.alloc((entries - 1) * BLOCK_BYTES);
  const transport = controller.transport as EmuTransport;
  const bar32 = new Uint32Array(transport.bar);
  return {
    pf,
    controller,
    transport,
    queue,
    data,
    nsid,
    lbaCount: settings.lbaCount,
    pollerWakeups: () => Atomics.load(bar32, EMU_WAKEUPS_OFFSET / 4),
    async close() {
      await controller.shutdown().catch(() => {});
      await pf.controller.shutdown().catch(() => {});
    },
  };
}
