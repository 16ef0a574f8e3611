/**
 * The soak's application processes (soak-app.ts): spawning, SIGKILL and
 * respawn, a graceful stop, and their NDJSON reports. Each app keeps its
 * index, capability and state file across incarnations, so a successor
 * picks up where its predecessor's last flush left the VSA.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from '../../test/helpers/daemon.js';
import type { Profile } from './soak-plan.js';

const appScript = join(repoRoot, 'bench', 'lib', 'soak-app.ts');

export interface AppSpec {
  index: number;
  profile: Profile;
  vsa: string;
  capability: string;
  blocks: number;
  statePath: string;
}

export interface AppMessage {
  type: 'opened' | 'ready' | 'stats' | 'error' | 'mismatch' | 'final';
  app: number;
  at: number;
  [key: string]: any;
}

export const COUNTERS = ['reads', 'writes', 'trims', 'zeroes', 'flushes', 'readBytes', 'writeBytes', 'verifyBytes'] as const;
export type Counters = Record<(typeof COUNTERS)[number], number>;
export const zeroCounters = (): Counters => Object.fromEntries(COUNTERS.map((k) => [k, 0])) as Counters;
/** Commands of every kind. */
export const opsOf = (c: Counters) => c.reads + c.writes + c.trims + c.zeroes + c.flushes;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class SoakApp {
  incarnations = 0;
  child: ChildProcess | undefined;
  /** When it last reported `ready` (open and verified); 0 while it is not. */
  readyAt = 0;
  /** Set when we kill or stop it: its exit is then not an error. */
  private expectedExit = false;
  exited: Promise<Exit> = Promise.resolve({ code: 0, signal: null });
  readonly total = zeroCounters();
  interval = zeroCounters();
  stderrTail = '';

  constructor(
    readonly spec: AppSpec,
    private readonly options: { daemonSocket: string; epochMs: number },
    private readonly onMessage: (app: SoakApp, message: AppMessage) => void,
    private readonly onUnexpectedExit: (app: SoakApp, exit: Exit) => void,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  spawn(): void {
    const { spec, options } = this;
    const args = ['--app', String(spec.index), '--profile', spec.profile, '--capability', spec.capability, '--daemon', options.daemonSocket];
    args.push('--state', spec.statePath, '--blocks', String(spec.blocks), '--epoch-ms', String(options.epochMs));
    const child = spawn(process.execPath, ['--import', 'tsx', appScript, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.incarnations++;
    this.readyAt = 0;
    this.expectedExit = false;
    child.stderr!.on('data', (chunk) => (this.stderrTail = (this.stderrTail + chunk).slice(-4000)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const message = JSON.parse(line) as AppMessage;
      if (message.type === 'stats') {
        for (const key of COUNTERS) {
          this.total[key] += message[key] ?? 0;
          this.interval[key] += message[key] ?? 0;
        }
      }
      if (message.type === 'ready') this.readyAt = message.at;
      if (message.type === 'error') this.readyAt = 0;
      this.onMessage(this, message);
    });
    this.exited = new Promise((resolve) =>
      child.on('close', (code, signal) => {
        if (!this.expectedExit) this.onUnexpectedExit(this, { code, signal });
        resolve({ code, signal });
      }),
    );
  }

  /** The counters since the last call. */
  takeInterval(): Counters {
    const taken = this.interval;
    this.interval = zeroCounters();
    return taken;
  }

  /** SIGKILL, as a crash: nothing of its memory survives, only what it flushed and recorded. */
  async kill(): Promise<void> {
    this.expectedExit = true;
    this.readyAt = 0;
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM: it finishes its epoch, verifies the whole VSA and exits. */
  async stop(timeoutMs: number): Promise<Exit> {
    this.expectedExit = true;
    this.child?.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), timeoutMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }
}

/** Resolves once `ready()` holds, polling; rejects after the timeout. */
export async function until(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// Whatever happens to the soak, its applications do not outlive it.
const everyApp = new Set<SoakApp>();
export function track(app: SoakApp): SoakApp {
  everyApp.add(app);
  return app;
}
process.once('exit', () => {
  for (const app of everyApp) app.child?.kill('SIGKILL');
});
