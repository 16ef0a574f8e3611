/**
 * Fuzzer for offpath's control sockets: the daemon's socket (the one any
 * local user may reach) and an emulator's PF and VF sockets, each run as the
 * real process it is in production.
 *
 *   node --import tsx fuzz/control-socket-fuzz.ts --seconds 10 --seed 42
 *   node --import tsx fuzz/control-socket-fuzz.ts --replay fuzz/regressions/control-socket/irq-bad-vector.json
 *
 * For the given time it sends, over many concurrent connections: valid
 * requests, malformed JSON, messages up to and past the 64 KiB limit, wrong
 * types in every field, unknown and prototype-ish method names, random
 * params, file descriptors of every kind (eventfds, memfds sealed or not,
 * sockets, pipes, files, directories) on any message, bursts nobody reads,
 * connections that never send or close before the reply; on the daemon it
 * also opens VSAs by capability and fuzzes the VSIC connection it hands out.
 * Every choice comes from the seed: the same seed gives the same actions.
 *
 * Afterwards both processes (and the daemon's own emulator) must be alive,
 * still answer `hello` (and the daemon `status`), hold no more descriptors
 * than before (a small constant aside), not have grown their RSS by more
 * than --rss-growth-mb, and the daemon must not have restarted its emulator.
 * Prints one line; exit 0 without findings, 1 with (the line names the seed;
 * the actions of the failing run are written next to the state directory
 * and --replay runs them again).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync, constants as fsConstants } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { native } from '../libstorage/native.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Ids of findings reported and not fixed yet (fuzz/run.sh sets this from fuzz/known-findings). */
const known = new Set((process.env.OFFPATH_FUZZ_IGNORE ?? '').split(',').map((id) => id.trim()).filter(Boolean));
const cliPath = join(repoRoot, 'controlplane', 'cli.ts');
const MAX_MESSAGE_BYTES = 65536;

// ---------------------------------------------------------------------------
// Options

interface Options {
  seconds: number;
  seed: number;
  replay: string | undefined;
  target: 'both' | 'daemon' | 'emulator';
  maxConnections: number;
  rssGrowthMb: number;
  fdSlack: number;
  keep: boolean;
  verbose: boolean;
  childHeapMb: number;
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    seconds: 10,
    seed: Date.now() % 2 ** 31,
    replay: undefined,
    target: 'both',
    maxConnections: 48,
    rssGrowthMb: 256,
    fdSlack: 8,
    keep: false,
    verbose: false,
    childHeapMb: 128,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new RangeError(`${flag} needs a value`);
      return v;
    };
    const number = () => {
      const n = Number(value());
      if (!Number.isFinite(n) || n < 0) throw new RangeError(`${flag} takes a non-negative number`);
      return n;
    };
    switch (flag) {
      case '--seconds': options.seconds = number(); break;
      case '--seed': options.seed = Math.floor(number()) >>> 0; break;
      case '--replay': options.replay = value(); break;
      case '--target': {
        const t = value();
        if (t !== 'both' && t !== 'daemon' && t !== 'emulator') throw new RangeError('--target is both, daemon or emulator');
        options.target = t;
        break;
      }
      case '--connections': options.maxConnections = Math.max(1, Math.floor(number())); break;
      case '--rss-growth-mb': options.rssGrowthMb = number(); break;
      case '--fd-slack': options.fdSlack = Math.floor(number()); break;
      case '--child-heap-mb': options.childHeapMb = Math.floor(number()); break;
      case '--keep': options.keep = true; break;
      case '--verbose': options.verbose = true; break;
      default: throw new RangeError(`unknown option ${flag} (--seconds N --seed S [--replay FILE] [--target both|daemon|emulator] [--connections N] [--rss-growth-mb N] [--fd-slack N] [--child-heap-mb N] [--keep] [--verbose])`);
    }
  }
  return options;
}

// ---------------------------------------------------------------------------
// Seeded randomness (mulberry32): the whole run follows from the seed.

class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  string(length: number, alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789._-'): string {
    let out = '';
    for (let i = 0; i < length; i++) out += alphabet[this.int(alphabet.length)];
    return out;
  }
}

// ---------------------------------------------------------------------------
// Actions: what a run does, recorded so a failing run can be replayed.

type Target = 'daemon' | 'pf' | 'vf-1' | 'vf-2';
type FdKind =
  | 'eventfd'
  | 'memfd'
  | 'memfd-sealed'
  | 'memfd-sealed-small'
  | 'memfd-huge'
  | 'socketpair'
  | 'listener'
  | 'pipe'
  | 'file'
  | 'directory'
  | 'devnull'
  | 'own-connection'
  | 'received';  // one the peers handed out: a BAR memfd, a wake eventfd, a VSIC socket

type Action =
  | { t: 'connect'; conn: number; target: Target }
  | { t: 'vsic'; conn: number }  // open a VSA by capability; the VSIC connection becomes conn
  | { t: 'send'; conn: number; text?: string; base64?: string; fds: FdKind[] }
  | { t: 'burst'; conn: number; count: number; text: string; fds?: number }  // fds: eventfds on every message
  | { t: 'close'; conn: number }
  | { t: 'wait'; ms: number }
  | { t: 'storm'; count: number; target: Target };

