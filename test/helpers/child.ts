// Spawns a fixture script as a second, real process (run through tsx like the
// tests) and collects what it prints, so a test can check work done across
// two address spaces.
import { spawn, type ChildProcess } from 'node:child_process';
import { Worker as WorkerThread } from 'node:worker_threads';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

export interface Child {
  process: ChildProcess;
  /** Resolves with stdout when the child exits 0, rejects with its stderr otherwise. */
  done: Promise<string>;
}

/** extraFds become the child's fds 3, 4, ... (inherited, as a real peer would hold them). */
export function spawnFixture(name: string, args: string[] = [], extraFds: number[] = []): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', join(fixtures, name), ...args], {
    stdio: ['ignore', 'pipe', 'pipe', ...extraFds],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const done = new Promise<string>((resolve, reject) => {
    child.on('close', (code, signal) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${name} exited ${code ?? signal}: ${stderr}`));
    });
  });
  return { process: child, done };
}

/** Resolves with the first line the child prints that starts with the prefix. */
export function waitForLine(child: Child, prefix: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk;
      const line = buffered.split('\n').find((candidate) => candidate.startsWith(prefix));
      if (line !== undefined) {
        child.process.stdout!.off('data', onData);
        resolve(line.slice(prefix.length).trim());
      }
    };
    child.process.stdout!.on('data', onData);
    child.done.then(() => reject(new Error(`child exited before printing ${prefix}`)), reject);
  });
}

/** A worker thread running a TypeScript module (see ts-worker.mjs); data arrives as workerData.data. */
export function tsWorker(moduleUrl: URL, data: unknown): import('node:worker_threads').Worker {
  return new WorkerThread(new URL('./ts-worker.mjs', import.meta.url), {
    workerData: { entry: moduleUrl.href, data },
  });
}
