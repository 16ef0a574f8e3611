// The KV server's RESP front end, spoken to over loopback: raw conversations
// checked byte for byte against what Redis 7 answers (and against a real
// redis-server when one is installed), pipelining in any chunking, values
// read back from the VSA (the server runs with no value cache), redis-cli
// and redis-benchmark unmodified when installed.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeCommand as c } from '../examples/kv/resp.js';
import { converse, KvClient } from './fixtures/kv-client.js';
import { startKvServer, startKvVf, type KvServerProcess, type KvVf } from './fixtures/kv-env.js';

const run = promisify(execFile);
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

let vf: KvVf;
let server: KvServerProcess;
let redis: { process: ChildProcess; port: number; dir: string } | undefined;

const big = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => 97 + ((i * 7 + seed) % 26)));

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

test.before(async () => {
  vf = await startKvVf(8192);
  // No value cache: every value above 64 bytes is read back from the VSA.
  server = await startKvServer(vf.vsic, ['--cache', '0']);
  if (has('redis-server')) {
    const dir = mkdtempSync(join(tmpdir(), 'offpath-kv-redis-'));
    const port = await freePort();
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--databases', '1'], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 100; i++) {
      const ok = await converse(port, [c('PING')], { expectBytes: 7, timeoutMs: 200 }).then(
        (r) => r.received.toString() === '+PONG\r\n',
        () => false,
      );
      if (ok) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    redis = { process: child, port, dir };
  }
});

test.after(async () => {
  await server?.stop();
  await vf?.stop();
  if (redis) {
    redis.process.kill('SIGKILL');
    rmSync(redis.dir, { recursive: true, force: true });
  }
});

