/**
 * What bench/kv.ts starts and stops: an emulator process with a VF whose
 * namespace is provisioned (file or memory store), the KV server on it
 * (examples/kv/cli.ts, its own process), and redis-server with its data in
 * a temporary folder. Everything listens on loopback and is stopped by the
 * caller (stopAll covers an early exit).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { PfAdmin } from '../../controlplane/pf/pf-admin.js';
import { spawnEmulator, type EmulatorProcess } from '../../emulator/process.js';
import { NvmeController } from '../../libstorage/driver/controller.js';
import { EmuTransport } from '../../libstorage/transport/emu/emu-transport.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const kvCli = join(root, 'examples', 'kv', 'cli.ts');
const running = new Set<() => Promise<void>>();

/** Stops whatever is still running (also called on SIGINT). */
export async function stopAll(): Promise<void> {
  for (const stop of [...running].reverse()) await stop().catch(() => {});
  running.clear();
}

export function has(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

export async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function waitForPing(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
      socket.once('data', (d) => {
        socket.destroy();
        resolve(d.toString() === '+PONG\r\n');
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing answered PING on port ${port}`);
    await sleep(50);
  }
}

export interface KvDevice {
  /** `file` (page cache; Flush/FUA = fdatasync) or `memory`. */
  backend: string;
  vsic: string;
  emulator: EmulatorProcess;
  stop(): Promise<void>;
}

/** An emulator process and VF 1 with a namespace of `sizeBytes`, online, not yet opened. */
export async function startDevice(backend: 'file' | 'memory', sizeBytes: number, spinUs: number): Promise<KvDevice> {
  const folder = mkdtempSync(join(tmpdir(), 'offpath-kv-bench-'));
  const pool = sizeBytes + (64 << 20);
  const store = backend === 'file' ? ['--store', `file:${join(folder, 'pool.img')}`, '--size', String(pool)] : ['--store', `memory:${pool >> 20}M`];
  const emulator = await spawnEmulator(join(folder, 'sockets'), [...store, '--vfs', '1', '--spin-us', String(spinUs)]);
  const transport = await EmuTransport.connect(join(folder, 'sockets', 'pf.sock'));
  const pf = new PfAdmin(await NvmeController.bringUp(transport, { ioQueuePairs: 1 }));
  const nsid = await pf.createNamespace(sizeBytes / 4096, 4096);
  await pf.attach(nsid, 1);
  await pf.bringOnline(1, 2, 2);
  const stop = async () => {
    running.delete(stop);
    await pf.controller.shutdown().catch(() => {});
    await emulator.stop();
    rmSync(folder, { recursive: true, force: true });
  };
  running.add(stop);
  return { backend, vsic: join(folder, 'sockets', 'vf-1.sock'), emulator, stop };
}

export interface Service {
  name: string;
  port: number;
  pid: number;
  /** CPU seconds (user + system) of the server process so far. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

function cpuSecondsOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

function track(name: string, port: number, child: ChildProcess, cleanup: () => void = () => {}): Service {
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const stop = async () => {
    running.delete(stop);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    cleanup();
  };
  running.add(stop);
  return { name, port, pid: child.pid!, cpuSeconds: () => cpuSecondsOf(child.pid!), stop };
}

/** The offpath KV server (`serve --vsic`) on a device. */
export async function startKv(device: KvDevice, durability: 'crash' | 'power', extra: string[] = []): Promise<Service> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', kvCli, 'serve', '--vsic', device.vsic, '--port', String(port), '--durability', durability, ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const service = track(`offpath ${durability}`, port, child);
  await waitForPing(port).catch((error) => {
    throw new Error(`${(error as Error).message}: ${stderr}`);
  });
  return service;
}

/** redis-server on loopback, AOF with the given appendfsync (or none), data in a temp folder. */
export async function startRedis(appendfsync: 'no' | 'everysec' | 'always' | 'off'): Promise<Service> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'offpath-kv-redis-'));
  const aof = appendfsync === 'off' ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', appendfsync];
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...aof, '--daemonize', 'no', '--logfile', ''], {
    stdio: 'ignore',
  });
  const service = track(`redis appendfsync ${appendfsync}`, port, child, () => rmSync(dir, { recursive: true, force: true }));
  await waitForPing(port);
  return service;
}

export interface BenchmarkRow {
  test: string;
  rps: number;
  avgMs: number;
  p50Ms: number;
  p99Ms: number;
}

/** redis-benchmark --csv; returns one row per test. */
export async function redisBenchmark(port: number, tests: string, clients: number, requests: number, valueBytes: number, keyspace: number): Promise<BenchmarkRow[]> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-t', tests, '-c', String(clients), '-n', String(requests), '-d', String(valueBytes), '-r', String(keyspace), '--csv'];
  const child = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`redis-benchmark exited ${code}: ${stderr}`);
  // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  return stdout
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => JSON.parse(`[${line}]`) as string[])
    .map((f) => ({ test: f[0]!, rps: Number(f[1]), avgMs: Number(f[2]), p50Ms: Number(f[4]), p99Ms: Number(f[6]) }));
}
