/**
 * Durable enqueue through SMTP: the mail queue (offpath-mailq on a VSA of a
 * file-backed emulated device) against a Maildir written with an fsync per
 * message, both behind the same SMTP receiver code and both fed by the same
 * load generator (bench/lib/mailq-load.ts: N connections, pipelined, fixed
 * message size) — and by Postfix's smtp-source when it is installed. A
 * message counts when its 250 arrives, which both servers send only once it
 * is durable: the queue after a Flush that covers it (the emulator's file
 * backend makes Flush an fdatasync of the pool file), the Maildir after
 * fsync of the file (and of new/).
 *
 *   node --import tsx bench/mailq.ts [--connections 32] [--size 1024] [--messages 30000]
 *        [--duration 5] [--repeat 3] [--shards N] [--systems mailq,maildir,maildir-file]
 *        [--spin-us 50] [--dir DIR] [--no-smtp-source] [--quick] [--json]
 *
 * --shards defaults to what `offpath-mailq serve` picks: CPUs − 1 (1–4).
 * Systems: `mailq` (file backend), `mailq-memory` (memory backend: not
 * durable, for reference), `mailq-fua` (FUA per message instead of grouped
 * Flush), `maildir` (fsync of the file and of new/), `maildir-file` (fsync
 * of the file only). Every trial starts its server afresh (the queue is
 * reformatted with its entry regions preallocated, the Maildir is new);
 * repeats are interleaved, and the table shows the median (min–max).
 * Output: a table on stdout (stderr with --json) and one JSON document.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statfsSync, ftruncateSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { planLayout } from '../examples/mailq/layout.js';
import { connectPf, startEmulator, type RunningEmulator } from '../test/helpers/emulator.js';
import { runLoad, type LoadResult } from './lib/mailq-load.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SMTP_SOURCE = ['/usr/sbin/smtp-source', '/usr/bin/smtp-source'].find((path) => existsSync(path));

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '32' },
    size: { type: 'string', default: '1024' },
    messages: { type: 'string', default: '30000' },
    duration: { type: 'string', default: '5' },
    repeat: { type: 'string', default: '3' },
    shards: { type: 'string', default: String(Math.max(1, Math.min(4, availableParallelism() - 1))) },
    systems: { type: 'string', default: 'mailq,maildir,maildir-file' },
    'spin-us': { type: 'string', default: '50' },
    dir: { type: 'string' },
    'no-smtp-source': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

const connections = Number(values.connections);
const messageBytes = Number(values.size);
const messages = values.quick ? Math.min(10000, Number(values.messages)) : Number(values.messages);
const durationMs = (values.quick ? Math.min(2, Number(values.duration)) : Number(values.duration)) * 1000;
const repeat = values.quick ? 1 : Number(values.repeat);
const shards = Number(values.shards);
const spinUs = Number(values['spin-us']);
const systems = values.systems!.split(',').filter(Boolean);
const generators = ['load', ...(SMTP_SOURCE && !values['no-smtp-source'] ? ['smtp-source'] : [])];
const out = values.json ? process.stderr : process.stdout;
const say = (line: string) => out.write(`${line}\n`);

for (const system of systems) {
  if (!['mailq', 'mailq-memory', 'mailq-fua', 'maildir', 'maildir-file'].includes(system)) throw new Error(`unknown system ${system}`);
}

const work = mkdtempSync(join(values.dir ?? tmpdir(), 'offpath-mailq-bench-'));
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});
process.on('SIGINT', () => process.exit(130));

/** Filesystem of a path, by statfs magic. */
function fsType(path: string): string {
  const names: Record<number, string> = { 0xef53: 'ext4', 0x01021994: 'tmpfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x794c7630: 'overlayfs' };
  const type = statfsSync(path).type;
  return names[type] ?? `0x${type.toString(16)}`;
}

/** CPU time (ns) of a process and its threads, from /proc. */
function cpuNs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e9) / 100; // utime + stime, in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

/** Busy and total jiffies of the whole machine. */
function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = line[3]! + line[4]!;
  const total = line.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