/** A conversation whose every reply is fixed (no times, no ids): byte for byte as Redis 7 answers. */
const CONVERSATION: Array<[Buffer, string]> = [
  [c('PING'), '+PONG\r\n'],
  [c('ping', 'hello world'), '$11\r\nhello world\r\n'],
  [c('ECHO', ''), '$0\r\n\r\n'],
  [c('GET', 'conv:missing'), '$-1\r\n'],
  [c('SET', 'conv:a', 'alpha'), '+OK\r\n'],
  [c('GET', 'conv:a'), '$5\r\nalpha\r\n'],
  [c('set', 'conv:b', big(300, 1)), '+OK\r\n'],
  [c('GET', 'conv:b'), `$300\r\n${big(300, 1)}\r\n`],
  [c('SET', 'conv:a', 'x', 'NX'), '$-1\r\n'],
  [c('SET', 'conv:new', 'y', 'XX'), '$-1\r\n'],
  [c('SET', 'conv:a', 'beta', 'XX', 'GET'), '$5\r\nalpha\r\n'],
  [c('SET', 'conv:a', 'gamma', 'GET'), '$4\r\nbeta\r\n'],
  [c('SET', 'conv:k', 'v', 'NX', 'XX'), '-ERR syntax error\r\n'],
  [c('SET', 'conv:k', 'v', 'EX', '0'), "-ERR invalid expire time in 'set' command\r\n"],
  [c('SET', 'conv:k', 'v', 'EX', 'x'), '-ERR value is not an integer or out of range\r\n'],
  [c('SET', 'conv:k', 'v', 'PX', '-5'), "-ERR invalid expire time in 'set' command\r\n"],
  [c('SET', 'conv:k', 'v', 'EX', '10', 'PX', '5'), '-ERR syntax error\r\n'],
  [c('SET', 'conv:k', 'v', 'KEEPTTL', 'EX', '5'), '-ERR syntax error\r\n'],
  [c('SET', 'conv:k', 'v', 'foo'), '-ERR syntax error\r\n'],
  [c('SET', 'conv:k', 'v', 'EX', '9223372036854775807'), "-ERR invalid expire time in 'set' command\r\n"],
  [c('SET', 'conv:k', 'v', 'EX', '100'), '+OK\r\n'],
  [c('TTL', 'conv:k'), ':100\r\n'],
  [c('SET', 'conv:k', 'w', 'KEEPTTL'), '+OK\r\n'],
  [c('TTL', 'conv:k'), ':100\r\n'],
  [c('PERSIST', 'conv:k'), ':1\r\n'],
  [c('PERSIST', 'conv:k'), ':0\r\n'],
  [c('TTL', 'conv:k'), ':-1\r\n'],
  [c('TTL', 'conv:missing'), ':-2\r\n'],
  [c('PTTL', 'conv:missing'), ':-2\r\n'],
  [c('EXPIRE', 'conv:k', 'x'), '-ERR value is not an integer or out of range\r\n'],
  [c('EXPIRE', 'conv:k', '10', 'nx', 'xx'), '-ERR NX and XX, GT or LT options at the same time are not compatible\r\n'],
  [c('EXPIRE', 'conv:k', '10', 'GT', 'LT'), '-ERR GT and LT options at the same time are not compatible\r\n'],
  [c('EXPIRE', 'conv:k', '10', 'foo'), '-ERR Unsupported option foo\r\n'],
  [c('EXPIRE', 'conv:k', '9223372036854775807'), "-ERR invalid expire time in 'expire' command\r\n"],
  [c('EXPIRE', 'conv:missing', '100'), ':0\r\n'],
  [c('EXPIRE', 'conv:k', '100', 'XX'), ':0\r\n'],
  [c('EXPIRE', 'conv:k', '100', 'NX'), ':1\r\n'],
  [c('EXPIRE', 'conv:k', '50', 'GT'), ':0\r\n'],
  [c('EXPIRE', 'conv:k', '50', 'LT'), ':1\r\n'],
  [c('TTL', 'conv:k'), ':50\r\n'],
  [c('EXPIRE', 'conv:k', '-1'), ':1\r\n'],
  [c('EXISTS', 'conv:k'), ':0\r\n'],
  [c('EXISTS', 'conv:a', 'conv:a', 'conv:missing'), ':2\r\n'],
  [c('MSET', 'conv:m1', '1', 'conv:m2', big(200, 2)), '+OK\r\n'],
  [c('MSET', 'conv:m1'), "-ERR wrong number of arguments for 'mset' command\r\n"],
  [c('MSET', 'conv:m1', '1', 'conv:m2'), "-ERR wrong number of arguments for 'mset' command\r\n"],
  [c('MGET', 'conv:m1', 'conv:missing', 'conv:m2', 'conv:b'), `*4\r\n$1\r\n1\r\n$-1\r\n$200\r\n${big(200, 2)}\r\n$300\r\n${big(300, 1)}\r\n`],
  [c('INCR', 'conv:m1'), ':2\r\n'],
  [c('INCRBY', 'conv:m1', '40'), ':42\r\n'],
  [c('DECR', 'conv:m1'), ':41\r\n'],
  [c('DECRBY', 'conv:m1', '-9'), ':50\r\n'],
  [c('INCR', 'conv:counter'), ':1\r\n'],
  [c('INCR', 'conv:a'), '-ERR value is not an integer or out of range\r\n'],
  [c('INCR', 'conv:b'), '-ERR value is not an integer or out of range\r\n'],
  [c('INCRBY', 'conv:m1', 'x'), '-ERR value is not an integer or out of range\r\n'],
  [c('SET', 'conv:n', '9223372036854775807'), '+OK\r\n'],
  [c('INCR', 'conv:n'), '-ERR increment or decrement would overflow\r\n'],
  [c('DECRBY', 'conv:n', '-9223372036854775808'), '-ERR decrement would overflow\r\n'],
  [c('INCRBY', 'conv:n', '-9223372036854775807'), ':0\r\n'],
  [c('SET', 'conv:s', '01'), '+OK\r\n'],
  [c('INCR', 'conv:s'), '-ERR value is not an integer or out of range\r\n'],
  [c('SET', 'conv:s', '-0'), '+OK\r\n'],
  [c('INCR', 'conv:s'), '-ERR value is not an integer or out of range\r\n'],
  [c('SET', 'conv:s', ' 1'), '+OK\r\n'],
  [c('INCR', 'conv:s'), '-ERR value is not an integer or out of range\r\n'],
  [c('DEL', 'conv:s', 'conv:missing', 'conv:n'), ':2\r\n'],
  [c('DEL', 'conv:s'), ':0\r\n'],
  [c('GET'), "-ERR wrong number of arguments for 'get' command\r\n"],
  [c('get', 'a', 'b'), "-ERR wrong number of arguments for 'get' command\r\n"],
  [c('TTL'), "-ERR wrong number of arguments for 'ttl' command\r\n"],
  [c('PING', 'a', 'b'), "-ERR wrong number of arguments for 'ping' command\r\n"],
  [c('EXISTS'), "-ERR wrong number of arguments for 'exists' command\r\n"],
  [c('DEL'), "-ERR wrong number of arguments for 'del' command\r\n"],
  [c('MGET'), "-ERR wrong number of arguments for 'mget' command\r\n"],
  [c('DBSIZE', 'x'), "-ERR wrong number of arguments for 'dbsize' command\r\n"],
  [c('ECHO'), "-ERR wrong number of arguments for 'echo' command\r\n"],
  [c('foo'), "-ERR unknown command 'foo', with args beginning with: \r\n"],
  [c('FOO', 'aaaa', 'bbbbbbbb', 'c'), "-ERR unknown command 'FOO', with args beginning with: 'aaaa' 'bbbbbbbb' 'c' \r\n"],
  [c('foo', 'x'.repeat(200), 'y'), `-ERR unknown command 'foo', with args beginning with: '${'x'.repeat(128)}' \r\n`],
  [c('un\r\nknown'), "-ERR unknown command 'un  known', with args beginning with: \r\n"],
  [c('SELECT', '0'), '+OK\r\n'],
  [c('SELECT', 'x'), '-ERR value is not an integer or out of range\r\n'],
  [c('FLUSHDB', 'x'), '-ERR syntax error\r\n'],
  [c('CONFIG', 'GET', 'save'), '*2\r\n$4\r\nsave\r\n$0\r\n\r\n'],
];

