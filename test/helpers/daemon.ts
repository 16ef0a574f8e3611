// End-to-end control-plane tests run everything as real processes, the way a
// user would: the daemon (with its emulator) as a child, the `offpath` CLI
// once per command, and applications as fixture processes that speak a line
// protocol on stdin/stdout (test/fixtures/cp-app.ts). Every process started
// here is remembered and killed by cleanup(), even when a test fails.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cliPath = join(repoRoot, 'controlplane', 'cli.ts');
const appPath = join(repoRoot, 'test', 'fixtures', 'cp-app.ts');

/** Process groups (daemon + its emulator) and single processes (CLI, apps) still running. */
const groups = new Set<ChildProcess>();
const singles = new Set<ChildProcess>();
const temporaries = new Set<string>();

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (!alive(child)) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

/** Kills (SIGKILL) everything this helper started and removes its temporary directories. */
export async function cleanup(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of singles) {
    if (alive(child)) child.kill('SIGKILL');
    waits.push(exitOf(child));
  }
  for (const child of groups) {
    // The group also holds the daemon's emulator, which may outlive the daemon.
    killGroup(child, 'SIGKILL');
    waits.push(exitOf(child));
  }
  await Promise.race([Promise.all(waits), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
  singles.clear();
  groups.clear();
  for (const dir of temporaries) rmSync(dir, { recursive: true, force: true });
  temporaries.clear();
}

// A last resort if a test file dies without reaching test.after.
process.once('exit', () => {
  for (const child of singles) if (alive(child)) child.kill('SIGKILL');
  for (const child of groups) killGroup(child, 'SIGKILL');
});

export function tempDir(prefix = 'offpath-cp-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temporaries.add(dir);
  return dir;
}

/** Command prefix running a program as another uid (gid = uid), or [] for ourselves. */
function asUser(uid: number | undefined): string[] {
  if (uid === undefined || uid === process.getuid!()) return [];
  return ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
}

function spawnAs(uid: number | undefined, args: string[], options: { detached?: boolean; stdin?: 'pipe' | 'ignore'; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  const prefix = asUser(uid);
  const command = prefix.length > 0 ? prefix[0]! : process.execPath;
  const argv = prefix.length > 0 ? [...prefix.slice(1), process.execPath, ...args] : args;
  return spawn(command, argv, {
    cwd: repoRoot,
    stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
    detached: options.detached === true,
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', ...options.env },
  });
}

/**
 * Why processes cannot be run as `uid` here (we are not root, setpriv is
 * missing, or that user cannot read the sources), or undefined if they can.
 */
export function cannotRunAs(uid: number): string | undefined {
  if (process.getuid!() !== 0) return 'the tests do not run as root, so they cannot switch to another uid';
  const probe = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, '--import', 'tsx', '-e', `require('node:fs').accessSync(${JSON.stringify(cliPath)})`], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 20_000,
  });
  if (probe.error) return `setpriv is not usable: ${probe.error.message}`;
  if (probe.status !== 0) return `uid ${uid} cannot run the sources: ${(probe.stderr || '').trim().split('\n')[0]}`;
  return undefined;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** When the command started and ended (Date.now()). */
  startedAt: number;
  endedAt: number;
}

export interface CliOptions {
  /** Run as this uid (see cannotRunAs). */
  uid?: number;
  timeoutMs?: number;
  /** Added to the environment. */
  env?: NodeJS.ProcessEnv;
}

/** Runs `offpath ARGS...` (from the TypeScript sources) to completion. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const startedAt = Date.now();
  const child = spawnAs(options.uid, ['--import', 'tsx', cliPath, ...args], options.env ? { env: options.env } : {});
  singles.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const timeoutMs = options.timeoutMs ?? 20_000;
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      singles.delete(child);
      if (signal) stderr += `\n(offpath ${args.join(' ')} killed by ${signal} after ${Date.now() - startedAt} ms)`;
      resolve({ code, stdout, stderr, startedAt, endedAt: Date.now() });
    });
  });
}

export interface DaemonProcess {
  stateDir: string;
  socket: string;
  process: ChildProcess;
  /** What it printed on stdout so far. */
  stdout(): string;
  /** Its NDJSON log (stderr), parsed. */
  events(): Array<Record<string, any>>;
  /** `offpath --socket SOCKET ARGS...` */
  cli(args: string[], options?: CliOptions): Promise<CliResult>;
  /** `offpath --socket SOCKET --json ARGS...`, parsed; throws with stderr unless it exits 0. */
  json<T = any>(args: string[], options?: CliOptions): Promise<T>;
  /** SIGTERM, as an operator would; resolves with how it exited. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL to the daemon alone (a crash): its emulator is left as a crash leaves it. */
  crash(): Promise<void>;
  /** True while any process of its group (daemon, emulator) is alive. */
  groupAlive(): boolean;
}

