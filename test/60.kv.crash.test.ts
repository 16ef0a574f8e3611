// kill -9 of the KV server at random points under load from concurrent
// clients (SETs of 10 B to 20 KiB — multi-block frames —, MSETs, INCRs,
// DELs), round after round: after each restart every acknowledged write is
// there, byte for byte, and nothing unacknowledged is half-visible (a value
// is whole or absent, both keys of an MSET or neither). A second test kills
// the emulator too (file-backed store, `power` durability).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectPf, startEmulator } from './helpers/emulator.js';
import { KvClient, type Reply } from './fixtures/kv-client.js';
import { startKvServer, startKvVf, type KvServerProcess } from './fixtures/kv-env.js';

const SIZES = [10, 100, 700, 3000, 9000, 20000];

let seed = Number(process.env.KV_CRASH_SEED ?? 20240611);
const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;

/** The value a key must hold: derived from the key, so a torn or mixed-up value cannot match. */
function valueOf(key: string, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  for (let i = 0; i < size; i++) {
    h = Math.imul(h ^ i, 16777619) >>> 0;
    out[i] = 33 + (h % 90);
  }
  return out;
}

/** What the clients did, and which of it was acknowledged. */
class Ledger {
  /** key -> size, for SETs sent (acknowledged or not). */
  readonly sent = new Map<string, number>();
  readonly acked = new Set<string>();
  /** Keys whose DEL was sent / acknowledged. */
  readonly delSent = new Set<string>();
  readonly delAcked = new Set<string>();
  /** MSET pairs [a, b]. */
  readonly pairs: Array<[string, string]> = [];
  /** Acknowledged keys not yet picked for a DEL. */
  readonly deletable: string[] = [];
  /** counter key -> [acknowledged increments, increments sent]. */
  readonly counters = new Map<string, [number, number]>();
  ops = 0;
  ackedOps = 0;
}