function conversationBytes(): { request: Buffer; expected: Buffer } {
  return {
    request: Buffer.concat(CONVERSATION.map(([r]) => r)),
    expected: Buffer.from(CONVERSATION.map(([, e]) => e).join(''), 'latin1'),
  };
}

/** Where two byte strings first differ, with context, for a readable failure. */
function firstDifference(actual: Buffer, expected: Buffer): string {
  let i = 0;
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++;
  const show = (b: Buffer) => JSON.stringify(b.toString('latin1', Math.max(0, i - 60), i + 60));
  return `differ at byte ${i}:\n  got      ${show(actual)}\n  expected ${show(expected)}`;
}

async function resetKeys(port: number): Promise<void> {
  await converse(port, [c('FLUSHDB')], { expectBytes: 5 });
}

test('a conversation, pipelined in one write, answered byte for byte as Redis 7 does', async () => {
  await resetKeys(server.port);
  const { request, expected } = conversationBytes();
  const { received } = await converse(server.port, [request], { expectBytes: expected.length });
  assert.ok(received.equals(expected), firstDifference(received, expected));
});

test('the same conversation one command at a time, and cut into 1- to 7-byte pieces', async () => {
  await resetKeys(server.port);
  const { expected } = conversationBytes();
  const socket = await KvClient.connect(server.port);
  socket.close();
  // One command per round trip.
  const oneByOne: Buffer[] = [];
  for (const [request, reply] of CONVERSATION) {
    const { received } = await converse(server.port, [request], { expectBytes: Buffer.byteLength(reply, 'latin1') });
    oneByOne.push(received);
  }
  const joined = Buffer.concat(oneByOne);
  assert.ok(joined.equals(expected), firstDifference(joined, expected));
  // Pieces that split lengths, CRLFs and values anywhere.
  await resetKeys(server.port);
  const { request } = conversationBytes();
  const pieces: Buffer[] = [];
  for (let at = 0, n = 1; at < request.length; at += n, n = (n % 7) + 1) pieces.push(request.subarray(at, at + n));
  const { received } = await converse(server.port, pieces, { expectBytes: expected.length, timeoutMs: 10_000 });
  assert.ok(received.equals(expected), firstDifference(received, expected));
});