export interface DaemonOptions {
  /** Reuse a state directory (a restart); default a fresh temporary one. */
  stateDir?: string;
  /** Default `<stateDir>/d.sock`. */
  socket?: string;
  /** Default `emu:file:<stateDir>/emu0.img:256M`. */
  device?: string;
  vfs?: number;
}

/** Starts `offpath daemon` and waits until it says it is listening. */
export async function startDaemon(options: DaemonOptions = {}): Promise<DaemonProcess> {
  const stateDir = options.stateDir ?? tempDir();
  const socket = options.socket ?? join(stateDir, 'd.sock');
  const device = options.device ?? `emu:file:${join(stateDir, 'emu0.img')}:256M`;
  const args = ['--import', 'tsx', cliPath, 'daemon', '--state', stateDir, '--device', device, '--vfs', String(options.vfs ?? 4), '--socket', socket];
  // Its own process group, so that cleanup reaches its emulator too.
  const child = spawnAs(undefined, args, { detached: true });
  groups.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = exitOf(child);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon not listening after 30 s; stderr: ${stderr}`)), 30_000);
    const onData = () => {
      if (stdout.includes(`offpath daemon listening on ${socket}\n`)) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited (${code ?? signal}) before listening: ${stderr}`));
    });
  });
  const daemon: DaemonProcess = {
    stateDir,
    socket,
    process: child,
    stdout: () => stdout,
    events: () =>
      stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, any>),
    cli: (cliArgs, cliOptions) => runCli(['--socket', socket, ...cliArgs], cliOptions),
    async json(cliArgs, cliOptions) {
      const result = await runCli(['--socket', socket, '--json', ...cliArgs], cliOptions);
      if (result.code !== 0) throw new Error(`offpath ${cliArgs.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
      return JSON.parse(result.stdout);
    },
    async stop(timeoutMs = 15_000) {
      if (alive(child)) child.kill('SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
    async crash() {
      if (alive(child)) child.kill('SIGKILL');
      await exited;
    },
    groupAlive() {
      try {
        process.kill(-child.pid!, 0);
        return true;
      } catch {
        return false;
      }
    },
  };
  return daemon;
}

/** Reads the capability token and id from `offpath --json grant ...`. */
export async function grant(daemon: DaemonProcess, vsa: string, flags: string[] = []): Promise<{ token: string; id: string } & Record<string, any>> {
  return daemon.json(['grant', vsa, ...flags]);
}

export interface AppError {
  name: string;
  code?: string;
  message: string;
  storageError: boolean;
  /** The NVMe status, when the controller answered. */
  status?: { sct: number; sc: number; dnr: boolean; more: boolean };
  /** The NVMe command that failed. */
  command?: string;
}

export interface AppReply {
  id: number;
  ok: boolean;
  error?: AppError;
  [key: string]: any;
}

/**
 * An application process (test/fixtures/cp-app.ts): send it commands, get
 * replies; it also reports events of its own (e.g. a workload that stopped).
 */
export class App {
  readonly process: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private nextId = 1;
  private buffered = '';
  private stderr = '';
  private readonly pending = new Map<number, (reply: AppReply) => void>();
  private readonly events: Array<Record<string, any>> = [];
  private readonly eventWaiters: Array<{ name: string; resolve: (event: Record<string, any>) => void }> = [];

  constructor(options: { uid?: number } = {}) {
    this.process = spawnAs(options.uid, ['--import', 'tsx', appPath], { stdin: 'pipe' });
    singles.add(this.process);
    this.exited = exitOf(this.process);
    this.process.stderr!.on('data', (chunk) => (this.stderr += chunk));
    this.process.stdout!.on('data', (chunk) => {
      this.buffered += chunk;
      let newline: number;
      while ((newline = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, newline);
        this.buffered = this.buffered.slice(newline + 1);
        if (line.trim() !== '') this.receive(JSON.parse(line));
      }
    });
  }

  private receive(message: Record<string, any>): void {
    if (typeof message.id === 'number') {
      const resolve = this.pending.get(message.id);
      this.pending.delete(message.id);
      resolve?.(message as AppReply);
      return;
    }
    const waiter = this.eventWaiters.findIndex((w) => w.name === message.event);
    if (waiter >= 0) this.eventWaiters.splice(waiter, 1)[0]!.resolve(message);
    else this.events.push(message);
  }

  /** Sends a command; resolves with the reply (ok or not), rejects if none comes in time. */
  request(command: Record<string, unknown>, timeoutMs = 15_000): Promise<AppReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`app did not answer ${JSON.stringify(command)} within ${timeoutMs} ms; stderr: ${this.stderr}`));
      }, timeoutMs);
      this.pending.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.exited.then(({ code, signal }) => {
        if (!this.pending.has(id)) return;
        this.pending.delete(id);
        clearTimeout(timer);
        reject(new Error(`app exited (${code ?? signal}) before answering ${String(command.op)}: ${this.stderr}`));
      });
      this.process.stdin!.write(`${JSON.stringify({ id, ...command })}\n`);
    });
  }

  /** Like request(), but throws unless the reply is ok. */
  async call(command: Record<string, unknown>, timeoutMs?: number): Promise<AppReply> {
    const reply = await this.request(command, timeoutMs);
    if (!reply.ok) throw new Error(`app ${String(command.op)} failed: ${JSON.stringify(reply.error)}`);
    return reply;
  }

  /** The next event of this name the app reported. */
  event(name: string, timeoutMs = 15_000): Promise<Record<string, any>> {
    const index = this.events.findIndex((e) => e.event === name);
    if (index >= 0) return Promise.resolve(this.events.splice(index, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`app reported no ${name} within ${timeoutMs} ms; stderr: ${this.stderr}`)), timeoutMs);
      this.eventWaiters.push({
        name,
        resolve: (event) => {
          clearTimeout(timer);
          resolve(event);
        },
      });
    });
  }

  /** Asks the app to exit and waits (SIGKILL if it does not within the time). */
  async exit(timeoutMs = 5000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (alive(this.process)) this.process.stdin!.end();
    const timer = setTimeout(() => this.process.kill('SIGKILL'), timeoutMs);
    const result = await this.exited;
    clearTimeout(timer);
    singles.delete(this.process);
    return result;
  }

  errorOutput(): string {
    return this.stderr;
  }
}

/** Opens a VSA by capability in a new application process; throws unless it opened. */
export async function openApp(daemon: DaemonProcess, token: string, options: { uid?: number } = {}): Promise<{ app: App; vsa: Record<string, any> }> {
  const app = new App(options);
  const reply = await app.request({ op: 'open', capability: token, daemon: daemon.socket });
  if (!reply.ok) {
    await app.exit();
    throw new Error(`open failed: ${JSON.stringify(reply.error)}`);
  }
  return { app, vsa: reply.vsa };
}

/** Opens a capability in a fresh app and returns how the open ended (the app exits). */
export async function tryOpen(daemon: DaemonProcess, token: unknown, options: { uid?: number } = {}): Promise<AppReply> {
  const app = new App(options);
  try {
    return await app.request({ op: 'open', capability: token, daemon: daemon.socket });
  } finally {
    await app.exit();
  }
}

/** A socket directory other users may enter (the state directory is owner-only). */
export function sharedSocketDir(): string {
  const dir = tempDir('offpath-cp-sock-');
  chmodSync(dir, 0o755);
  return dir;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Wraps a test.before hook so that its error is printed: uvu runs no test
 * after a failing hook but does not say why.
 */
export function reported(hook: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await hook();
    } catch (error) {
      console.error(`test setup failed: ${(error as Error).stack ?? String(error)}`);
      throw error;
    }
  };
}