function spawnChild(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: root });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  child.on('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    let stdout = '';
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      const match = /listening [^:\s]+:(\d+)/.exec(stdout);
      if (match) resolve({ child, port: Number(match[1]), stderr: () => stderr });
    });
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${stderr}`)));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

// --- the device: one emulator per backend, reused by every trial ----------------

const LAYOUT = {
  shards,
  slots: [Math.ceil(messages / shards) + 1024, Math.ceil(messages / shards) + 1024, 1024],
  extentBytesPerShard: 16 << 20,
};
const layoutEnd = (() => {
  const sb = planLayout(2 ** 40, 4096, LAYOUT);
  return sb.extentOffset + sb.shards * sb.extentBytesPerShard;
})();
const nsBlocks = Math.ceil((layoutEnd + (1 << 20)) / 4096);

interface Device {
  emulator: RunningEmulator;
  vf: string;
  backend: string;
}
const devices = new Map<string, Device>();

async function device(backend: 'file' | 'memory'): Promise<Device> {
  const known = devices.get(backend);
  if (known) return known;
  const poolBytes = nsBlocks * 4096 + (64 << 20);
  let store: string;
  if (backend === 'file') {
    const image = join(work, 'pool.img');
    const fd = openSync(image, 'w');
    ftruncateSync(fd, poolBytes);
    closeSync(fd);
    store = `file:${image}`;
  } else {
    store = `memory:${poolBytes}`;
  }
  const emulator = await startEmulator(['--store', store, '--vfs', '1', '--spin-us', String(spinUs)]);
  const pf = await connectPf(emulator);
  const nsid = await pf.createNamespace(nsBlocks, 4096);
  await pf.attach(nsid, 1);
  await pf.bringOnline(1, Math.min(8, shards + 1), Math.min(4, shards + 1));
  await pf.controller.shutdown();
  const found = { emulator, vf: join(emulator.socketDir, 'vf-1.sock'), backend: backend === 'file' ? `emulator file store (${fsType(work)}), grouped Flush` : 'emulator memory store (not durable)' };
  devices.set(backend, found);
  return found;
}

// --- servers -------------------------------------------------------------------------

interface Server {
  port: number;
  pids: { server: number; emulator?: number };
  backend: string;
  stop(): Promise<{ flushes?: number; commits?: number }>;
}

async function startSystem(system: string, trial: number): Promise<Server> {
  if (system.startsWith('mailq')) {
    const dev = await device(system === 'mailq-memory' ? 'memory' : 'file');
    const args = [
      join(root, 'examples', 'mailq', 'offpath-mailq.mjs'),
      'serve',
      '--vf',
      dev.vf,
      '--port',
      '0',
      '--no-deliver',
      '--format',
      'always',
      '--preallocate',
      '--shards',
      String(shards),
      '--slots',
      LAYOUT.slots.join(','),
      '--extent-bytes',
      String(LAYOUT.extentBytesPerShard),
      '--durability',
      system === 'mailq-fua' ? 'fua' : 'flush',
    ];
    const { child, port, stderr } = await spawnChild(args);
    return {
      port,
      pids: { server: child.pid!, emulator: dev.emulator.process.pid! },
      backend: system === 'mailq-fua' ? dev.backend.replace('grouped Flush', 'FUA per write') : dev.backend,
      async stop() {
        await stopChild(child);
        const line = stderr()
          .split('\n')
          .find((l) => l.includes('"event":"stats"'));
        if (!line) return {};
        const stats = JSON.parse(line).shards as Array<{ flushes: number; enqueued: number }>;
        return { flushes: stats.reduce((a, s) => a + s.flushes, 0), commits: stats.reduce((a, s) => a + s.enqueued, 0) };
      },
    };
  }
  const maildir = join(work, `maildir-${system}-${trial}`);
  mkdirSync(maildir, { recursive: true });
  const sync = system === 'maildir' ? 'file+dir' : 'file';
  const { child, port } = await spawnChild(['--import', 'tsx', join(root, 'bench', 'lib', 'mailq-maildir-server.ts'), '--maildir', maildir, '--sync', sync]);
  return {
    port,
    pids: { server: child.pid! },
    backend: `Maildir on ${fsType(work)}: fsync ${sync === 'file+dir' ? 'file + new/' : 'file'} per message (libuv pool ${process.env.UV_THREADPOOL_SIZE ?? 4})`,
    async stop() {
      await stopChild(child);
      rmSync(maildir, { recursive: true, force: true });
      return {};
    },
  };
}

// --- generators -------------------------------------------------------------------------

interface GeneratorResult {
  accepted: number;
  elapsedMs: number;
  rate: number;
  latencyUs?: LoadResult['latencyUs'];
  errors: string[];
}

async function smtpSource(port: number, count: number): Promise<GeneratorResult> {
  const started = performance.now();
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(SMTP_SOURCE!, ['-d', '-s', String(connections), '-m', String(count), '-l', String(messageBytes), '-f', 'source@bench.invalid', '-t', 'sink@bench.invalid', `127.0.0.1:${port}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.add(child);
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => {
      children.delete(child);
      resolve({ code, stderr });
    });
  });
  const elapsedMs = performance.now() - started;
  const ok = result.code === 0;
  return { accepted: ok ? count : 0, elapsedMs, rate: ok ? (count / elapsedMs) * 1000 : 0, errors: ok ? [] : [result.stderr.trim().slice(0, 200)] };
}

