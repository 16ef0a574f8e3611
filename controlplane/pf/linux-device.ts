/**
 * PF driver for a hardware SR-IOV NVMe device on Linux. The kernel's nvme
 * driver keeps the PF (and whatever namespaces the host itself uses); the
 * control plane sends its admin commands through the driver's pass-through
 * ioctl on /dev/nvmeN: Namespace Management and Attachment for VSAs,
 * Virtualization Management for VSIC resources and online/offline. VFs are
 * created through sysfs with driver autoprobe off and bound to vfio-pci; an
 * application receives its VF as VFIO descriptors (see connectVsic).
 *
 * Standard NVMe has no per-controller rate limits, read-only controllers or
 * namespace resize: grants that ask for them are refused (ENOTSUP) rather
 * than silently not enforced.
 */
import { closeSync, existsSync, openSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { statusError } from '../../libstorage/driver/command-error.js';
import { StorageError } from '../../libstorage/errors.js';
import { native } from '../../libstorage/native.js';
import {
  CTRL_LIST_SIZE_BYTES,
  Cns,
  EFFECTS_LOG_SIZE_BYTES,
  FormatSes,
  IDCTRL_CNTLID_OFFSET,
  IDCTRL_OACS_OFFSET,
  IDNS_FLBAS_FORMAT_MASK,
  IDNS_FLBAS_FORMAT_SHIFT,
  IdctrlOacs,
  IDCTRL_TNVMCAP_OFFSET,
  IDCTRL_UNVMCAP_OFFSET,
  IDENTIFY_DATA_SIZE_BYTES,
  LogPageId,
  NsAttachmentSel,
  NsManagementSel,
  VirtMgmtAction,
  VirtResourceType,
  adminCommandSupported,
  encodeNamespaceCreateData,
  formatNvmSqe,
  getLogPageSqe,
  identifySqe,
  logPageNumd,
  nsAttachmentSqe,
  nsManagementSqe,
  readControllerList,
  readIdentifyNamespace,
  readNamespaceList,
  readPrimaryControllerCaps,
  readSecondaryControllerList,
  virtMgmtSqe,
  writeControllerList,
  type PrimaryControllerCaps,
  type SecondaryControllerEntry,
} from '../../libstorage/nvme/identify.js';
import { getBits } from '../../libstorage/nvme/bits.js';
import { AdminOpcode, encodeSqe, type SqeFields } from '../../libstorage/nvme/spec.js';
import type { DeviceStatus, PfDriver, VsicGrant } from './pf-driver.js';

const PCI = '/sys/bus/pci/devices';

export interface LinuxDeviceOptions {
  name: string;
  /** The PF: its PCI address, e.g. '0000:3b:00.0', or its kernel controller name, e.g. 'nvme0'. */
  pf: string;
  /** VFs (VSICs) to offer; existing VFs are kept when there are enough. */
  vfs: number;
  log: (event: Record<string, unknown>) => void;
}

/** What connectVsic's socket carries: this JSON body plus [deviceFd, containerFd, groupFd]. */
export interface VfioHandoverMessage {
  transport: 'vfio';
  device: string;
  cntlid: number;
}

const sysfs = (path: string) => readFileSync(path, 'utf8').trim();

export class LinuxNvmeDevice implements PfDriver {
  readonly kind = 'nvme';
  readonly name: string;
  onFailure: ((error: Error) => void) | undefined;
  private fd = -1;
  private caps: PrimaryControllerCaps | undefined;
  /** The PF's own controller id (for attaching a pool namespace while it is erased). */
  private cntlid = 0;
  /** Namespace Management offered (OACS bit 3) and really there (effects log): VSAs create and delete namespaces; otherwise they use a pre-provisioned pool. */
  private namespaceManagement = false;
  /** Secondary controller id -> VF PCI address. */
  private readonly vfAddresses = new Map<number, string>();

  /** The PF's PCI address. */
  readonly pf: string;

  constructor(private readonly options: LinuxDeviceOptions) {
    this.name = options.name;
    this.pf = pciAddressOf(options.pf);
  }

  /** The PF's /dev/nvmeN. */
  get controllerPath(): string {
    const dir = join(PCI, this.pf, 'nvme');
    const name = existsSync(dir) ? readdirSync(dir)[0] : undefined;
    if (!name) throw new StorageError('ENODEV', `${this.pf}: no nvme controller (is the PF bound to the kernel nvme driver?)`);
    return `/dev/${name}`;
  }

  async start(): Promise<void> {
    const { pf } = this;
    const { vfs } = this.options;
    this.fd = openSync(this.controllerPath, 'r+');
    // Flexible VQ and VI resources (CRT bits 0 and 1) are what VSICs are made
    // of. OACS is not consulted: QEMU 7.2 implements Virtualization
    // Management without setting its OACS bit.
    const caps = await this.identify(Cns.PRIMARY_CTRL_CAPS, 0).then(readPrimaryControllerCaps, () => undefined);
    if (!caps || (caps.crt & 3) !== 3) {
      throw new StorageError('ENOTSUP', `${pf}: the controller has no flexible queue and interrupt resources for its VFs (Primary Controller Capabilities)`);
    }
    this.caps = caps;
    const id = await this.identify(Cns.CTRL, 0);
    this.cntlid = id.getUint16(IDCTRL_CNTLID_OFFSET, true);
    // OACS alone is not enough: QEMU 7.2 sets the Namespace Management bit
    // for Namespace Attachment but has no create/delete. The Commands
    // Supported and Effects log says which opcodes really exist.
    const oacs = (id.getUint16(IDCTRL_OACS_OFFSET, true) & IdctrlOacs.NAMESPACE_MANAGEMENT) !== 0;
    const effects = await this.commandsEffects().catch(() => undefined);
    this.namespaceManagement = oacs && (effects === undefined || adminCommandSupported(effects, AdminOpcode.NAMESPACE_MANAGEMENT));
    const total = Number(sysfs(join(PCI, pf, 'sriov_totalvfs')));
    if (vfs < 1 || vfs > total) throw new RangeError(`${pf} offers 1..${total} VFs, not ${vfs}`);
    // Keep the kernel's nvme driver off the VFs: they go to vfio-pci.
    writeFileSync(join(PCI, pf, 'sriov_drivers_autoprobe'), '0');
    if (Number(sysfs(join(PCI, pf, 'sriov_numvfs'))) < vfs) {
      writeFileSync(join(PCI, pf, 'sriov_numvfs'), '0');
      writeFileSync(join(PCI, pf, 'sriov_numvfs'), String(vfs));
    }
    for (const secondary of await this.secondaryControllers()) {
      const link = join(PCI, pf, `virtfn${secondary.vfn - 1}`);
      if (secondary.vfn < 1 || secondary.vfn > vfs || !existsSync(link)) continue;
      const address = basename(readlinkSync(link));
      await bindToVfio(address);
      this.vfAddresses.set(secondary.scid, address);
    }
    await this.releaseAllVsics();
    this.options.log({
      event: 'device-started',
      device: this.name,
      pf,
      controller: this.controllerPath,
      vsics: this.vfAddresses.size,
      namespaces: this.namespaceManagement ? 'managed' : 'pool',
    });
  }

  /** No application holds a VSIC across a daemon start: every VF offline, every namespace detached from them. */
  private async releaseAllVsics(): Promise<void> {
    for (const secondary of await this.secondaryControllers()) {
      if (secondary.online) await this.virtMgmt(VirtMgmtAction.SECONDARY_OFFLINE, 0, secondary.scid, 0, 'offline');
    }
    const vsics = new Set(this.vfAddresses.keys());
    for (const nsid of readNamespaceList(await this.identify(Cns.ALLOCATED_NS_LIST, 0))) {
      // Only the VFs' attachments: the PF's own (the host's namespaces) stay.
      for (const cntlid of readControllerList(await this.identify(Cns.NS_ATTACHED_CTRL_LIST, nsid))) {
        if (vsics.has(cntlid)) await this.attachment(NsAttachmentSel.DETACH, nsid, cntlid);
      }
    }
  }

  async stop(): Promise<void> {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  vsicIds(): number[] {
    return [...this.vfAddresses.keys()].sort((a, b) => a - b);
  }

  /** The VF's PCI address of a VSIC. */
  vfAddress(cntlid: number): string {
    const address = this.vfAddresses.get(cntlid);
    if (!address) throw new StorageError('ENOENT', `device ${this.name} has no VSIC ${cntlid}`);
    return address;
  }

  async status(): Promise<DeviceStatus> {
    const id = await this.identify(Cns.CTRL, 0);
    const bytes = (offset: number) => Number(id.getBigUint64(offset, true));
    const secondaries = await this.secondaryControllers();
    return {
      name: this.name,
      kind: this.kind,
      capacityBytes: bytes(IDCTRL_TNVMCAP_OFFSET),
      freeBytes: bytes(IDCTRL_UNVMCAP_OFFSET),
      vsics: secondaries.filter((s) => this.vfAddresses.has(s.scid)).map((s) => ({ cntlid: s.scid, online: s.online, queues: s.nvq, interrupts: s.nvi })),
    };
  }

  async createNamespace(sizeBlocks: number, blockBytes: 512 | 4096, taken: ReadonlySet<number>): Promise<{ nsid: number; sizeBlocks: number }> {
    if (!this.namespaceManagement) return this.takeFromPool(sizeBlocks, blockBytes, taken);
    // FLBAS picks an LBA format by index: 0 = 512 and 1 = 4096 holds for
    // many drives but not all; a production driver matches Identify Namespace's LBAF list.
    const data = encodeNamespaceCreateData({ nsze: sizeBlocks, ncap: sizeBlocks, flbas: blockBytes === 4096 ? 1 : 0 });
    const result = await this.checked(nsManagementSqe({ cid: 0, sel: NsManagementSel.CREATE }), 'Namespace Management (create)', data);
    return { nsid: result.dw0, sizeBlocks };
  }

  /**
   * Without Namespace Management the operator provisions namespaces up front
   * and leaves them detached: every allocated namespace attached to no
   * controller (the host's own stay attached to the PF) and held by no VSA
   * is in the pool. The smallest one that fits is used whole.
   */
  private async takeFromPool(sizeBlocks: number, blockBytes: number, taken: ReadonlySet<number>): Promise<{ nsid: number; sizeBlocks: number }> {
    let best: { nsid: number; sizeBlocks: number } | undefined;
    for (const nsid of readNamespaceList(await this.identify(Cns.ALLOCATED_NS_LIST, 0))) {
      if (taken.has(nsid)) continue;
      if (readControllerList(await this.identify(Cns.NS_ATTACHED_CTRL_LIST, nsid)).length > 0) continue;
      const ns = readIdentifyNamespace(await this.identify(Cns.ALLOCATED_NS, nsid));
      const blocks = Number(ns.nsze);
      if (ns.blockSizeBytes !== blockBytes || blocks < sizeBlocks) continue;
      if (!best || blocks < best.sizeBlocks) best = { nsid, sizeBlocks: blocks };
    }
    if (!best) {
      throw new StorageError(
        'ENOSPC',
        `device ${this.name} has no Namespace Management and no free pre-provisioned namespace of at least ${sizeBlocks * blockBytes} bytes with ${blockBytes}-byte blocks (docs/hardware.md)`,
      );
    }
    this.options.log({ event: 'namespace-taken-from-pool', device: this.name, nsid: best.nsid, sizeBlocks: best.sizeBlocks });
    return best;
  }

  async deleteNamespace(nsid: number): Promise<void> {
    if (this.namespaceManagement) {
      await this.checked(nsManagementSqe({ cid: 0, sel: NsManagementSel.DELETE, nsid }), 'Namespace Management (delete)');
      return;
    }
    await this.erase(nsid);
  }

  /**
   * A pool namespace goes back erased, so the next VSA on it never reads
   * this one's data. Format NVM needs the namespace attached to the
   * controller it is sent to: attached to the PF for the command only. User
   * data erase (SES 1) where the device offers it, else a plain format
   * (which on QEMU, and on drives that deallocate, reads back zeroes).
   */
  private async erase(nsid: number): Promise<void> {
    const ns = readIdentifyNamespace(await this.identify(Cns.ALLOCATED_NS, nsid));
    const lbaf = getBits(ns.flbas, IDNS_FLBAS_FORMAT_SHIFT, IDNS_FLBAS_FORMAT_MASK);
    await this.attachment(NsAttachmentSel.ATTACH, nsid, this.cntlid);
    try {
      const format = (ses: number) => this.command(formatNvmSqe({ cid: 0, nsid, lbaf, ses }));
      let result = await format(FormatSes.USER_DATA_ERASE);
      if (result.status16 !== 0) result = await format(FormatSes.NONE);
      if (result.status16 !== 0) throw statusError(result.status16, 'Format NVM');
    } finally {
      await this.attachment(NsAttachmentSel.DETACH, nsid, this.cntlid);
    }
    this.options.log({ event: 'namespace-erased', device: this.name, nsid });
  }

  async resizeNamespace(_nsid: number, _sizeBlocks: number): Promise<void> {
    throw new StorageError('ENOTSUP', `device ${this.name}: NVMe has no standard namespace resize`);
  }

  async bindVsic(nsid: number, cntlid: number, grant: VsicGrant): Promise<void> {
    refuseUnenforceable(this.name, grant.iops, grant.kibPerSecond, grant.readOnly);
    this.vfAddress(cntlid);
    const state = (await this.secondaryControllers()).find((s) => s.scid === cntlid);
    if (state?.online) await this.virtMgmt(VirtMgmtAction.SECONDARY_OFFLINE, 0, cntlid, 0, 'offline');
    // At most what one secondary controller may hold (VQFRSM / VIFRSM).
    const queues = Math.max(2, Math.min(grant.queues, this.caps?.vqfrsm || grant.queues));
    const interrupts = Math.max(1, Math.min(grant.interrupts, this.caps?.vifrsm || grant.interrupts));
    await this.attachment(NsAttachmentSel.ATTACH, nsid, cntlid);
    try {
      await this.virtMgmt(VirtMgmtAction.SECONDARY_ASSIGN, VirtResourceType.VQ, cntlid, queues, 'assign VQ');
      await this.virtMgmt(VirtMgmtAction.SECONDARY_ASSIGN, VirtResourceType.VI, cntlid, interrupts, 'assign VI');
      await this.virtMgmt(VirtMgmtAction.SECONDARY_ONLINE, 0, cntlid, 0, 'online');
    } catch (error) {
      await this.attachment(NsAttachmentSel.DETACH, nsid, cntlid).catch(() => {});
      throw error;
    }
  }

  /** Offline first: the application's commands stop at once, whatever it still holds. */
  async unbindVsic(nsid: number, cntlid: number): Promise<void> {
    await this.virtMgmt(VirtMgmtAction.SECONDARY_OFFLINE, 0, cntlid, 0, 'offline');
    await this.attachment(NsAttachmentSel.DETACH, nsid, cntlid).catch(() => {});
  }

  async setLimits(_cntlid: number, iops: number, kibPerSecond: number): Promise<void> {
    refuseUnenforceable(this.name, iops, kibPerSecond, false);
  }

  async getLimits(_cntlid: number): Promise<{ iops: number; kibPerSecond: number }> {
    return { iops: 0, kibPerSecond: 0 };
  }

  /**
   * The VSIC for an application: one end of a fresh SOCK_SEQPACKET pair
   * holding a single message, a VfioHandoverMessage with the VF's VFIO
   * device, container and group descriptors (the container's IOMMU already
   * set). The daemon keeps no copy: the VF is reset when the application
   * closes them or exits, and its group can be opened again after that.
   */
  connectVsic(cntlid: number): number {
    const address = this.vfAddress(cntlid);
    const opened: number[] = [];
    try {
      const containerFd = native.vfioOpenContainer();
      opened.push(containerFd);
      const groupFd = native.vfioOpenGroup(`/dev/vfio/${basename(readlinkSync(join(PCI, address, 'iommu_group')))}`);
      opened.push(groupFd);
      native.vfioGroupSetContainer(groupFd, containerFd);
      native.vfioSetIommu(containerFd);
      const deviceFd = native.vfioGetDeviceFd(groupFd, address);
      opened.push(deviceFd);
      const [mine, theirs] = native.seqpacketPair();
      opened.push(mine);
      const message: VfioHandoverMessage = { transport: 'vfio', device: address, cntlid };
      if (native.seqpacketSend(mine, Buffer.from(JSON.stringify(message)), [deviceFd, containerFd, groupFd]) === null) {
        native.closeFd(theirs);
        throw new StorageError('EAGAIN', 'could not queue the VFIO handover message');
      }
      return theirs;
    } finally {
      for (const fd of opened) native.closeFd(fd);
    }
  }

  // ---- admin commands through the kernel's pass-through

  private async command(fields: SqeFields, data?: Uint8Array): Promise<{ status16: number; dw0: number }> {
    if (this.fd < 0) throw new StorageError('ECLOSED', `device ${this.name} is not running`);
    return native.nvmeAdminCommand(this.fd, encodeSqe(fields), data);
  }

  private async checked(fields: SqeFields, name: string, data?: Uint8Array): Promise<{ status16: number; dw0: number }> {
    const result = await this.command(fields, data);
    if (result.status16 !== 0) throw statusError(result.status16, name);
    return result;
  }

  private async identify(cns: number, nsid: number): Promise<DataView> {
    const data = new Uint8Array(IDENTIFY_DATA_SIZE_BYTES);
    await this.checked(identifySqe({ cid: 0, cns, nsid, prp1: 0 }), `Identify (CNS ${cns})`, data);
    return new DataView(data.buffer);
  }

  private async commandsEffects(): Promise<DataView> {
    const data = new Uint8Array(EFFECTS_LOG_SIZE_BYTES);
    const sqe = getLogPageSqe({ cid: 0, prp1: 0, lid: LogPageId.COMMANDS_EFFECTS, numd: logPageNumd(EFFECTS_LOG_SIZE_BYTES) });
    await this.checked(sqe, 'Get Log Page (Commands Supported and Effects)', data);
    return new DataView(data.buffer);
  }

  private async secondaryControllers(): Promise<SecondaryControllerEntry[]> {
    return readSecondaryControllerList(await this.identify(Cns.SECONDARY_CTRL_LIST, 0));
  }

  private async virtMgmt(act: number, rt: number, cntlid: number, nr: number, what: string): Promise<void> {
    await this.checked(virtMgmtSqe({ cid: 0, act, rt, cntlid, nr }), `Virtualization Management (${what})`);
  }

  private async attachment(sel: number, nsid: number, cntlid: number): Promise<void> {
    const list = new Uint8Array(CTRL_LIST_SIZE_BYTES);
    writeControllerList(new DataView(list.buffer), 0, [cntlid]);
    await this.checked(nsAttachmentSqe({ cid: 0, sel, nsid }), `Namespace Attachment (${sel === NsAttachmentSel.ATTACH ? 'attach' : 'detach'})`, list);
  }
}

function refuseUnenforceable(device: string, iops: number, kibPerSecond: number, readOnly: boolean): void {
  if (iops > 0 || kibPerSecond > 0) throw new StorageError('ENOTSUP', `device ${device}: hardware VSICs cannot enforce IOPS or bandwidth limits`);
  if (readOnly) throw new StorageError('ENOTSUP', `device ${device}: hardware VSICs cannot be made read-only`);
}

/** A PCI address as given, or the PCI address of kernel controller `nvmeN`. */
function pciAddressOf(pf: string): string {
  if (/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(pf)) return pf.toLowerCase();
  const link = `/sys/class/nvme/${pf}/device`;
  if (!/^nvme\d+$/.test(pf) || !existsSync(link)) throw new StorageError('ENODEV', `${pf}: neither a PCI address nor a kernel nvme controller`);
  return basename(readlinkSync(link));
}

/** Binds a PCI function to vfio-pci (driver_override, then a probe). */
async function bindToVfio(address: string): Promise<void> {
  const driverLink = join(PCI, address, 'driver');
  const current = existsSync(driverLink) ? basename(readlinkSync(driverLink)) : undefined;
  if (current === 'vfio-pci') return;
  if (current) writeFileSync(join(driverLink, 'unbind'), address);
  writeFileSync(join(PCI, address, 'driver_override'), 'vfio-pci');
  writeFileSync('/sys/bus/pci/drivers_probe', address);
  for (let i = 0; i < 500 && !existsSync(driverLink); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!existsSync(driverLink)) throw new StorageError('ENODEV', `${address}: vfio-pci did not bind (modprobe vfio-pci?)`);
}