// ---------------------------------------------------------------------------
// Processes under test

interface Proc {
  name: string;
  child: ChildProcess;
  stderr: string;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

function startProcess(name: string, args: string[], readyText: string, env: NodeJS.ProcessEnv = process.env): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', cliPath, ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: cleanup reaches the daemon's emulator too
    env: { ...env, FORCE_COLOR: '0' },
  });
  const proc: Proc = { name, child, stderr: '', exit: undefined };
  child.stderr!.on('data', (chunk) => {
    proc.stderr += chunk;
    if (proc.stderr.length > 1 << 20) proc.stderr = proc.stderr.slice(-(512 << 10));
  });
  child.on('exit', (code, signal) => (proc.exit = { code, signal }));
  return new Promise((resolvePromise, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`${name} not ready after 60 s: ${proc.stderr.slice(-2000)}`)), 60_000);
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      if (stdout.includes(readyText)) {
        clearTimeout(timer);
        resolvePromise(proc);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready: ${proc.stderr.slice(-2000)}`));
    });
  });
}

function alive(proc: Proc): boolean {
  return proc.exit === undefined && proc.child.exitCode === null && proc.child.signalCode === null;
}

function killGroup(proc: Proc): void {
  try {
    process.kill(-proc.child.pid!, 'SIGKILL');
  } catch {
    // gone already
  }
}

function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

function rssBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : -1;
  } catch {
    return -1;
  }
}

/** The daemon's emulator: its child process running `emulator`. */
function childEmulatorPid(parent: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes('emulator')) return Number(entry);
    } catch {
      // raced with an exit
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Raw connections (no Channel: the point is to send what Channel would not)

interface Conn {
  id: number;
  fd: number;
  target: Target | 'vsic';
  closed: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Fuzzer {
  readonly findings: string[] = [];
  readonly log: Action[] = [];
  private logBytes = 0;
  private readonly conns = new Map<number, Conn>();
  private nextConn = 1;
  private readonly tokens: string[] = [];
  private readonly vsaNames = ['f0', 'f1', 'f2', 'f3'];
  stats = { actions: 0, messages: 0, fdsSent: 0, connections: 0, replies: 0, fdsReceived: 0, vsics: 0, refusedSends: 0 };
  private fifoPath: string;
  private filePath: string;

  constructor(
    private readonly rng: Rng,
    private readonly sockets: Partial<Record<Target, string>>,
    private readonly scratch: string,
    private readonly maxConnections: number,
    private readonly verbose: boolean,
  ) {
    this.fifoPath = join(scratch, 'fifo');
    this.filePath = join(scratch, 'file');
    writeFileSync(this.filePath, 'offpath fuzz file\n');
    try {
      // A FIFO stands in for a pipe (Node has no pipe(2) for us).
      mkfifo(this.fifoPath);
    } catch {
      this.fifoPath = '';
    }
  }

  get targets(): Target[] {
    return Object.keys(this.sockets) as Target[];
  }

  // --- descriptors -------------------------------------------------------

  private makeFd(kind: FdKind, conn: Conn | undefined): number | undefined {
    try {
      switch (kind) {
        case 'eventfd':
          return native.eventfdCreate();
        case 'memfd': {
          const fd = native.memfdCreate('fuzz', { allowSealing: true });
          native.ftruncate(fd, 4096 * (1 + this.rng.int(16)));
          return fd;
        }
        case 'memfd-sealed':
        case 'memfd-sealed-small':
        case 'memfd-huge': {
          const fd = native.memfdCreate('fuzz', { allowSealing: true });
          const size = kind === 'memfd-huge' ? 2 ** 36 : kind === 'memfd-sealed-small' ? 4096 : 4096 * (1 + this.rng.int(64));
          native.ftruncate(fd, size);
          const c = native.mappingConstants;
          native.addSeals(fd, c.F_SEAL_SHRINK | (this.rng.chance(0.3) ? c.F_SEAL_GROW : 0) | (this.rng.chance(0.1) ? c.F_SEAL_WRITE : 0));
          return fd;
        }
        case 'socketpair': {
          const [a, b] = native.seqpacketPair();
          native.closeFd(b);
          return a;
        }
        case 'listener': {
          const path = join(this.scratch, `l-${this.rng.string(8)}.sock`);
          return native.seqpacketListen(path);
        }
        case 'pipe':
          return this.fifoPath ? openSync(this.fifoPath, fsConstants.O_RDWR | fsConstants.O_NONBLOCK) : native.eventfdCreate();
        case 'file':
          return openSync(this.filePath, 'r');
        case 'directory':
          return openSync(this.scratch, 'r');
        case 'devnull':
          return openSync('/dev/null', 'r+');
        case 'own-connection':
          return conn && !conn.closed ? native.dupFd(conn.fd) : undefined;
        case 'received':
          return this.received.length > 0 ? native.dupFd(this.rng.pick(this.received)) : undefined;
      }
    } catch {
      return undefined;
    }
  }

  // --- connections -------------------------------------------------------

  private open(id: number, target: Target): Conn | undefined {
    const path = this.sockets[target];
    if (!path) return undefined;
    try {
      const conn: Conn = { id, fd: native.seqpacketConnect(path), target, closed: false };
      this.conns.set(id, conn);
      this.stats.connections++;
      return conn;
    } catch {
      return undefined;
    }
  }

  private close(conn: Conn): void {
    if (conn.closed) return;
    conn.closed = true;
    this.conns.delete(conn.id);
    try {
      native.closeFd(conn.fd);
    } catch {
      // already gone
    }
  }

  /** Reads whatever arrived; received descriptors are closed at once. */
  private drain(conn: Conn, keep?: (body: unknown, fds: number[]) => boolean): void {
    for (let i = 0; i < 64 && !conn.closed; i++) {
      let received;
      try {
        received = native.seqpacketRecv(conn.fd, MAX_MESSAGE_BYTES * 4);
      } catch {
        this.close(conn);
        return;
      }
      if (received === null) return;
      if (received.data.length === 0) {
        for (const fd of received.fds) native.closeFd(fd);
        this.close(conn);
        return;
      }
      this.stats.replies++;
      this.stats.fdsReceived += received.fds.length;
      let body: unknown;
      try {
        body = JSON.parse(received.data.toString('utf8'));
      } catch {
        body = undefined;
      }
      if (body && typeof body === 'object') this.collect(body as Record<string, unknown>);
      if (keep && keep(body, received.fds)) continue;
      this.keepReceived(received.fds);
    }
  }

  drainAll(): void {
    for (const conn of [...this.conns.values()]) this.drain(conn);
  }

  /** Tokens from cap.grant replies feed later `open` requests. */
  private collect(body: Record<string, unknown>): void {
    const result = body.result as Record<string, unknown> | undefined;
    if (result && typeof result.token === 'string' && this.tokens.length < 64) this.tokens.push(result.token);
    if (result && typeof result.token === 'string' && typeof result.id === 'string' && this.capIds.length < 64) this.capIds.push(result.id);
  }

  private readonly capIds: string[] = [];
  /** Descriptors peers handed us (BAR memfds, wake eventfds, VSIC sockets), to hand back to anyone. */
  private readonly received: number[] = [];

  private keepReceived(fds: number[]): void {
    for (const fd of fds) {
      this.received.push(fd);
      if (this.received.length > 8) closeQuietly(this.received.shift()!);
    }
  }

  closeAll(): void {
    for (const conn of [...this.conns.values()]) this.close(conn);
    for (const fd of this.received.splice(0)) closeQuietly(fd);
  }

  // --- messages ----------------------------------------------------------

  private weird(depth = 0): unknown {
    const r = this.rng;
    switch (r.int(22)) {
      case 0: return null;
      case 1: return r.chance(0.5);
      case 2: return 0;
      case 3: return -1;
      case 4: return r.pick([1.5, -0.5, 1e308, -1e308, 5e-324]);
      case 5: return r.pick([2 ** 31, 2 ** 32, 2 ** 52, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64, -(2 ** 53)]);
      case 6: return '';
      case 7: return r.string(1 + r.int(40));
      case 8: return 'A'.repeat(r.pick([256, 4096, 60000]));
      case 9: return [];
      case 10: return {};
      case 11: return depth < 3 ? [this.weird(depth + 1), this.weird(depth + 1)] : [1];
      case 12: return depth < 3 ? { a: this.weird(depth + 1), __proto__x: 1 } : { a: 1 };
      case 13: return r.pick(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype', 'valueOf']);
      case 14: return r.pick(['../../etc/passwd', '/etc/shadow', '..', '.', 'a/b', 'a\\b', '.hidden', 'x.json']);
      case 15: return r.pick(['\u0000', '\ud800', '\uffff', 'é', '𝕏', 'a\nb', '%s%n', '${x}']);
      case 16: return r.pick(['1', '-1', '4096', '1M', '64G', '9999999T', '0x1000', '1e3', ' 1 ', 'NaN', 'Infinity']);
      case 17: return this.token();
      case 18: return r.pick(this.vsaNames);
      case 19: return r.pick(['r', 'rw', 'w', 'R', '']);
      case 20: return r.int(65536);
      default: return r.pick(['emu0', 'emu1', 'emu', '', 'emu0 ']);
    }
  }

  private token(): string {
    const r = this.rng;
    const real = this.tokens.length > 0 ? r.pick(this.tokens) : undefined;
    switch (r.int(5)) {
      case 0: return real ?? 'opcap_000000000000_' + 'A'.repeat(32);
      case 1: {  // one character changed
        if (!real) return 'opcap_';
        const i = r.int(real.length);
        return real.slice(0, i) + r.string(1, 'abcdef0123456789ABCXYZ-_') + real.slice(i + 1);
      }
      case 2: return real ? real + 'A' : 'opcap';
      case 3: return real ? real.slice(0, -1) : '';
      default: return 'opcap_' + r.string(12, '0123456789abcdef') + '_' + r.string(32, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_');
    }
  }

  /** A daemon request: mostly well formed, with fields made wrong at random. */
  private daemonRequest(): Record<string, unknown> {
    const r = this.rng;
    const methods = ['hello', 'open', 'status', 'device.list', 'vsa.create', 'vsa.list', 'vsa.show', 'vsa.resize', 'vsa.delete', 'cap.grant', 'cap.list', 'cap.revoke'];
    const method = r.chance(0.85) ? r.pick(methods) : (this.weird() as string);
    const params: Record<string, unknown> = {};
    const name = () => (r.chance(0.8) ? r.pick(this.vsaNames) : this.weird());
    switch (method) {
      case 'open': params.capability = r.chance(0.8) ? this.token() : this.weird(); break;
      case 'vsa.create':
        params.name = name();
        params.sizeBytes = r.chance(0.7) ? r.pick([4096, 1 << 20, 4 << 20, '1M', 512 * 3]) : this.weird();
        if (r.chance(0.5)) params.blockBytes = r.chance(0.7) ? r.pick([512, 4096]) : this.weird();
        if (r.chance(0.3)) params.device = this.weird();
        break;
      case 'vsa.show': params.name = name(); break;
      case 'vsa.resize': params.name = name(); params.sizeBytes = r.chance(0.6) ? r.pick([8192, 2 << 20, 1]) : this.weird(); break;
      case 'vsa.delete': params.name = name(); if (r.chance(0.5)) params.force = r.chance(0.5) ? true : this.weird(); break;
      case 'cap.grant':
        params.vsa = name();
        for (const key of ['rights', 'uid', 'expiresAt', 'iops', 'bytesPerSecond']) if (r.chance(0.3)) params[key] = this.weird();
        break;
      case 'cap.revoke':
        params.id = r.chance(0.4) && this.capIds.length > 0 ? r.pick(this.capIds) : r.chance(0.5) ? r.string(12, '0123456789abcdef') : this.weird();
        break;
      default:
        if (r.chance(0.3)) params[String(this.weird())] = this.weird();
    }
    const body: Record<string, unknown> = { v: 1, id: r.int(1000), method, params };
    // Wrong types in every field, one or more at a time.
    for (const key of ['v', 'id', 'method', 'params']) if (r.chance(0.08)) body[key] = this.weird();
    if (r.chance(0.05)) delete body[r.pick(['v', 'id', 'method', 'params'])];
    if (r.chance(0.05)) body[r.string(5)] = this.weird();
    return body;
  }

  /** An emulator request (hello, map, unmap, irq) with the fds it wants, or not. */
  private emulatorRequest(): { body: Record<string, unknown>; fds: FdKind[] } {
    const r = this.rng;
    const op = r.chance(0.9) ? r.pick(['hello', 'map', 'unmap', 'irq']) : this.weird();
    const body: Record<string, unknown> = { op };
    let fds: FdKind[] = [];
    const iova = () => (r.chance(0.7) ? r.pick([0, 4096, 1 << 20, 2 ** 40, 2 ** 52, 2 ** 52 + 4096, 4095]) : this.weird());
    switch (op) {
      case 'hello': body.version = r.chance(0.8) ? 1 : this.weird(); break;
      case 'map':
        body.iova = iova();
        body.lengthBytes = r.chance(0.7) ? r.pick([4096, 65536, 1 << 20, 2 ** 36, 0, 4097]) : this.weird();
        fds = r.chance(0.8) ? [r.pick(['memfd-sealed', 'memfd-sealed', 'memfd', 'memfd-sealed-small', 'memfd-huge', 'eventfd', 'file', 'socketpair', 'received'] as FdKind[])] : [];
        break;
      case 'unmap': body.iova = iova(); break;
      case 'irq':
        body.vector = r.chance(0.7) ? r.pick([0, 1, 3, 4, 5, 8, 64, 65, 65535, 65536, -1]) : this.weird();
        fds = r.chance(0.8) ? [r.pick(['eventfd', 'eventfd', 'memfd', 'pipe', 'socketpair', 'devnull'] as FdKind[])] : [];
        break;
    }
    for (const key of ['iova', 'lengthBytes', 'vector', 'version']) if (r.chance(0.05)) body[key] = this.weird();
    return { body, fds };
  }

  /** Bytes for one message: JSON, broken JSON, or an exact large size. */
  private encode(body: Record<string, unknown>): { text?: string; base64?: string } {
    const r = this.rng;
    const json = JSON.stringify(body);
    switch (r.int(20)) {
      case 0: return { text: json.slice(0, r.int(json.length)) || '{' };  // truncated
      case 1: return { text: r.pick(['null', '[]', '[1,2]', '123', '"x"', 'true', '{', '}', '{"v":1,}', '{"v":1 "id":2}', ' ', '\u0000']) };
      case 2: {  // random bytes, often not UTF-8
        const bytes = Buffer.alloc(1 + r.int(200));
        for (let i = 0; i < bytes.length; i++) bytes[i] = r.int(256);
        return { base64: bytes.toString('base64') };
      }
      case 3: {  // an exact size around the 64 KiB limit (and beyond)
        const size = r.pick([MAX_MESSAGE_BYTES - 1, MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 1, 100_000, 200_000]);
        const padded = { ...body, pad: '' };
        const base = Buffer.byteLength(JSON.stringify(padded));
        padded.pad = 'p'.repeat(Math.max(0, size - base));
        return { text: JSON.stringify(padded) };
      }
      case 4: return { text: '['.repeat(r.pick([1000, 20000])) + ']'.repeat(r.pick([0, 1000, 20000])) };  // deep nesting
      case 5: return { text: json.replace(/"/, "'") };
      case 6: return { text: `{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}},${json.slice(1)}` };
      case 7: return { text: json + json };  // two documents in one message
      default: return { text: json };
    }
  }

  // --- one random action ---------------------------------------------------

  randomAction(): Action {
    const r = this.rng;
    const open = [...this.conns.values()];
    const roll = r.next();
    if (open.length === 0 || (roll < 0.12 && open.length < this.maxConnections)) {
      if (this.sockets.daemon && r.chance(0.05)) return { t: 'vsic', conn: this.nextConn++ };
      return { t: 'connect', conn: this.nextConn++, target: r.pick(this.targets) };
    }
    const conn = r.pick(open);
    if (roll < 0.2) return { t: 'close', conn: conn.id };
    if (roll < 0.215) return { t: 'wait', ms: r.int(30) };
    if (roll < 0.22) return { t: 'storm', count: r.pick([64, 256, 600]), target: r.pick(this.targets) };
    const request = conn.target === 'daemon' ? { body: this.daemonRequest(), fds: [] as FdKind[] } : this.emulatorRequest();
    if (roll < 0.24) {
      const fds = r.chance(0.3) ? r.pick([1, 8, 32]) : 0;
      stepAroundKnown(request.body, fds);
      return { t: 'burst', conn: conn.id, count: r.pick([50, 300, 2000]), text: JSON.stringify(request.body), ...(fds ? { fds } : {}) };
    }
    let fds = request.fds;
    if (r.chance(0.15)) {
      // Unexpected descriptors on any message, up to the 32 a message can carry.
      const kinds: FdKind[] = ['eventfd', 'memfd', 'memfd-sealed', 'socketpair', 'listener', 'pipe', 'file', 'directory', 'devnull', 'own-connection', 'memfd-huge', 'received'];
      const count = r.pick([1, 2, 3, 8, 32]);
      fds = [...fds, ...Array.from({ length: count }, () => r.pick(kinds))].slice(0, 32);
    }
    stepAroundKnown(request.body, fds.length);
    const close = r.chance(0.05);  // send, then hang up before the reply
    const action: Action = { t: 'send', conn: conn.id, ...this.encode(request.body), fds };
    if (close) {
      this.pendingClose = conn.id;
    }
    return action;
  }

  private pendingClose: number | undefined;

  // --- running an action -------------------------------------------------

  async run(action: Action): Promise<void> {
    // The replay log keeps the newest actions, up to ~16 MiB of text.
    const size = ('text' in action && action.text ? action.text.length : 0) + ('base64' in action && action.base64 ? action.base64.length : 0) + 64;
    this.log.push(action);
    this.logBytes += size;
    while (this.logBytes > 16 << 20 && this.log.length > 1) {
      const dropped = this.log.shift()!;
      this.logBytes -= ('text' in dropped && dropped.text ? dropped.text.length : 0) + ('base64' in dropped && dropped.base64 ? dropped.base64.length : 0) + 64;
    }
    this.stats.actions++;
    if (this.verbose) process.stderr.write(`${JSON.stringify(action).slice(0, 300)}\n`);
    switch (action.t) {
      case 'connect':
        this.open(action.conn, action.target);
        break;
      case 'vsic':
        await this.openVsic(action.conn);
        break;
      case 'close': {
        const conn = this.conns.get(action.conn);
        if (conn) this.close(conn);
        break;
      }
      case 'wait':
        await sleep(action.ms);
        break;
      case 'storm':
        await this.storm(action.count, action.target);
        break;
      case 'burst': {
        const conn = this.conns.get(action.conn);
        if (!conn) break;
        const bytes = Buffer.from(action.text);
        for (let i = 0; i < action.count; i++) {
          const fds: number[] = [];
          for (let k = 0; k < (action.fds ?? 0); k++) fds.push(native.eventfdCreate());
          try {
            if (native.seqpacketSend(conn.fd, bytes, fds) === null) {
              this.stats.refusedSends++;
              break;
            }
            this.stats.messages++;
            this.stats.fdsSent += fds.length;
          } catch {
            this.close(conn);
            break;
          } finally {
            for (const fd of fds) closeQuietly(fd);
          }
          if (i % 64 === 63) this.drain(conn);  // read replies, so the peer is not the one blocked
        }
        break;
      }
      case 'send': {
        const conn = this.conns.get(action.conn);
        if (!conn) break;
        const bytes = action.base64 !== undefined ? Buffer.from(action.base64, 'base64') : Buffer.from(action.text ?? '');
        const fds: number[] = [];
        for (const kind of action.fds) {
          const fd = this.makeFd(kind, conn);
          if (fd !== undefined) fds.push(fd);
        }
        try {
          if (bytes.length > 0) {
            if (native.seqpacketSend(conn.fd, bytes, fds) === null) this.stats.refusedSends++;
            else {
              this.stats.messages++;
              this.stats.fdsSent += fds.length;
            }
          }
        } catch {
          // EMSGSIZE past the socket's limit, or the peer hung up: both fine
        } finally {
          for (const fd of fds) closeQuietly(fd);
        }
        if (this.pendingClose === action.conn) {
          // Hang up before the reply; logged as its own action for --replay.
          this.pendingClose = undefined;
          this.log.push({ t: 'close', conn: conn.id });
          this.close(conn);
        }
        break;
      }
    }
    this.drainAll();
  }

  /** Many connections at once that never send, then all gone. */
  private async storm(count: number, target: Target): Promise<void> {
    const path = this.sockets[target];
    if (!path) return;
    const fds: number[] = [];
    for (let i = 0; i < count; i++) {
      try {
        fds.push(native.seqpacketConnect(path));
      } catch {
        break;  // the backlog is full: fine
      }
    }
    this.stats.connections += fds.length;
    await sleep(20);
    for (const fd of fds) closeQuietly(fd);
  }

  /** vsa.create + cap.grant + open on a fresh daemon connection; the VSIC fd becomes a connection. */
  private async openVsic(id: number): Promise<void> {
    const path = this.sockets.daemon;
    if (!path) return;
    let fd: number;
    try {
      fd = native.seqpacketConnect(path);
    } catch {
      return;
    }
    const name = this.rng.pick(this.vsaNames);
    const ask = async (body: Record<string, unknown>): Promise<{ body: any; fds: number[] } | undefined> => {
      try {
        if (native.seqpacketSend(fd, Buffer.from(JSON.stringify(body))) === null) return undefined;
      } catch {
        return undefined;
      }
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        let received;
        try {
          received = native.seqpacketRecv(fd, MAX_MESSAGE_BYTES);
        } catch {
          return undefined;
        }
        if (received !== null) {
          if (received.data.length === 0) return undefined;
          try {
            return { body: JSON.parse(received.data.toString('utf8')), fds: received.fds };
          } catch {
            for (const f of received.fds) closeQuietly(f);
            return undefined;
          }
        }
        await sleep(2);
      }
      return undefined;
    };
    try {
      await ask({ v: 1, id: 1, method: 'vsa.create', params: { name, sizeBytes: 1 << 20 } });
      const granted = await ask({ v: 1, id: 2, method: 'cap.grant', params: { vsa: name } });
      const token = granted?.body?.result?.token;
      if (typeof token !== 'string') return;
      if (this.tokens.length < 64) this.tokens.push(token);
      const opened = await ask({ v: 1, id: 3, method: 'open', params: { capability: token } });
      if (!opened) return;
      const [vsic, ...extra] = opened.fds;
      for (const f of extra) closeQuietly(f);
      if (opened.body?.ok !== true || vsic === undefined) {
        if (vsic !== undefined) closeQuietly(vsic);
        return;
      }
      this.stats.vsics++;
      // The session lives as long as the daemon connection: keep both, as
      // one connection (closing it closes the session and then the VSIC).
      this.conns.set(id, { id, fd: vsic, target: 'vsic', closed: false });
      this.sessions.set(id, fd);
      fd = -1;
    } finally {
      if (fd >= 0) closeQuietly(fd);
    }
  }

  readonly sessions = new Map<number, number>();

  closeSessions(): void {
    for (const fd of this.sessions.values()) closeQuietly(fd);
    this.sessions.clear();
  }
}

/**
 * Known, not yet fixed (fuzz/known-findings): an irq the controller refuses,
 * carrying exactly one fd, closes that fd twice and kills the emulator.
 * Step around it so that a run can find something new.
 */
function stepAroundKnown(body: Record<string, unknown>, fdCount: number): void {
  if (known.has('irq-double-close') && body.op === 'irq' && fdCount === 1) body.vector = 0;
}

function closeQuietly(fd: number): void {
  try {
    native.closeFd(fd);
  } catch {
    // not ours any more
  }
}

function mkfifo(path: string): void {
  const result = spawnSync('mkfifo', ['-m', '600', path]);
  if (result.status !== 0) throw new Error('mkfifo failed');
}

// ---------------------------------------------------------------------------
// Checks

/** One request on a fresh connection; the reply body, or an error string. */
async function request(path: string, body: Record<string, unknown>, timeoutMs = 5000): Promise<{ body?: any; error?: string }> {
  let fd: number;
  try {
    fd = native.seqpacketConnect(path);
  } catch (error) {
    return { error: `connect: ${(error as Error).message}` };
  }
  try {
    native.seqpacketSend(fd, Buffer.from(JSON.stringify(body)));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const received = native.seqpacketRecv(fd, MAX_MESSAGE_BYTES);
      if (received !== null) {
        for (const f of received.fds) closeQuietly(f);
        if (received.data.length === 0) return { error: 'connection closed without a reply' };
        return { body: JSON.parse(received.data.toString('utf8')) };
      }
      await sleep(5);
    }
    return { error: `no reply within ${timeoutMs} ms` };
  } catch (error) {
    return { error: (error as Error).message };
  } finally {
    closeQuietly(fd);
  }
}

interface Watched {
  label: string;
  pid: number;
  fdsBefore: number;
  rssBefore: number;
  fdsPeak: number;
  fdsAfter?: number;
  rssAfter?: number;
}

async function settledFdCount(pid: number, target: number): Promise<number> {
  // Closing connections is asynchronous on the far side: wait until the
  // count comes back down (or stops moving).
  let last = fdCount(pid);
  for (let i = 0; i < 40 && last > target; i++) {
    await sleep(100);
    last = fdCount(pid);
  }
  return last;
}

// ---------------------------------------------------------------------------

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const replay = options.replay
    ? (JSON.parse(readFileSync(options.replay, 'utf8')) as { id?: string; seed?: number; target?: Options['target']; actions: Action[] })
    : undefined;
  if (replay?.id !== undefined && known.has(replay.id)) {
    console.log(`control-socket-fuzz: replay ${options.replay}: known finding ${replay.id}, not fixed yet (fuzz/known-findings): skipped`);
    return 0;
  }
  if (replay?.seed !== undefined) options.seed = replay.seed;
  if (replay?.target !== undefined) options.target = replay.target;
  const scratch = mkdtempSync(join(tmpdir(), 'offpath-fuzz-'));
  const procs: Proc[] = [];
  const findings: string[] = [];
  const started = Date.now();
  let fuzzer: Fuzzer | undefined;
  try {
    // A JavaScript heap that keeps growing then ends in an out-of-memory
    // crash within the run instead of hiding behind a lazy collector.
    const childEnv = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=${options.childHeapMb}`.trim() };
    const sockets: Partial<Record<Target, string>> = {};
    let daemon: Proc | undefined;
    let emulator: Proc | undefined;
    if (options.target !== 'emulator') {
      const state = join(scratch, 'daemon');
      const socket = join(state, 'd.sock');
      mkdirSync(state, { recursive: true });
      daemon = await startProcess('daemon', ['daemon', '--state', state, '--device', 'emu:memory:64M', '--vfs', '2', '--socket', socket], 'listening', childEnv);
      procs.push(daemon);
      sockets.daemon = socket;
    }
    if (options.target !== 'daemon') {
      const dir = join(scratch, 'emulator');
      emulator = await startProcess('emulator', ['emulator', '--socket-dir', dir, '--store', 'memory:64M', '--vfs', '2'], 'ready', { ...childEnv, OFFPATH_LOG: '1' });
      procs.push(emulator);
      sockets.pf = join(dir, 'pf.sock');
      sockets['vf-1'] = join(dir, 'vf-1.sock');
      sockets['vf-2'] = join(dir, 'vf-2.sock');
    }

    // Warm up (first requests load code paths and allocate), then measure.
    const probe = async (): Promise<string[]> => {
      const problems: string[] = [];
      if (sockets.daemon) {
        for (const method of ['hello', 'status']) {
          const reply = await request(sockets.daemon, { v: 1, id: 1, method, params: {} }, 10_000);
          if (reply.error || reply.body?.ok !== true) problems.push(`daemon does not answer ${method}: ${reply.error ?? JSON.stringify(reply.body).slice(0, 200)}`);
        }
      }
      for (const target of ['pf', 'vf-1', 'vf-2'] as const) {
        const path = sockets[target];
        if (!path) continue;
        const reply = await request(path, { op: 'hello', version: 1 }, 10_000);
        if (reply.error || reply.body?.ok !== true) problems.push(`emulator ${target}.sock does not answer hello: ${reply.error ?? JSON.stringify(reply.body).slice(0, 200)}`);
      }
      return problems;
    };
    for (const problem of await probe()) throw new Error(`before fuzzing: ${problem}`);
    await sleep(300);
    const daemonEmulatorPid = daemon ? childEmulatorPid(daemon.child.pid!) : undefined;
    const watched: Watched[] = [];
    const watch = (label: string, pid: number | undefined) => {
      if (pid !== undefined) watched.push({ label, pid, fdsBefore: fdCount(pid), rssBefore: rssBytes(pid), fdsPeak: 0 });
    };
    if (daemon) watch('daemon', daemon.child.pid);
    watch("daemon's emulator", daemonEmulatorPid);
    if (emulator) watch('emulator', emulator.child.pid);

    // Fuzz.
    const rng = new Rng(options.seed);
    fuzzer = new Fuzzer(rng, sockets, scratch, options.maxConnections, options.verbose);
    let lastProbe = Date.now();
    const deadline = Date.now() + options.seconds * 1000;
    const actions = replay?.actions;
    let index = 0;
    while (actions ? index < actions.length : Date.now() < deadline) {
      const action = actions ? actions[index++]! : fuzzer.randomAction();
      await fuzzer.run(action);
      if (fuzzer.stats.actions % 16 === 0) await sleep(1);  // let the peers breathe
      if (fuzzer.stats.actions % 256 === 0) for (const w of watched) w.fdsPeak = Math.max(w.fdsPeak, fdCount(w.pid));
      if (procs.some((p) => !alive(p))) break;
      if (!actions && Date.now() - lastProbe > 2000) {
        lastProbe = Date.now();
        if (sockets.daemon) {
          const reply = await request(sockets.daemon, { v: 1, id: 7, method: 'hello', params: {} }, 5000);
          if (reply.error) findings.push(`the daemon stopped answering hello while fuzzed (${reply.error})`);
          if (findings.length > 0) break;
        }
      }
    }

    // Hang up everything, then check.
    fuzzer.closeAll();
    fuzzer.closeSessions();
    await sleep(500);
    for (const proc of procs) {
      if (!alive(proc)) findings.push(`${proc.name} died (${proc.exit?.code ?? proc.child.exitCode ?? proc.exit?.signal ?? proc.child.signalCode}): ${lastLines(proc.stderr)}`);
    }
    if (daemonEmulatorPid !== undefined) {
      try {
        process.kill(daemonEmulatorPid, 0);
      } catch {
        findings.push(`the daemon's emulator (pid ${daemonEmulatorPid}) died`);
      }
    }
    const died = daemon?.stderr.split('\n').find((line) => /"event":"device-(died|restart)"/.test(line));
    if (died) findings.push(`the daemon's emulator died and was restarted (${died.trim()})`);
    if (findings.length === 0) for (const problem of await probe()) findings.push(`after fuzzing: ${problem}`);
    for (const w of watched) {
      const after = await settledFdCount(w.pid, w.fdsBefore + options.fdSlack);
      if (after < 0) continue;  // gone: reported above
      if (after > w.fdsBefore + options.fdSlack) findings.push(`${w.label} leaked descriptors: ${w.fdsBefore} before, ${after} after (${listFds(w.pid)})`);
      const rss = rssBytes(w.pid);
      if (rss > w.rssBefore + options.rssGrowthMb * 2 ** 20) findings.push(`${w.label} RSS grew from ${mb(w.rssBefore)} to ${mb(rss)}`);
      w.fdsAfter = after;
      w.rssAfter = rss;
    }
    const s = fuzzer.stats;
    const resources = watched
      .map((w) => `${w.label} fds ${w.fdsBefore}->${w.fdsAfter ?? '?'} (peak ${w.fdsPeak}) rss ${mb(w.rssBefore)}->${mb(w.rssAfter ?? -1)}`)
      .join(', ');
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const head = `control-socket-fuzz: ${options.replay ? `replay ${options.replay}` : `seed ${options.seed}`}, ${seconds} s, ${s.actions} actions, ${s.messages} messages, ${s.fdsSent} fds sent, ${s.connections} connections, ${s.vsics} VSICs, ${s.replies} replies; ${resources}`;
    if (findings.length === 0) {
      console.log(`${head}; no findings`);
      return 0;
    }
    const saved = join(repoRoot, 'build', 'fuzz', 'control-socket', `finding-seed-${options.seed}.json`);
    mkdirSync(dirname(saved), { recursive: true });
    const stderr = Object.fromEntries(procs.map((p) => [p.name, p.stderr.slice(-20_000)]));
    writeFileSync(saved, JSON.stringify({ seed: options.seed, target: options.target, findings, stderr, actions: fuzzer.log }, null, 1));
    const again = options.replay ? `node --import tsx fuzz/control-socket-fuzz.ts --replay ${options.replay}` : `--seed ${options.seed} --seconds ${options.seconds}, or --replay ${saved}`;
    console.log(`${head}; FINDINGS (${again}): ${findings.join(' | ')}`);
    return 1;
  } catch (error) {
    console.log(`control-socket-fuzz: seed ${options.seed}: could not run: ${(error as Error).message}`);
    return 2;
  } finally {
    fuzzer?.closeAll();
    fuzzer?.closeSessions();
    for (const proc of procs) {
      if (alive(proc)) proc.child.kill('SIGTERM');
    }
    await Promise.race([Promise.all(procs.map((p) => (alive(p) ? new Promise((r) => p.child.once('exit', r)) : undefined))), sleep(5000)]);
    for (const proc of procs) killGroup(proc);
    if (!options.keep) rmSync(scratch, { recursive: true, force: true });
  }
}

/** The error a dead process printed (its first line and where it was thrown), else its last lines. */
function lastLines(text: string): string {
  const lines = text.trim().split('\n').filter((line) => !line.startsWith('{"time"'));
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/^(\w*Error\b|Uncaught|FATAL|Segmentation fault|Aborted|.*ERROR: AddressSanitizer)/.test(lines[i]!)) {
      const where = lines.slice(i + 1).filter((line) => /^\s+at /.test(line)).slice(0, 2).map((line) => line.trim());
      return [lines[i]!.trim(), ...where].join(' / ');
    }
  }
  return lines.slice(-6).join(' / ').slice(-1500);
}

function mb(bytes: number): string {
  return bytes < 0 ? '?' : `${(bytes / 2 ** 20).toFixed(0)}M`;
}

function listFds(pid: number): string {
  const kinds = new Map<string, number>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let link = '?';
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        // raced
      }
      const kind = link.replace(/\[\d+\]/, '').replace(/:\d+$/, '').replace(/^\/.*$/, 'file');
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
  } catch {
    return 'unreadable';
  }
  return [...kinds].map(([k, n]) => `${n} ${k}`).join(', ');
}

process.exitCode = await main();
