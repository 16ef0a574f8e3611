/**
 * The offpath KV server against Redis, same machine, same run, both driven
 * by redis-benchmark (SET and GET, 100-byte values, 1 and 50 clients), with
 * matched durability:
 *
 *   offpath crash  (acknowledged = survives any process crash)  vs  Redis appendfsync no / everysec
 *   offpath power  (acknowledged = on stable storage: FUA)      vs  Redis appendfsync always
 *
 * The offpath VSA lives on an emulator with a *file* store (page cache;
 * Flush and FUA are fdatasync), and Redis keeps its AOF in a temporary
 * folder on the same filesystem. Then the KV library embedded (no network)
 * against lmdb (lmdb-js) with synchronous commits, when lmdb is installed.
 *
 *   node --import tsx bench/kv.ts [--requests 100000] [--repeat 3] [--clients 1,50]
 *        [--spin-us 50] [--quick] [--json] [--no-redis] [--no-embedded] [--lmdb-module DIR]
 *
 * Output: a table and the target ratios on stdout; with --json the tables
 * go to stderr and stdout is one JSON document.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { open } from '../libstorage/index.js';
import { KvStore, type Durability } from '../examples/kv/store.js';
import { has, redisBenchmark, startDevice, startKv, startRedis, stopAll, type BenchmarkRow, type Service } from './lib/kv-setup.js';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '100000' },
    repeat: { type: 'string', default: '3' },
    clients: { type: 'string', default: '1,50' },
    'spin-us': { type: 'string', default: '50' },
    'vsa-size': { type: 'string', default: '1024' },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    'no-redis': { type: 'boolean', default: false },
    'no-embedded': { type: 'boolean', default: false },
    'lmdb-module': { type: 'string' },
  },
});

const quick = args.quick;
const requests = quick ? 20_000 : Number(args.requests);
const repeat = quick ? 1 : Number(args.repeat);
const clientCounts = args.clients!.split(',').map(Number);
const spinUs = Number(args['spin-us']);
const vsaBytes = Number(args['vsa-size']) << 20;
const VALUE_BYTES = 100;
const KEYSPACE = 100_000;
const out = args.json ? process.stderr : process.stdout;
const say = (line = '') => out.write(`${line}\n`);

process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));

// --- machine noise ------------------------------------------------------------

function machineBusySeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields;
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / 100;
}

/** Waits (up to 5 s) until the machine used under 25% of a core for 300 ms; returns that share. */
async function waitForQuiet(): Promise<number> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const before = machineBusySeconds();
    await sleep(300);
    const busy = (machineBusySeconds() - before) / 0.3;
    if (busy < 0.25 || Date.now() > deadline) return busy;
  }
}

// --- network: redis-benchmark against each server -------------------------------

interface NetResult {
  system: 'offpath' | 'redis';
  config: string;
  durability: string;
  backend: string;
  test: 'SET' | 'GET';
  clients: number;
  rps: number[];
  p50Ms: number[];
  p99Ms: number[];
  /** Server CPU seconds per 100k requests (both tests of the run). */
  cpuPer100k: number[];
  /** Other processes' CPU during the run, share of one core (noise). */
  noise: number[];
}

interface Config {
  system: 'offpath' | 'redis';
  config: string;
  durability: string;
  backend: string;
  start(): Promise<Service>;
}