test('the conversation gets the same bytes from a real redis-server (when installed)', async () => {
  if (!redis) {
    console.log('    (redis-server not installed: skipped the side-by-side comparison)');
    return;
  }
  await resetKeys(redis.port);
  const { request, expected } = conversationBytes();
  const { received } = await converse(redis.port, [request], { expectBytes: expected.length });
  assert.ok(received.equals(expected), `redis-server itself: ${firstDifference(received, expected)}`);
});

test('inline commands, empty requests, and protocol errors (reply, then close) as Redis', async () => {
  await resetKeys(server.port);
  const inline = await converse(server.port, ['PING\r\nSET a  b\r\nGET a\r\nset q "b c\\x41"\r\nget q\r\n\r\n*0\r\n*-1\r\nEXISTS a\r\n'], { expectBytes: 40 });
  assert.is(inline.received.toString('latin1'), '+PONG\r\n+OK\r\n$1\r\nb\r\n+OK\r\n$4\r\nb cA\r\n:1\r\n');
  const cases: Array<[string, string]> = [
    ['*x\r\n', '-ERR Protocol error: invalid multibulk length\r\n'],
    ['*1\r\n$x\r\n', '-ERR Protocol error: invalid bulk length\r\n'],
    ['*1\r\n$-1\r\n', '-ERR Protocol error: invalid bulk length\r\n'],
    ['*2\r\n$3\r\nGET\r\n:1\r\n', "-ERR Protocol error: expected '$', got ':'\r\n"],
    ['PING\r\nset a "b\r\nPING\r\n', '+PONG\r\n-ERR Protocol error: unbalanced quotes in request\r\n'],
  ];
  for (const [request, reply] of cases) {
    const { received, closed } = await converse(server.port, [request], { timeoutMs: 2000 });
    assert.is(received.toString('latin1'), reply, JSON.stringify(request));
    assert.ok(closed, `the server closed the connection after ${JSON.stringify(request)}`);
  }
  // QUIT: +OK, then the connection closes and what followed is not run.
  const quit = await converse(server.port, [Buffer.concat([c('SET', 'q1', 'v'), c('QUIT'), c('SET', 'q2', 'v')])], { timeoutMs: 2000 });
  assert.is(quit.received.toString(), '+OK\r\n+OK\r\n');
  assert.ok(quit.closed);
  const after = await converse(server.port, [c('EXISTS', 'q1', 'q2')], { expectBytes: 4 });
  assert.is(after.received.toString(), ':1\r\n');
});

test('1000-command pipelines of SET and GET, with values read back from the VSA, in order', async () => {
  await resetKeys(server.port);
  const value = (i: number) => big(65 + (i % 300), i);
  const sets = Array.from({ length: 500 }, (_, i) => c('SET', `p:${i}`, value(i)));
  const ok = Buffer.from('+OK\r\n'.repeat(500));
  const first = await converse(server.port, [Buffer.concat(sets)], { expectBytes: ok.length, timeoutMs: 10_000 });
  assert.ok(first.received.equals(ok), firstDifference(first.received, ok));
  // Reads (from the VSA: nothing is cached) interleaved with writes, small values, misses.
  const requests: Buffer[] = [];
  const replies: string[] = [];
  for (let i = 0; i < 500; i++) {
    requests.push(c('GET', `p:${(i * 7) % 500}`), i % 3 === 0 ? c('SET', `q:${i}`, `${i}`) : c('GET', i % 3 === 1 ? `q:${i - 1}` : `none:${i}`));
    const v = value((i * 7) % 500);
    replies.push(`$${v.length}\r\n${v}\r\n`, i % 3 === 0 ? '+OK\r\n' : i % 3 === 1 ? `$${`${i - 1}`.length}\r\n${i - 1}\r\n` : '$-1\r\n');
  }
  const expected = Buffer.from(replies.join(''), 'latin1');
  const { received } = await converse(server.port, [Buffer.concat(requests)], { expectBytes: expected.length, timeoutMs: 10_000 });
  assert.ok(received.equals(expected), firstDifference(received, expected));
  const info = await converse(server.port, [c('INFO', 'stats')], { timeoutMs: 500 });
  const reads = Number(/kv_value_reads:(\d+)/.exec(info.received.toString())?.[1]);
  assert.ok(reads >= 500, `values came from the VSA (${reads} reads)`);
});

