// An emulator with one provisioned VF, opened as a VSA through the library.
import { join } from 'node:path';
import { open, type OpenOptions, type Vsa } from '../../libstorage/index.js';
import type { PfAdmin } from '../../controlplane/pf/pf-admin.js';
import { connectPf, startEmulator, type RunningEmulator } from './emulator.js';

export interface VsaFixture {
  emulator: RunningEmulator;
  pf: PfAdmin;
  nsid: number;
  vsa: Vsa;
  path: string;
}

/** Provisions a namespace of `blocks` blocks on VF 1 (with queues for `queues` I/O pairs) and opens it. */
export async function openFixture(
  blocks: number,
  { blockBytes = 4096, queues = 1, store = 'memory:128M', options = {} }: { blockBytes?: 512 | 4096; queues?: number; store?: string; options?: OpenOptions } = {},
): Promise<VsaFixture> {
  const emulator = await startEmulator(['--store', store, '--vfs', '1']);
  const pf = await connectPf(emulator);
  const nsid = await pf.createNamespace(blocks, blockBytes);
  await pf.attach(nsid, 1);
  // The pool of one VF holds 8 VQ and 4 VI: queues beyond the vectors poll.
  await pf.bringOnline(1, Math.min(8, queues + 1), Math.min(4, queues + 1));
  const path = join(emulator.socketDir, 'vf-1.sock');
  const vsa = await open(path, options);
  return { emulator, pf, nsid, vsa, path };
}

export async function closeFixture(fixture: VsaFixture | undefined): Promise<void> {
  if (!fixture) return;
  await fixture.vsa.close().catch(() => {});
  await fixture.pf.controller.shutdown().catch(() => {});
  await fixture.emulator.stop();
}
