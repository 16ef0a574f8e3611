/**
 * What the control plane asks of a physical function, as NVMe admin
 * commands: Namespace Management (VSAs), Namespace Attachment (VSA to VSIC),
 * Virtualization Management (VSIC resources, online/offline), and the
 * vendor commands for resize and QoS. The same commands go to the emulator's
 * PF and, through the kernel's admin pass-through, to a hardware PF.
 */
import type { CommandResult, NvmeController } from '../../libstorage/driver/controller.js';
import { statusError } from '../../libstorage/driver/command-error.js';
import {
  CTRL_LIST_SIZE_BYTES,
  Cns,
  NsAttachmentSel,
  NsManagementSel,
  VirtMgmtAction,
  VirtResourceType,
  encodeNamespaceCreateData,
  nsAttachmentSqe,
  nsManagementSqe,
  readControllerList,
  readSecondaryControllerList,
  readNamespaceList,
  virtMgmtSqe,
  writeControllerList,
  type SecondaryControllerEntry,
} from '../../libstorage/nvme/identify.js';
import { VendorOpcode } from './vendor-commands.js';

export class PfAdmin {
  constructor(readonly controller: NvmeController) {}

  private check(result: CommandResult, name: string): CommandResult {
    if (result.status16 !== 0) throw statusError(result.status16, name);
    return result;
  }

  /** Creates a namespace of `sizeBlocks` blocks of 512 or 4096 bytes; returns its NSID. */
  async createNamespace(sizeBlocks: number, blockBytes: 512 | 4096): Promise<number> {
    const data = encodeNamespaceCreateData({ nsze: sizeBlocks, ncap: sizeBlocks, flbas: blockBytes === 4096 ? 1 : 0 });
    const { cid: _cid, prp1: _p1, prp2: _p2, ...fields } = nsManagementSqe({ cid: 0, sel: NsManagementSel.CREATE });
    const result = await this.controller.adminTransfer(fields, { write: data });
    return this.check(result, 'Namespace Management (create)').dw0;
  }

  async deleteNamespace(nsid: number): Promise<void> {
    const { cid: _cid, prp1: _p1, prp2: _p2, ...fields } = nsManagementSqe({ cid: 0, sel: NsManagementSel.DELETE, nsid });
    this.check(await this.controller.adminTransfer(fields), 'Namespace Management (delete)');
  }

  private async attachment(sel: number, nsid: number, controllers: number[], name: string): Promise<void> {
    const list = new Uint8Array(CTRL_LIST_SIZE_BYTES);
    writeControllerList(new DataView(list.buffer), 0, controllers);
    const { cid: _cid, prp1: _p1, prp2: _p2, ...fields } = nsAttachmentSqe({ cid: 0, sel, nsid });
    this.check(await this.controller.adminTransfer(fields, { write: list }), name);
  }

  attach(nsid: number, cntlid: number): Promise<void> {
    return this.attachment(NsAttachmentSel.ATTACH, nsid, [cntlid], 'Namespace Attachment (attach)');
  }

  detach(nsid: number, cntlid: number): Promise<void> {
    return this.attachment(NsAttachmentSel.DETACH, nsid, [cntlid], 'Namespace Attachment (detach)');
  }

  async allocatedNamespaces(): Promise<number[]> {
    return readNamespaceList(await this.controller.identify(Cns.ALLOCATED_NS_LIST, 0));
  }

  async attachedControllers(nsid: number): Promise<number[]> {
    return readControllerList(await this.controller.identify(Cns.NS_ATTACHED_CTRL_LIST, nsid));
  }

  async secondaryControllers(): Promise<SecondaryControllerEntry[]> {
    return readSecondaryControllerList(await this.controller.identify(Cns.SECONDARY_CTRL_LIST, 0));
  }

  /** Assigns queue (VQ, admin queue included) and interrupt (VI) resources, then brings the VSIC online. */
  async bringOnline(cntlid: number, queues: number, interrupts: number): Promise<void> {
    const run = async (act: number, rt: number, nr: number, name: string) =>
      this.check(await this.controller.adminCommand(virtMgmtSqe({ cid: 0, act, rt, cntlid, nr })), name);
    await run(VirtMgmtAction.SECONDARY_ASSIGN, VirtResourceType.VQ, queues, 'Virtualization Management (assign VQ)');
    await run(VirtMgmtAction.SECONDARY_ASSIGN, VirtResourceType.VI, interrupts, 'Virtualization Management (assign VI)');
    await run(VirtMgmtAction.SECONDARY_ONLINE, 0, 0, 'Virtualization Management (online)');
  }

  async takeOffline(cntlid: number): Promise<void> {
    const result = await this.controller.adminCommand(virtMgmtSqe({ cid: 0, act: VirtMgmtAction.SECONDARY_OFFLINE, cntlid }));
    this.check(result, 'Virtualization Management (offline)');
  }

  async resizeNamespace(nsid: number, sizeBlocks: number): Promise<void> {
    const result = await this.controller.adminCommand({
      opc: VendorOpcode.RESIZE_NAMESPACE,
      nsid,
      cdw10: sizeBlocks % 2 ** 32,
      cdw11: Math.floor(sizeBlocks / 2 ** 32),
    });
    this.check(result, 'Resize Namespace');
  }

  async setLimits(cntlid: number, iops: number, kibPerSecond: number): Promise<void> {
    const result = await this.controller.adminCommand({ opc: VendorOpcode.SET_CONTROLLER_LIMITS, cdw10: cntlid, cdw11: iops, cdw12: kibPerSecond });
    this.check(result, 'Set Controller Limits');
  }

  /** A read-only VSIC: the controller refuses every command that changes data. */
  async setReadOnly(cntlid: number, readOnly: boolean): Promise<void> {
    const result = await this.controller.adminCommand({ opc: VendorOpcode.SET_CONTROLLER_ACCESS, cdw10: cntlid, cdw11: readOnly ? 1 : 0 });
    this.check(result, 'Set Controller Access');
  }

  async getLimits(cntlid: number): Promise<{ iops: number; kibPerSecond: number }> {
    const result = this.check(await this.controller.adminCommand({ opc: VendorOpcode.GET_CONTROLLER_LIMITS, cdw10: cntlid }), 'Get Controller Limits');
    return { iops: result.dw0, kibPerSecond: result.dw1 };
  }
}
