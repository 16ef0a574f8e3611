/**
 * Runs the emulator as a child process (`offpath emulator ...`): what the
 * daemon supervises, and what tests and benchmarks start. Resolves once the
 * child prints `ready`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../libstorage/native.js';

export interface EmulatorProcess {
  socketDir: string;
  process: ChildProcess;
  /** What the child wrote to stderr so far (its NDJSON log when enabled). */
  stderr(): string;
  /** Resolves when the child has exited. */
  exited: Promise<number | null>;
  /** SIGTERM (the store is flushed) and wait. */
  stop(): Promise<void>;
  /** SIGKILL and wait: a crash. */
  kill(): Promise<void>;
}

/**
 * The CLI entry of this package: from TypeScript sources through tsx
 * (resolved from here, not from the caller's directory), from a build as is.
 */
function cliCommand(): string[] {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return ['--import', import.meta.resolve('tsx'), join(dirname(here), '..', 'controlplane', 'cli.ts')];
  return [join(packageRoot(), 'dist', 'controlplane', 'cli.js')];
}

export async function spawnEmulator(socketDir: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<EmulatorProcess> {
  // Our end of its stdin closes when we die, whatever kills us: the child
  // then exits too (--exit-with-parent) instead of holding the store.
  const child = spawn(process.execPath, [...cliCommand(), 'emulator', '--socket-dir', socketDir, '--exit-with-parent', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env,
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    let stdout = '';
    const onData = (chunk: Buffer) => {
      stdout += chunk;
      if (stdout.includes('ready ')) {
        child.stdout!.off('data', onData);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    exited.then((code) => reject(new Error(`emulator exited (${code}) before it was ready: ${stderr.trim()}`)));
  });
  const finish = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return { socketDir, process: child, stderr: () => stderr, exited, stop: () => finish('SIGTERM'), kill: () => finish('SIGKILL') };
}
