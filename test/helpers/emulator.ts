// Starts the emulator as its own process (as in production) for a test, and
// brings up PF and VF controllers through the same driver applications use.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NvmeController } from '../../libstorage/driver/controller.js';
import { EmuTransport } from '../../libstorage/transport/emu/emu-transport.js';
import { PfAdmin } from '../../controlplane/pf/pf-admin.js';
import { spawnEmulator, type EmulatorProcess } from '../../emulator/process.js';

export type RunningEmulator = EmulatorProcess;

/** An emulator child process; its socket directory is a fresh temp dir unless given (and then kept). */
export async function startEmulator(args: string[] = [], socketDir?: string): Promise<RunningEmulator> {
  const dir = socketDir ?? mkdtempSync(join(tmpdir(), 'offpath-emu-'));
  const emulator = await spawnEmulator(dir, args);
  if (socketDir) return emulator;
  const cleanup = (finish: () => Promise<void>) => async () => {
    await finish();
    rmSync(dir, { recursive: true, force: true });
  };
  return { ...emulator, stop: cleanup(emulator.stop), kill: cleanup(emulator.kill) };
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
