// The normal door: `offpath-kv serve --capability TOKEN` against a running
// daemon (an emulated memory device). Writes survive a restart of the
// server with a new grant; a revoked capability stops the server (exit 1)
// without losing what it acknowledged.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
const dbg = (m: string) => process.env.KV_DEBUG && console.log('DBG', m);
import * as assert from 'uvu/assert';
import { KvClient } from './fixtures/kv-client.js';
import { startKvServer, type KvServerProcess } from './fixtures/kv-env.js';

const run = promisify(execFile);
const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'controlplane', 'cli.ts');
const folder = mkdtempSync(join(tmpdir(), 'offpath-kv-cap-'));
const socket = join(folder, 'daemon.sock');
let daemon: ChildProcess | undefined;
const servers: KvServerProcess[] = [];

async function offpath(...args: string[]): Promise<string> {
  return (await run(process.execPath, ['--import', 'tsx', cli, '--socket', socket, ...args])).stdout;
}

test.before(async () => {
  daemon = spawn(process.execPath, ['--import', 'tsx', cli, '--socket', socket, 'daemon', '--state', folder, '--device', 'emu:memory:128M', '--vfs', '2'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    daemon!.stdout!.on('data', (chunk) => {
      out += chunk;
      if (out.includes('listening on')) resolve();
    });
    daemon!.on('exit', (code) => reject(new Error(`daemon exited ${code}`)));
  });
  dbg('daemon up');
  await offpath('vsa', 'create', 'kv', '--size', '32M');
  dbg('vsa created');
});

test.after(async () => {
  for (const server of servers) await server.kill().catch(() => {});
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((resolve) => daemon!.once('exit', resolve));
  }
  rmSync(folder, { recursive: true, force: true });
});

/** The promise's value, or a failure after `ms` (nothing here may hang the suite). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const grant = async () => (await offpath('grant', 'kv')).split('\n')[0]!.trim();

test('serve --capability: writes, a clean restart with a new grant, then revocation', async () => {
  let server = await startKvServer({ capability: await grant(), daemon: socket }, ['--durability', 'power']);
  servers.push(server);
  dbg('server 1 up');
  let client = await KvClient.connect(server.port);
  assert.is(await client.call('SET', 'through', 'the daemon'), 'OK');
  assert.is(await client.call('INCR', 'n'), 1);
  client.close();
  await server.stop();
  assert.is(await within(server.exited, 10_000, 'clean stop'), 0);

  const token = await grant();
  server = await startKvServer({ capability: token, daemon: socket });
  servers.push(server);
  client = await KvClient.connect(server.port);
  assert.equal(await client.call('GET', 'through'), Buffer.from('the daemon'));
  assert.is(await client.call('INCR', 'n'), 2);
  const info = ((await client.call('INFO', 'persistence')) as Buffer).toString();
  assert.match(info, /kv_vsa:kv\r\n/);
  // Revoke: the VSIC goes offline under the server; it closes its clients and exits 1.
  const id = /^opcap_([^_]+)_/.exec(token)![1]!;
  dbg('revoking');
  await offpath('cap', 'revoke', id);
  dbg('revoked');
  assert.is(await within(server.exited, 10_000, 'exit after revocation'), 1);
  assert.match(server.stderr(), /CAP_REVOKED|revoked|went away/);

  server = await startKvServer({ capability: await grant(), daemon: socket });
  servers.push(server);
  client = await KvClient.connect(server.port);
  assert.equal(await client.call('GET', 'n'), Buffer.from('2'), 'what was acknowledged before the revocation is there');
  client.close();
  await server.stop();
});

test.run();