const median = (xs: number[]) => {
  const s = [...xs].filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function networkRuns(): Promise<NetResult[]> {
  if (!has('redis-benchmark')) {
    say('redis-benchmark is not installed (apt-get install -y redis-tools): skipped the network comparison');
    return [];
  }
  const device = await startDevice('file', vsaBytes, spinUs);
  const configs: Config[] = [
    { system: 'offpath', config: 'offpath crash', durability: 'crash: survives process crashes', backend: 'emulator file store', start: () => startKv(device, 'crash') },
    { system: 'offpath', config: 'offpath power', durability: 'power: FUA per batch', backend: 'emulator file store', start: () => startKv(device, 'power') },
  ];
  if (!args['no-redis'] && has('redis-server')) {
    for (const fsync of ['no', 'everysec', 'always'] as const) {
      configs.push({
        system: 'redis',
        config: `redis appendfsync ${fsync}`,
        durability: fsync === 'always' ? 'fsync per event-loop batch' : fsync === 'everysec' ? 'fsync every second' : 'write() per batch, no fsync',
        backend: 'AOF in a temp dir (same filesystem)',
        start: () => startRedis(fsync),
      });
    }
  } else say('redis-server is not installed (apt-get install -y redis-server): only offpath runs');
  const results = new Map<string, NetResult>();
  for (let r = 0; r < repeat; r++) {
    for (const config of configs) {
      const service = await config.start();
      try {
        for (const clients of clientCounts) {
          const n = clients === 1 ? Math.max(2000, Math.round(requests / 5)) : requests;
          const noise = await waitForQuiet();
          const cpuBefore = service.cpuSeconds();
          const busyBefore = machineBusySeconds();
          const started = performance.now();
          const rows: BenchmarkRow[] = await redisBenchmark(service.port, 'set,get', clients, n, VALUE_BYTES, KEYSPACE);
          const seconds = (performance.now() - started) / 1000;
          const cpu = service.cpuSeconds() - cpuBefore;
          // What the machine did besides this server and the benchmark client (roughly one core each at most).
          const others = Math.max(0, (machineBusySeconds() - busyBefore - cpu) / seconds - 1);
          for (const row of rows) {
            const test = row.test as 'SET' | 'GET';
            const key = `${config.config}|${test}|${clients}`;
            const entry =
              results.get(key) ??
              ({ system: config.system, config: config.config, durability: config.durability, backend: config.backend, test, clients, rps: [], p50Ms: [], p99Ms: [], cpuPer100k: [], noise: [] } as NetResult);
            entry.rps.push(row.rps);
            entry.p50Ms.push(row.p50Ms);
            entry.p99Ms.push(row.p99Ms);
            entry.cpuPer100k.push((cpu / (2 * n)) * 100_000);
            entry.noise.push(Math.max(noise, others));
            results.set(key, entry);
          }
          say(`  ${config.config.padEnd(26)} ${String(clients).padStart(2)} clients: ${rows.map((row) => `${row.test} ${Math.round(row.rps)}/s`).join(', ')}`);
        }
      } finally {
        await service.stop();
      }
    }
  }
  await device.stop();
  return [...results.values()];
}

// --- embedded: the library without a network, against lmdb ----------------------

interface EmbeddedResult {
  system: string;
  durability: string;
  backend: string;
  test: 'SET' | 'GET';
  concurrency: number;
  opsPerSecond: number[];
}

async function timeOps(total: number, concurrency: number, op: (i: number) => Promise<unknown> | unknown): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < total) {
      const i = next++;
      await op(i);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return total / ((performance.now() - started) / 1000);
}

async function loadLmdb(): Promise<any | null> {
  try {
    if (args['lmdb-module']) return createRequire(join(resolve(args['lmdb-module']), 'noop.js'))('lmdb');
    const specifier = 'lmdb';
    return await import(specifier);
  } catch {
    return null;
  }
}

