// A VSA on an emulator that can lose power, for simulating applications (the
// KV store, the mail queue) through their real I/O path: an EmulatorServer in
// this process serving a PowerStore (the store's power-loss mode) with one
// namespace attached to VF 1, and the VSA opened through libstorage like any
// application opens it. cut() is a power failure of the whole machine: the
// store keeps only its durable image (plus what the seeded cut lets
// survive), the emulator and the host side go away without a word, and the
// image reopens in a new emulator (reopenImage, then PoweredVsa.start).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PfAdmin } from '../../controlplane/pf/pf-admin.js';
import { EmulatorServer } from '../../emulator/server.js';
import { NvmeController } from '../../libstorage/driver/controller.js';
import { open, type Vsa } from '../../libstorage/index.js';
import { EmuTransport } from '../../libstorage/transport/emu/emu-transport.js';
import type { Dice } from './dice.js';
import { PowerStore, SMALL_POOL_METADATA_BYTES, type PowerLossOptions, type StoreImage } from './power-store.js';

const KiB = 1024;
const VF = 1;
// Registered memory: a KV recovery window (the whole log, at most 1 MiB here)
// and the batches in flight fit; less to map than the default per reopen.
const POOL_BYTES = 4 << 20;
// tmpfs when there is one: the sockets are created and removed for every cut.
const SOCKET_PARENT = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

/** How the power fails: at random (a machine), or as a process kill (everything issued reaches the device, in order). */
export type CutKind = 'power' | 'kill';

/**
 * Seeded power-loss settings for one cut: a `kill` keeps every pending write
 * in issue order, untorn; a `power` cut drops, keeps, tears and reorders them.
 * `tearBytes` is the namespace's block size: one block is atomic (AWUPF 0),
 * which both applications rely on, and anything larger may tear.
 */
export function powerLossFor(dice: Dice, kind: CutKind, blockBytes: number): PowerLossOptions {
  if (kind === 'kill') return { seed: dice.seed, survive: 1, tear: false, inOrder: true };
  return {
    seed: dice.seed,
    survive: dice.pick([0, 0.25, 0.5, 0.75, 1, dice.random()]),
    tear: dice.chance(0.8),
    inOrder: false,
    tearBytes: blockBytes,
    // Now and then a cache so small that it writes data back on its own.
    cacheBytes: dice.chance(0.25) ? (2 + dice.int(14)) * 4 * KiB : 64 * 1024 * KiB,
  };
}

/** A fresh pool holding one namespace of `blocks` blocks attached to VF 1, with room to spare for reallocation. */
export function newPool(dice: Dice, blocks: number, blockBytes: 512 | 4096, powerLoss: PowerLossOptions): PowerStore {
  const chunkBytes = dice.pick([4 * KiB, 16 * KiB, 64 * KiB]);
  const dataChunks = Math.ceil((blocks * blockBytes) / chunkBytes) + 2 + dice.int(4);
  const store = new PowerStore({ kind: 'memory', sizeBytes: SMALL_POOL_METADATA_BYTES + dataChunks * chunkBytes, chunkBytes, powerLoss });
  const nsid = store.createNamespace(blocks, blockBytes);
  store.attach(nsid, VF);
  return store;
}

export class PoweredVsa {
  private down = false;

  private constructor(
    readonly store: PowerStore,
    readonly vsa: Vsa,
    private readonly server: EmulatorServer,
    private readonly pf: PfAdmin,
    private readonly socketDir: string,
  ) {}

  /** Serves `store` from a new emulator and opens its namespace through VF 1. */
  static async start(store: PowerStore, options: { brokenFlush?: boolean } = {}): Promise<PoweredVsa> {
    if (options.brokenFlush) store.setBrokenFlush(true);
    const socketDir = mkdtempSync(join(SOCKET_PARENT, 'offpath-sim-'));
    let server: EmulatorServer | undefined;
    let pf: PfAdmin | undefined;
    try {
      server = new EmulatorServer({ socketDir, store, secondaryControllers: 1, spinUs: 20 });
      pf = new PfAdmin(await NvmeController.bringUp(await EmuTransport.connect(join(socketDir, 'pf.sock')), { ioQueuePairs: 0 }));
      await pf.bringOnline(VF, 2, 2);
      const vsa = await open(join(socketDir, `vf-${VF}.sock`), { poolBytes: POOL_BYTES });
      return new PoweredVsa(store, vsa, server, pf, socketDir);
    } catch (error) {
      await pf?.controller.shutdown().catch(() => {});
      server?.close();
      rmSync(socketDir, { recursive: true, force: true });
      throw error;
    }
  }

  get powerLost(): boolean {
    return this.store.powerLost;
  }

  /** The power goes off `writes` member writes from now, inside whatever command makes them. */
  armCut(writes: number): void {
    this.store.armCut(writes);
  }

  /**
   * Power failure (or hands over the one an armed cut made): the image of
   * what survived; the emulator and this side's queues are gone.
   */
  async cut(): Promise<StoreImage> {
    const image = this.store.cut();
    await this.teardown();
    return image;
  }

  /**
   * A clean shutdown: the VSA closed, the PF's host gone, the emulator
   * stopped (which flushes the store), then the power taken away — nothing
   * may be pending by then.
   */
  async shutdown(): Promise<StoreImage> {
    await this.vsa.close();
    await this.pf.controller.shutdown();
    this.down = true;
    this.server.close();
    rmSync(this.socketDir, { recursive: true, force: true });
    return this.store.cut({ survive: 0 });
  }

  /** Whatever state it is in: powered off, nothing kept (the end of a simulation, or one that threw). */
  async discard(): Promise<void> {
    if (this.down) return;
    try {
      this.store.cut({ survive: 0 }).close();
    } catch {
      // the image of an earlier cut is gone already
    }
    await this.teardown();
  }

  private async teardown(): Promise<void> {
    if (this.down) return;
    this.down = true;
    // The emulator first: both hosts see their controller vanish
    // (ECONNRESET) and release their queues without asking a dead device.
    this.server.close();
    const pf = this.pf.controller;
    const pfLost = pf.lost ? undefined : new Promise<void>((resolve) => pf.lostListeners.push(() => resolve()));
    await Promise.all([this.vsa.close().catch(() => {}), pfLost]);
    await pf.shutdown().catch(() => {});
    rmSync(this.socketDir, { recursive: true, force: true });
  }
}
