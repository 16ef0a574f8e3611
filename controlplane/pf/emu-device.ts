/**
 * PF driver for an emulated device: the daemon runs the emulator as a child
 * process, restarts it if it dies, and speaks NVMe admin commands to its PF
 * socket. A VSIC is a VF socket the application is handed connected.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NvmeController } from '../../libstorage/driver/controller.js';
import { native } from '../../libstorage/native.js';
import { EmuTransport } from '../../libstorage/transport/emu/emu-transport.js';
import { spawnEmulator, type EmulatorProcess } from '../../emulator/process.js';
import { controllerSocketName } from '../../emulator/server.js';
import { Cns, IDCTRL_TNVMCAP_OFFSET, IDCTRL_UNVMCAP_OFFSET } from '../../libstorage/nvme/identify.js';
import { PfAdmin } from './pf-admin.js';
import type { DeviceStatus, PfDriver, VsicGrant } from './pf-driver.js';

export interface EmuDeviceOptions {
  name: string;
  /** Emulator --store value, e.g. file:/var/lib/offpath/emu0.img */
  store: string;
  /** Size of a backing file the emulator creates. */
  size?: string;
  vfs: number;
  /** Where the emulator's sockets live (owner-only). */
  socketDir: string;
  log: (event: Record<string, unknown>) => void;
}

export class EmuDevice implements PfDriver {
  readonly kind = 'emu';
  readonly name: string;
  onFailure: ((error: Error) => void) | undefined;
  private emulator: EmulatorProcess | undefined;
  private pf: PfAdmin | undefined;
  private stopping = false;

  constructor(private readonly options: EmuDeviceOptions) {
    this.name = options.name;
  }

  async start(): Promise<void> {
    mkdirSync(this.options.socketDir, { recursive: true, mode: 0o700 });
    const args = ['--store', this.options.store, '--vfs', String(this.options.vfs)];
    if (this.options.size) args.push('--size', this.options.size);
    this.emulator = await spawnEmulator(this.options.socketDir, args);
    const transport = await EmuTransport.connect(join(this.options.socketDir, controllerSocketName(0)));
    this.pf = new PfAdmin(await NvmeController.bringUp(transport, { ioQueuePairs: 1 }));
    await this.releaseAllVsics();
    this.options.log({ event: 'device-started', device: this.name, pid: this.emulator.process.pid });
    const emulator = this.emulator;
    emulator.exited.then((code) => {
      if (this.stopping || emulator !== this.emulator) return;
      this.options.log({ event: 'device-died', device: this.name, code });
      this.onFailure?.(new Error(`emulator of device ${this.name} exited (${code})`));
    });
  }

  /**
   * No application holds a VSIC across a daemon start: take every VF
   * offline and detach every namespace (attachments persist in the store).
   */
  private async releaseAllVsics(): Promise<void> {
    const pf = this.admin();
    for (const secondary of await pf.secondaryControllers()) if (secondary.online) await pf.takeOffline(secondary.scid);
    for (const nsid of await pf.allocatedNamespaces()) {
      for (const cntlid of await pf.attachedControllers(nsid)) await pf.detach(nsid, cntlid);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.pf?.controller.shutdown().catch(() => {});
    this.pf?.controller.transport.close();
    await this.emulator?.stop();
  }

  private admin(): PfAdmin {
    if (!this.pf) throw new Error(`device ${this.name} is not running`);
    return this.pf;
  }

  vsicIds(): number[] {
    return Array.from({ length: this.options.vfs }, (_, i) => i + 1);
  }

  async status(): Promise<DeviceStatus> {
    const pf = this.admin();
    const id = await pf.controller.identify(Cns.CTRL, 0);
    const bytes = (offset: number) => Number(id.getBigUint64(offset, true));
    const secondaries = await pf.secondaryControllers();
    return {
      name: this.name,
      kind: this.kind,
      capacityBytes: bytes(IDCTRL_TNVMCAP_OFFSET),
      freeBytes: bytes(IDCTRL_UNVMCAP_OFFSET),
      vsics: secondaries.map((s) => ({ cntlid: s.scid, online: s.online, queues: s.nvq, interrupts: s.nvi })),
    };
  }

  async createNamespace(sizeBlocks: number, blockBytes: 512 | 4096): Promise<{ nsid: number; sizeBlocks: number }> {
    return { nsid: await this.admin().createNamespace(sizeBlocks, blockBytes), sizeBlocks };
  }

  deleteNamespace(nsid: number): Promise<void> {
    return this.admin().deleteNamespace(nsid);
  }

  resizeNamespace(nsid: number, sizeBlocks: number): Promise<void> {
    return this.admin().resizeNamespace(nsid, sizeBlocks);
  }

  async bindVsic(nsid: number, cntlid: number, grant: VsicGrant): Promise<void> {
    const pf = this.admin();
    // A VSIC left online by a daemon that died is reset first.
    const state = (await pf.secondaryControllers()).find((s) => s.scid === cntlid);
    if (state?.online) await pf.takeOffline(cntlid);
    await pf.attach(nsid, cntlid);
    try {
      await pf.setLimits(cntlid, grant.iops, grant.kibPerSecond);
      await pf.setReadOnly(cntlid, grant.readOnly);
      await pf.bringOnline(cntlid, grant.queues, grant.interrupts);
    } catch (error) {
      await pf.detach(nsid, cntlid).catch(() => {});
      throw error;
    }
  }

  async unbindVsic(nsid: number, cntlid: number): Promise<void> {
    const pf = this.admin();
    await pf.takeOffline(cntlid);
    await pf.detach(nsid, cntlid).catch(() => {});
    await pf.setLimits(cntlid, 0, 0);
  }

  setLimits(cntlid: number, iops: number, kibPerSecond: number): Promise<void> {
    return this.admin().setLimits(cntlid, iops, kibPerSecond);
  }

  getLimits(cntlid: number): Promise<{ iops: number; kibPerSecond: number }> {
    return this.admin().getLimits(cntlid);
  }

  connectVsic(cntlid: number): number {
    return native.seqpacketConnect(join(this.options.socketDir, controllerSocketName(cntlid)));
  }
}