async function load(port: number, ledger: Ledger, round: number, clients: number, until: Promise<void>): Promise<void> {
  let stopped = false;
  void until.then(() => (stopped = true));
  const lane = async (id: number) => {
    let client: KvClient;
    try {
      client = await KvClient.connect(port);
    } catch {
      return;
    }
    const counter = `ctr:${id}`;
    if (!ledger.counters.has(counter)) ledger.counters.set(counter, [0, 0]);
    let n = 0;
    // A few commands in flight per client (pipelined), as applications do.
    const inflight = new Set<Promise<unknown>>();
    while (!stopped) {
      const op = random();
      const key = `r${round}:c${id}:${n++}`;
      let p: Promise<unknown>;
      ledger.ops++;
      if (op < 0.55) {
        const size = pick(SIZES);
        ledger.sent.set(key, size);
        p = client.call('SET', key, valueOf(key, size)).then((r) => {
          if (r === 'OK') {
            ledger.acked.add(key);
            ledger.deletable.push(key);
          }
        });
      } else if (op < 0.7) {
        const a = `${key}:a`;
        const b = `${key}:b`;
        const [sa, sb] = [pick(SIZES), pick(SIZES)];
        ledger.sent.set(a, sa);
        ledger.sent.set(b, sb);
        ledger.pairs.push([a, b]);
        p = client.call('MSET', a, valueOf(a, sa), b, valueOf(b, sb)).then((r) => {
          if (r === 'OK') {
            ledger.acked.add(a);
            ledger.acked.add(b);
          }
        });
      } else if (op < 0.85) {
        const c = ledger.counters.get(counter)!;
        c[1]++;
        p = client.call('INCR', counter).then((r) => {
          if (typeof r === 'number') c[0]++;
        });
      } else if (ledger.deletable.length > 0) {
        const at = Math.floor(random() * ledger.deletable.length);
        const victim = ledger.deletable[at]!;
        ledger.deletable[at] = ledger.deletable[ledger.deletable.length - 1]!;
        ledger.deletable.pop();
        ledger.delSent.add(victim);
        p = client.call('DEL', victim).then((r) => {
          if (typeof r === 'number') ledger.delAcked.add(victim);
        });
      } else {
        p = client.call('PING');
      }
      const tracked = p.then(
        () => {
          ledger.ackedOps++;
        },
        () => {},
      );
      inflight.add(tracked);
      void tracked.finally(() => inflight.delete(tracked));
      if (inflight.size >= 4) await Promise.race(inflight);
      else if (n % 4 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.allSettled([...inflight]);
    client.close();
  };
  await Promise.all(Array.from({ length: clients }, (_, i) => lane(i)));
}

async function mget(client: KvClient, keys: string[]): Promise<Array<Buffer | null>> {
  const out: Array<Buffer | null> = [];
  for (let i = 0; i < keys.length; i += 200) {
    const reply = (await client.call('MGET', ...keys.slice(i, i + 200))) as Reply[];
    out.push(...(reply as Array<Buffer | null>));
  }
  return out;
}

async function verify(port: number, ledger: Ledger, label: string): Promise<{ present: number; unackedPresent: number }> {
  const client = await KvClient.connect(port);
  const keys = [...ledger.sent.keys()];
  const values = await mget(client, keys);
  const state = new Map<string, boolean>();
  let present = 0;
  let unackedPresent = 0;
  keys.forEach((key, i) => {
    const value = values[i];
    const deleted = ledger.delAcked.has(key);
    const maybeDeleted = ledger.delSent.has(key);
    if (value === null) {
      assert.ok(!ledger.acked.has(key) || maybeDeleted, `${label}: acknowledged ${key} is missing`);
    } else {
      assert.ok(!deleted, `${label}: ${key} was deleted (acknowledged) but is back`);
      assert.ok(value.equals(valueOf(key, ledger.sent.get(key)!)), `${label}: ${key} holds ${value.length} bytes that are not what was written`);
      present++;
      if (!ledger.acked.has(key)) unackedPresent++;
    }
    state.set(key, value !== null);
  });
  for (const [a, b] of ledger.pairs) {
    if (ledger.delSent.has(a) || ledger.delSent.has(b)) continue;
    assert.is(state.get(a), state.get(b), `${label}: MSET ${a} ${b} is half there`);
  }
  for (const [key, [acked, sent]] of ledger.counters) {
    const raw = (await client.call('GET', key)) as Buffer | null;
    const value = raw === null ? 0 : Number(raw.toString());
    assert.ok(value >= acked && value <= sent, `${label}: counter ${key} = ${value}, acknowledged ${acked}, sent ${sent}`);
    // From here on the counter continues from what survived.
    ledger.counters.set(key, [value, value]);
  }
  client.close();
  return { present, unackedPresent };
}

let cleanup: Array<() => Promise<void>> = [];

test('SIGKILL of the server at random points, 5 rounds: acknowledged writes stay, nothing is half-visible', async () => {
  const vf = await startKvVf(2048, { store: 'memory:32M' }); // 8 MiB VSA: the log wraps and compacts
  cleanup.push(() => vf.stop());
  const ledger = new Ledger();
  let server: KvServerProcess | undefined;
  let kills = 0;
  for (let round = 0; round < 5; round++) {
    const durability = round % 2 === 0 ? 'crash' : 'power';
    server = await startKvServer(vf.vsic, ['--durability', durability, '--cache', round === 2 ? '0' : '64M']);
    const current = server;
    cleanup.push(() => current.kill());
    if (round > 0) await verify(server.port, ledger, `after kill ${round}`);
    const killAt = 150 + random() * 350;
    const killed = new Promise<void>((resolve) => setTimeout(resolve, killAt)).then(() => current.kill());
    await load(server.port, ledger, round, 6, killed);
    await killed;
    kills++;
  }
  server = await startKvServer(vf.vsic, []);
  const current = server;
  cleanup.push(() => current.kill());
  const { present } = await verify(server.port, ledger, 'final');
  assert.ok(kills === 5 && ledger.acked.size > 100, `${ledger.acked.size} acknowledged keys over ${kills} kills`);
  assert.ok(present >= ledger.acked.size - ledger.delSent.size, 'every acknowledged key was checked present');
  // The log was reopened after torn ends, and wrapped around the VSA at least once.
  const client = await KvClient.connect(server.port);
  const info = ((await client.call('INFO', 'persistence', 'stats')) as Buffer).toString();
  client.close();
  const head = Number(/kv_head_lsn:(\d+)/.exec(info)![1]);
  const logBytes = Number(/kv_log_bytes:(\d+)/.exec(info)![1]);
  assert.ok(Number(/kv_generation:(\d+)/.exec(info)![1]) >= 6, 'one generation per open');
  console.log(`    ${ledger.ops} operations, ${ledger.acked.size} keys acknowledged, log head at ${(head / logBytes).toFixed(2)}× the log size`);
  await server.stop();
});

test('SIGKILL of the server and the emulator (file store, power durability): acknowledged writes survive both', async () => {
  const folder = mkdtempSync(join(tmpdir(), 'offpath-kv-crash-'));
  cleanup.push(async () => rmSync(folder, { recursive: true, force: true }));
  const sockets = join(folder, 'sockets');
  const storeArgs = ['--store', `file:${join(folder, 'pool.img')}`, '--size', '64M', '--vfs', '1'];
  let emulator = await startEmulator(storeArgs, sockets);
  let pf = await connectPf(emulator);
  const nsid = await pf.createNamespace(2048, 4096);
  await pf.attach(nsid, 1);
  await pf.bringOnline(1, 2, 2);
  const vsic = join(sockets, 'vf-1.sock');
  const ledger = new Ledger();
  for (let round = 0; round < 2; round++) {
    const server = await startKvServer(vsic, ['--durability', 'power']);
    cleanup.push(() => server.kill());
    if (round > 0) await verify(server.port, ledger, `after kill ${round}`);
    const killed = new Promise<void>((resolve) => setTimeout(resolve, 200 + random() * 300)).then(async () => {
      await Promise.all([server.kill(), emulator.kill()]);
    });
    await load(server.port, ledger, 10 + round, 6, killed);
    await killed;
    pf.controller.transport.close();
    emulator = await startEmulator(storeArgs, sockets);
    pf = await connectPf(emulator);
    await pf.bringOnline(1, 2, 2); // attachments persist; online state does not
  }
  const server = await startKvServer(vsic, []);
  cleanup.push(() => server.kill());
  await verify(server.port, ledger, 'final');
  assert.ok(ledger.acked.size > 20, `${ledger.acked.size} acknowledged keys`);
  await server.stop();
  await pf.controller.shutdown().catch(() => {});
  await emulator.stop();
});

test.after(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => {});
  cleanup = [];
});

test.run();