// --- trials -------------------------------------------------------------------------------

interface Trial {
  system: string;
  generator: string;
  backend: string;
  accepted: number;
  rate: number;
  elapsedMs: number;
  latencyUs?: LoadResult['latencyUs'];
  serverCpuUsPerMsg: number;
  emulatorCpuUsPerMsg: number;
  generatorCpuUsPerMsg: number;
  machineBusyPercent: number;
  messagesPerFlush?: number;
  errors: string[];
}

const trials: Trial[] = [];
/** The last rate seen per system with our generator: sizes smtp-source runs (it has no time limit). */
const lastRate = new Map<string, number>();

say(
  `mail queue vs Maildir+fsync: ${connections} connections, ${messageBytes}-byte messages, ` +
    `up to ${messages} messages or ${durationMs / 1000} s per trial, ${repeat} repeat(s), ${shards} shard(s); ` +
    `generators: ${generators.join(', ')}; files in ${fsType(work)}; ${cpus().length} CPUs, load average ${loadavg()[0]!.toFixed(2)}`,
);

for (let r = 0; r < repeat; r++) {
  for (const generator of generators) {
    for (const system of systems) {
      const server = await startSystem(system, r);
      const cpu0 = { server: cpuNs(server.pids.server), emulator: server.pids.emulator ? cpuNs(server.pids.emulator) : 0, self: process.cpuUsage() };
      const ticks0 = machineTicks();
      let result: GeneratorResult;
      if (generator === 'load') {
        const load = await runLoad({ port: server.port, connections, messageBytes, messages, durationMs });
        result = load;
        lastRate.set(system, load.rate);
      } else {
        const count = Math.max(500, Math.min(messages, Math.round(((lastRate.get(system) ?? 1000) * durationMs) / 1000)));
        result = await smtpSource(server.port, count);
      }
      const ticks1 = machineTicks();
      const self = process.cpuUsage(cpu0.self);
      const serverCpu = cpuNs(server.pids.server) - cpu0.server;
      const emulatorCpu = server.pids.emulator ? cpuNs(server.pids.emulator) - cpu0.emulator : NaN;
      const flush = await server.stop();
      const perMsg = (ns: number) => (result.accepted > 0 ? ns / 1000 / result.accepted : NaN);
      const trial: Trial = {
        system,
        generator,
        backend: server.backend,
        accepted: result.accepted,
        rate: result.rate,
        elapsedMs: result.elapsedMs,
        ...(result.latencyUs ? { latencyUs: result.latencyUs } : {}),
        serverCpuUsPerMsg: perMsg(serverCpu),
        emulatorCpuUsPerMsg: perMsg(emulatorCpu),
        generatorCpuUsPerMsg: generator === 'load' ? perMsg((self.user + self.system) * 1000) : NaN,
        machineBusyPercent: (100 * (ticks1.busy - ticks0.busy)) / Math.max(1, ticks1.total - ticks0.total),
        ...(flush.flushes && flush.commits ? { messagesPerFlush: flush.commits / flush.flushes } : {}),
        errors: result.errors,
      };
      trials.push(trial);
      say(`  ${r + 1}/${repeat} ${generator.padEnd(11)} ${system.padEnd(12)} ${Math.round(trial.rate).toString().padStart(7)} msg/s  (${trial.accepted} in ${(trial.elapsedMs / 1000).toFixed(2)} s, machine ${trial.machineBusyPercent.toFixed(0)}% busy)${trial.errors.length ? `  errors: ${trial.errors.join('; ')}` : ''}`);
    }
  }
}