async function embeddedRuns(): Promise<EmbeddedResult[]> {
  const results: EmbeddedResult[] = [];
  const value = Buffer.alloc(VALUE_BYTES, 120);
  const key = (i: number) => `key:${String(i % KEYSPACE).padStart(12, '0')}`;
  const n = quick ? 5_000 : 20_000;
  const add = (system: string, durability: string, backend: string, test: 'SET' | 'GET', concurrency: number, ops: number) => {
    let entry = results.find((e) => e.system === system && e.durability === durability && e.test === test && e.concurrency === concurrency);
    if (!entry) results.push((entry = { system, durability, backend, test, concurrency, opsPerSecond: [] }));
    entry.opsPerSecond.push(ops);
    say(`  ${`${system} ${durability}`.padEnd(26)} ${test} ×${concurrency}: ${Math.round(ops)}/s`);
  };
  const lmdb = await loadLmdb();
  if (!lmdb) say('lmdb is not installed (npm install --save-dev lmdb, or --lmdb-module DIR): skipped the lmdb comparison');
  for (let r = 0; r < repeat; r++) {
    for (const durability of ['crash', 'power'] as Durability[]) {
      const device = await startDevice('file', 256 << 20, spinUs);
      const vsa = await open(device.vsic, { poolBytes: 64 << 20 });
      const store = await KvStore.open(vsa, { durability });
      try {
        for (const concurrency of clientCounts) {
          await waitForQuiet();
          add('offpath library', durability, 'emulator file store', 'SET', concurrency, await timeOps(concurrency === 1 ? n / 4 : n, concurrency, (i) => store.set(key(i), value)));
          await waitForQuiet();
          add('offpath library', durability, 'emulator file store', 'GET', concurrency, await timeOps(n, concurrency, (i) => store.get(key(i % (n / 4)))));
        }
      } finally {
        await store.close();
        await vsa.close();
        await device.stop();
      }
    }
    if (lmdb) {
      const dir = mkdtempSync(join(tmpdir(), 'offpath-kv-lmdb-'));
      // Synchronous commits: a put resolves after its (batched) transaction is fsynced.
      const db = lmdb.open({ path: dir, noSync: false, overlappingSync: false, compression: false });
      try {
        for (const concurrency of clientCounts) {
          await waitForQuiet();
          add('lmdb', 'sync commits', 'file in a temp dir', 'SET', concurrency, await timeOps(concurrency === 1 ? n / 4 : n, concurrency, (i) => db.put(key(i), value)));
          await waitForQuiet();
          add('lmdb', 'sync commits', 'file in a temp dir', 'GET', concurrency, await timeOps(n, concurrency, (i) => db.get(key(i % (n / 4)))));
        }
      } finally {
        await db.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  return results;
}

// --- report ------------------------------------------------------------------------

function table(headers: string[], rows: Array<Array<string | number>>): string {
  const text = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, c) => Math.max(...text.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  return [line(text[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...text.slice(1).map(line)].join('\n');
}

const fmt = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');
const spread = (xs: number[]) => (xs.length > 1 ? ` (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})` : '');

async function main(): Promise<void> {
  say(`offpath KV benchmark: ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), Linux ${release()}, Node ${process.version}`);
  say(`redis-benchmark: ${VALUE_BYTES}-byte values, ${KEYSPACE} keys, ${requests} requests (1 client: ${Math.max(2000, Math.round(requests / 5))}), median of ${repeat}`);
  const net = await networkRuns();
  const embedded = args['no-embedded'] ? [] : await embeddedRuns();
  await stopAll();

  if (net.length > 0) {
    say('\nredis-benchmark (requests per second, median (min–max); latency of the median run)');
    say(
      table(
        ['server', 'backend', 'test', 'clients', 'req/s', 'p50 ms', 'p99 ms', 'server CPU s/100k', 'noise (cores)'],
        net.map((r) => [r.config, r.backend, r.test, r.clients, `${fmt(median(r.rps))}${spread(r.rps)}`, median(r.p50Ms).toFixed(3), median(r.p99Ms).toFixed(3), median(r.cpuPer100k).toFixed(2), median(r.noise).toFixed(2)]),
      ),
    );
  }
  if (embedded.length > 0) {
    say('\nembedded, no network (operations per second, median (min–max))');
    say(table(['system', 'durability', 'test', 'concurrency', 'ops/s'], embedded.map((r) => [r.system, r.durability, r.test, r.concurrency, `${fmt(median(r.opsPerSecond))}${spread(r.opsPerSecond)}`])));
  }

  const rps = (config: string, test: string, clients: number) => median(net.find((r) => r.config === config && r.test === test && r.clients === clients)?.rps ?? []);
  const ratios: Record<string, { value: number; target?: number }> = {};
  const ratio = (name: string, a: number, b: number, target?: number) => {
    if (Number.isFinite(a) && Number.isFinite(b) && b > 0) ratios[name] = { value: a / b, ...(target === undefined ? {} : { target }) };
  };
  const many = Math.max(...clientCounts);
  ratio(`SET ${many} clients: offpath power / redis always`, rps('offpath power', 'SET', many), rps('redis appendfsync always', 'SET', many), 1.5);
  ratio(`GET ${many} clients: offpath power / redis always`, rps('offpath power', 'GET', many), rps('redis appendfsync always', 'GET', many), 1.0);
  ratio(`GET ${many} clients: offpath crash / redis everysec`, rps('offpath crash', 'GET', many), rps('redis appendfsync everysec', 'GET', many), 1.0);
  ratio(`SET ${many} clients: offpath crash / redis no`, rps('offpath crash', 'SET', many), rps('redis appendfsync no', 'SET', many));
  ratio(`SET ${many} clients: offpath crash / redis everysec`, rps('offpath crash', 'SET', many), rps('redis appendfsync everysec', 'SET', many));
  ratio('SET 1 client: offpath power / redis always', rps('offpath power', 'SET', 1), rps('redis appendfsync always', 'SET', 1));
  ratio('GET 1 client: offpath crash / redis everysec', rps('offpath crash', 'GET', 1), rps('redis appendfsync everysec', 'GET', 1));
  const emb = (system: string, durability: string, test: string, c: number) =>
    median(embedded.find((e) => e.system === system && e.durability === durability && e.test === test && e.concurrency === c)?.opsPerSecond ?? []);
  ratio(`embedded SET ×${many}: offpath power / lmdb sync`, emb('offpath library', 'power', 'SET', many), emb('lmdb', 'sync commits', 'SET', many));
  ratio('embedded SET ×1: offpath power / lmdb sync', emb('offpath library', 'power', 'SET', 1), emb('lmdb', 'sync commits', 'SET', 1));
  ratio(`embedded GET ×${many}: offpath / lmdb`, emb('offpath library', 'power', 'GET', many), emb('lmdb', 'sync commits', 'GET', many));
  if (Object.keys(ratios).length > 0) {
    say('\nratios');
    for (const [name, { value, target }] of Object.entries(ratios)) {
      say(`  ${name.padEnd(52)} ${value.toFixed(2)}×${target === undefined ? '' : `  (target ≥ ${target}×: ${value >= target ? 'met' : 'NOT met'})`}`);
    }
  }
  if (args.json) {
    process.stdout.write(
      `${JSON.stringify({
        machine: { cpus: cpus().length, model: cpus()[0]?.model.trim(), kernel: release(), node: process.version },
        settings: { requests, repeat, clients: clientCounts, valueBytes: VALUE_BYTES, keyspace: KEYSPACE, spinUs },
        network: net.map((r) => ({ ...r, medianRps: median(r.rps) })),
        embedded: embedded.map((e) => ({ ...e, medianOps: median(e.opsPerSecond) })),
        ratios,
      })}\n`,
    );
  }
}

main().catch(async (error) => {
  await stopAll();
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exit(1);
});
