// Starts the emulator as its own process (as in production) for a test, and
// brings up PF and VF controllers through the same driver applications use.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NvmeController } from '../../libstorage/driver/controller.js';
import { EmuTransport } from '../../libstorage/transport/emu/emu-transport.js';
import { PfAdmin } from '../../controlplane/pf/pf-admin.js';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'controlplane', 'cli.ts');

export interface RunningEmulator {
  socketDir: string;
  process: ChildProcess;
  stderr: () => string;
  /** SIGTERM and wait (the store is flushed). */
  stop(): Promise<void>;
  /** SIGKILL and wait: a crash. */
  kill(): Promise<void>;
}

export async function startEmulator(args: string[] = [], socketDir?: string): Promise<RunningEmulator> {
  const dir = socketDir ?? mkdtempSync(join(tmpdir(), 'offpath-emu-'));
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'emulator', '--socket-dir', dir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let stdout = '';
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      if (stdout.includes('ready ')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`emulator exited ${code}: ${stderr}`)));
  });
  const finish = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
    if (!socketDir) rmSync(dir, { recursive: true, force: true });
  };
  return { socketDir: dir, process: child, stderr: () => stderr, stop: () => finish('SIGTERM'), kill: () => finish('SIGKILL') };
}

export async function connectController(emulator: RunningEmulator, cntlid: number, ioQueuePairs = 4): Promise<NvmeController> {
  const name = cntlid === 0 ? 'pf.sock' : `vf-${cntlid}.sock`;
  const transport = await EmuTransport.connect(join(emulator.socketDir, name));
  return NvmeController.bringUp(transport, { ioQueuePairs });
}

export async function connectPf(emulator: RunningEmulator): Promise<PfAdmin> {
  return new PfAdmin(await connectController(emulator, 0, 1));
}

/** A namespace of `blocks` blocks attached to VF `cntlid`, which is brought online. */
export async function provisionVf(pf: PfAdmin, cntlid: number, blocks: number, blockBytes: 512 | 4096 = 4096): Promise<number> {
  const nsid = await pf.createNamespace(blocks, blockBytes);
  await pf.attach(nsid, cntlid);
  const entry = (await pf.secondaryControllers()).find((e) => e.scid === cntlid);
  if (!entry?.online) await pf.bringOnline(cntlid, 5, 2);
  return nsid;
}