for (const dev of devices.values()) await dev.emulator.stop();

// --- report -------------------------------------------------------------------------------------

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
interface Summary {
  system: string;
  generator: string;
  backend: string;
  runs: number;
  rate: { median: number; min: number; max: number };
  p50Ms?: number;
  p99Ms?: number;
  serverCpuUsPerMsg: number;
  emulatorCpuUsPerMsg: number;
  generatorCpuUsPerMsg: number;
  messagesPerFlush?: number;
  machineBusyPercent: number;
}
const summaries: Summary[] = [];
for (const generator of generators) {
  for (const system of systems) {
    const group = trials.filter((t) => t.system === system && t.generator === generator);
    if (group.length === 0) continue;
    const rates = group.map((t) => t.rate);
    const flushes = group.map((t) => t.messagesPerFlush ?? NaN);
    summaries.push({
      system,
      generator,
      backend: group[0]!.backend,
      runs: group.length,
      rate: { median: median(rates), min: Math.min(...rates), max: Math.max(...rates) },
      ...(group[0]!.latencyUs ? { p50Ms: median(group.map((t) => t.latencyUs!.p50)) / 1000, p99Ms: median(group.map((t) => t.latencyUs!.p99)) / 1000 } : {}),
      serverCpuUsPerMsg: median(group.map((t) => t.serverCpuUsPerMsg)),
      emulatorCpuUsPerMsg: median(group.map((t) => t.emulatorCpuUsPerMsg)),
      generatorCpuUsPerMsg: median(group.map((t) => t.generatorCpuUsPerMsg)),
      ...(Number.isFinite(median(flushes)) ? { messagesPerFlush: median(flushes) } : {}),
      machineBusyPercent: median(group.map((t) => t.machineBusyPercent)),
    });
  }
}

const ratios: Array<{ generator: string; queue: string; baseline: string; ratio: number }> = [];
for (const generator of generators) {
  for (const queue of systems.filter((s) => s.startsWith('mailq'))) {
    for (const baseline of systems.filter((s) => s.startsWith('maildir'))) {
      const q = summaries.find((s) => s.system === queue && s.generator === generator);
      const b = summaries.find((s) => s.system === baseline && s.generator === generator);
      if (q && b && b.rate.median > 0) ratios.push({ generator, queue, baseline, ratio: q.rate.median / b.rate.median });
    }
  }
}

const fmt = (v: number | undefined, digits = 0) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits));
const headers = ['generator', 'system', 'durable via', 'msg/s median (min-max)', 'p50 ms', 'p99 ms', 'msgs/flush', 'server µs/msg', 'emulator µs/msg', 'machine busy'];
const rows = summaries.map((s) => [
  s.generator,
  s.system,
  s.backend,
  s.runs > 1 ? `${fmt(s.rate.median)} (${fmt(s.rate.min)}-${fmt(s.rate.max)})` : fmt(s.rate.median),
  fmt(s.p50Ms, 2),
  fmt(s.p99Ms, 2),
  fmt(s.messagesPerFlush, 1),
  fmt(s.serverCpuUsPerMsg, 1),
  fmt(s.emulatorCpuUsPerMsg, 1),
  `${fmt(s.machineBusyPercent)}%`,
]);
const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
const line = (cells: string[]) => cells.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
say('');
say(line(headers));
say(widths.map((w) => '-'.repeat(w)).join('  '));
for (const row of rows) say(line(row));
say('');
for (const r of ratios) say(`ratio ${r.queue} / ${r.baseline} (${r.generator}): ${r.ratio.toFixed(1)}×`);

const report = {
  bench: 'mailq',
  settings: { connections, messageBytes, messages, durationMs, repeat, shards, spinUs, generators, systems, filesystem: fsType(work) },
  machine: { cpus: cpus().length, model: cpus()[0]?.model, loadAverage: loadavg() },
  summaries,
  ratios,
  trials,
};
if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
else {
  say('');
  say(JSON.stringify({ ratios, summaries: summaries.map((s) => ({ system: s.system, generator: s.generator, rate: Math.round(s.rate.median) })) }));
}