test('large values (1 MiB, 3 MiB) in and out, split across many TCP segments', async () => {
  const client = await KvClient.connect(server.port);
  for (const size of [1 << 20, 3 << 20]) {
    const value = big(size, size);
    assert.is(await client.call('SET', `large:${size}`, value), 'OK');
    const back = (await client.call('GET', `large:${size}`)) as Buffer;
    assert.is(back.length, size);
    assert.ok(back.equals(value), `${size} bytes came back intact`);
  }
  client.close();
});

test('what one client acknowledged, another client sees; DBSIZE, FLUSHDB, INFO', async () => {
  await resetKeys(server.port);
  const a = await KvClient.connect(server.port);
  const b = await KvClient.connect(server.port);
  for (let i = 0; i < 50; i++) {
    assert.is(await a.call('SET', `vis:${i}`, `${i}`), 'OK');
    assert.equal(await b.call('GET', `vis:${i}`), Buffer.from(`${i}`));
  }
  assert.is(await b.call('DBSIZE'), 50);
  assert.is(await a.call('FLUSHDB'), 'OK');
  assert.is(await b.call('DBSIZE'), 0);
  const info = ((await a.call('INFO')) as Buffer).toString();
  for (const section of ['# Server', '# Clients', '# Memory', '# Persistence', '# Stats']) assert.ok(info.includes(section), section);
  assert.match(info, /redis_version:7\./);
  assert.match(info, /kv_durability:crash/);
  a.close();
  b.close();
});

test('redis-cli, unmodified, when installed', async () => {
  if (!has('redis-cli')) {
    console.log('    (redis-cli not installed: skipped)');
    return;
  }
  const cli = async (...args: string[]) => (await run('redis-cli', ['-p', String(server.port), ...args])).stdout;
  assert.is(await cli('PING'), 'PONG\n');
  assert.is(await cli('SET', 'cli:k', 'hello world'), 'OK\n');
  assert.is(await cli('GET', 'cli:k'), 'hello world\n');
  assert.is(await cli('INCR', 'cli:n'), '1\n');
  assert.is(await cli('MSET', 'cli:a', '1', 'cli:b', '2'), 'OK\n');
  assert.is(await cli('MGET', 'cli:a', 'cli:missing', 'cli:b'), '1\n\n2\n');
  assert.is(await cli('--no-raw', 'MGET', 'cli:a', 'cli:missing'), '1) "1"\n2) (nil)\n');
  assert.is(await cli('EXPIRE', 'cli:k', '100'), '1\n');
  assert.is(await cli('TTL', 'cli:k'), '100\n');
  assert.is(await cli('NOSUCH', 'x'), "ERR unknown command 'NOSUCH', with args beginning with: 'x' \n\n");
  // Several commands through one connection (redis-cli reads them from stdin, pipelined).
  const piped = await new Promise<string>((resolve, reject) => {
    const child = execFile('redis-cli', ['-p', String(server.port)], (error, stdout) => (error ? reject(error) : resolve(stdout)));
    child.stdin!.end('SET cli:p 1\nINCRBY cli:p 9\nGET cli:p\nDEL cli:p\nEXISTS cli:p\n');
  });
  assert.is(piped, 'OK\n10\n10\n1\n0\n');
});

test('redis-benchmark, unmodified, when installed (SET/GET, 50 clients, pipelined too)', async () => {
  if (!has('redis-benchmark')) {
    console.log('    (redis-benchmark not installed: skipped)');
    return;
  }
  for (const extra of [[], ['-P', '16']]) {
    const { stdout } = await run('redis-benchmark', ['-p', String(server.port), '-t', 'set,get', '-n', '3000', '-c', '50', '-d', '100', '-r', '1000', '--csv', ...extra]);
    const rows = stdout.trim().split('\n').slice(1);
    assert.is(rows.length, 2, stdout);
    for (const row of rows) assert.ok(Number(JSON.parse(`[${row}]`)[1]) > 0, row);
  }
  const client = await KvClient.connect(server.port);
  const value = (await client.call('GET', 'key:000000000042')) as Buffer | null;
  assert.ok(value === null || value.length === 100);
  client.close();
});

test.run();
