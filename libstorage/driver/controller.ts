/**
 * The NVMe host driver for one controller, independent of how it is reached
 * (the Transport). Bring-up is a named state machine whose waits are bounded
 * by CAP.TO; a stuck controller fails with the state it stuck in.
 */
import { DmaRegion, type DmaBuffer } from '../dma.js';
import { StorageError } from '../errors.js';
import {
  Cns,
  FeatureId,
  IDCTRL_CNTLID_OFFSET,
  IDCTRL_MDTS_OFFSET,
  IDCTRL_MN_OFFSET,
  IDCTRL_MN_SIZE_BYTES,
  IDCTRL_NN_OFFSET,
  IDCTRL_ONCS_OFFSET,
  IDCTRL_SGLS_OFFSET,
  IDCTRL_SN_OFFSET,
  IDCTRL_SN_SIZE_BYTES,
  IDCTRL_VWC_OFFSET,
  IDENTIFY_DATA_SIZE_BYTES,
  decodeNumberOfQueues,
  identifySqe,
  numberOfQueuesDw,
  readAsciiField,
  readIdentifyNamespace,
  type IdentifyNamespaceSummary,
} from '../nvme/identify.js';
import {
  AdminOpcode,
  CQE_SIZE_BYTES,
  SQE_SIZE_BYTES,
  adminOpcodeName,
  capTimeoutMs,
  createIoCqSqe,
  createIoSqSqe,
  decodeCap,
  decodeCsts,
  deleteIoQueueSqe,
  encodeAqa,
  encodeCc,
  writeSqe,
  type CapFields,
  type SqeFields,
} from '../nvme/spec.js';
import { StatusCodeType, decodeStatusField, encodeStatusField, statusName } from '../nvme/status.js';
import { CompletionPump } from '../queue/pump.js';
import { QueuePair } from '../queue/queue-pair.js';
import type { Transport } from '../transport/transport.js';
import { statusError } from './command-error.js';
import { Registers } from './registers.js';

export type BringUpState =
  | 'disable'
  | 'wait-not-ready'
  | 'configure-admin-queue'
  | 'enable'
  | 'wait-ready'
  | 'identify-controller'
  | 'set-number-of-queues'
  | 'ready'
  | 'shutdown'
  | 'failed';

export interface ControllerIdentity {
  cntlid: number;
  serial: string;
  model: string;
  /** Largest transfer per command, bytes (0 = no limit reported). */
  maxTransferBytes: number;
  /** SGLs supported for I/O data (Identify SGLS bits 1:0 non-zero). */
  sglSupported: boolean;
  volatileWriteCache: boolean;
  /** Optional NVM command support (ONCS). */
  oncs: number;
  maxNamespaceId: number;
}

export interface CommandResult {
  status16: number;
  dw0: number;
  dw1: number;
}

export interface BringUpOptions {
  adminEntries?: number;
  /** I/O queue pairs to ask for (Set Features, Number of Queues). */
  ioQueuePairs?: number;
  /** Per admin command; defaults to CAP.TO. */
  adminTimeoutMs?: number;
}

const ADMIN_REGION_BYTES = 256 * 1024;
// Completes commands the controller will never answer: Path Related Status
// "Command Aborted By Host" (SCT 3h, SC 71h).
const LOST_STATUS = encodeStatusField({ sct: StatusCodeType.PATH, sc: 0x71, dnr: 1 });
const REGISTER_POLL_MS = 1;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class NvmeController {
  readonly transport: Transport;
  readonly registers: Registers;
  readonly cap: CapFields;
  readonly timeoutMs: number;
  state: BringUpState = 'disable';
  identity!: ControllerIdentity;
  /** I/O queue pairs the controller granted. */
  grantedQueuePairs = 0;
  readonly pump = new CompletionPump();
  private adminRegion!: DmaRegion;
  private admin!: QueuePair;
  private adminScratch!: DmaBuffer;
  private readonly adminTimeoutMs: number;
  private readonly ioQueues = new Map<number, QueuePair>();
  private readonly regions: DmaRegion[] = [];
  private lostError: StorageError | undefined;

  private constructor(transport: Transport, options: BringUpOptions) {
    this.transport = transport;
    this.registers = new Registers(transport.bar);
    this.cap = decodeCap(this.registers.cap);
    this.timeoutMs = Math.max(capTimeoutMs(this.cap), 500);
    this.adminTimeoutMs = options.adminTimeoutMs ?? this.timeoutMs;
    transport.onLost = (error) =>
      this.markLost(error ?? new StorageError('ECONNRESET', `the controller went away (${transport.kind} connection closed)`), LOST_STATUS);
  }

  /** Called (once) when the controller or its transport is lost. */
  readonly lostListeners: Array<(error: StorageError) => void> = [];
  private nextQueueId = 1;
  /** Ids of deleted queue pairs, handed out again before new ones. */
  private readonly freeQueueIds: number[] = [];

  /** A queue id not in use by this driver (1..granted). */
  allocateQueueId(): number {
    const reused = this.freeQueueIds.pop();
    if (reused !== undefined) return reused;
    if (this.nextQueueId > this.grantedQueuePairs) {
      throw new StorageError('ENOSPC', `all ${this.grantedQueuePairs} I/O queue pairs of this controller are in use`);
    }
    return this.nextQueueId++;
  }

  get dstrd(): number {
    return this.cap.dstrd;
  }

  /** Brings the controller up: reset, admin queue, enable, identify, queues. */
  static async bringUp(transport: Transport, options: BringUpOptions = {}): Promise<NvmeController> {
    const controller = new NvmeController(transport, options);
    try {
      await controller.runBringUp(options);
      return controller;
    } catch (error) {
      controller.state = 'failed';
      await controller.release();
      throw error;
    }
  }

  private async waitFor(state: BringUpState, done: () => boolean): Promise<void> {
    this.state = state;
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      if (done()) return;
      const csts = decodeCsts(this.registers.csts);
      if (csts.cfs && state === 'wait-ready') {
        throw new StorageError('ECONTROLLERFATAL', `controller reported fatal status (CSTS.CFS) in state ${state}`);
      }
      if (Date.now() > deadline) {
        throw new StorageError('ETIMEDOUT', `controller stuck in state ${state} for ${this.timeoutMs} ms (CAP.TO)`);
      }
      this.transport.notify();
      await delay(REGISTER_POLL_MS);
    }
  }

  private async runBringUp(options: BringUpOptions): Promise<void> {
    const adminEntries = Math.min(options.adminEntries ?? 32, this.cap.mqes + 1, 4096);
    this.state = 'disable';
    if (this.registers.cc & 1) {
      this.registers.cc = 0;
      this.transport.notify();
    }
    await this.waitFor('wait-not-ready', () => (this.registers.csts & 1) === 0);

    this.state = 'configure-admin-queue';
    this.adminRegion = await this.newRegion(ADMIN_REGION_BYTES);
    const sqRing = this.adminRegion.alloc(adminEntries * SQE_SIZE_BYTES);
    const cqRing = this.adminRegion.alloc(adminEntries * CQE_SIZE_BYTES);
    this.adminScratch = this.adminRegion.alloc(IDENTIFY_DATA_SIZE_BYTES);
    this.registers.aqa = encodeAqa({ asqs: adminEntries - 1, acqs: adminEntries - 1 });
    this.registers.asq = sqRing.iova;
    this.registers.acq = cqRing.iova;
    this.admin = this.newQueuePair(0, 0, adminEntries, sqRing, cqRing);

    this.state = 'enable';
    // Entry sizes go in the same store as EN: some controllers check them at
    // enable and report CFS otherwise.
    this.registers.cc = encodeCc({ en: 1, css: 0, mps: 0, ams: 0, shn: 0, iosqes: 6, iocqes: 4 });
    this.transport.notify();
    await this.waitFor('wait-ready', () => (this.registers.csts & 1) === 1);

    this.state = 'identify-controller';
    const id = await this.identify(Cns.CTRL, 0);
    const mdts = id.getUint8(IDCTRL_MDTS_OFFSET);
    this.identity = {
      cntlid: id.getUint16(IDCTRL_CNTLID_OFFSET, true),
      serial: readAsciiField(id, IDCTRL_SN_OFFSET, IDCTRL_SN_SIZE_BYTES),
      model: readAsciiField(id, IDCTRL_MN_OFFSET, IDCTRL_MN_SIZE_BYTES),
      maxTransferBytes: mdts === 0 ? 0 : 2 ** (12 + this.cap.mpsmin + mdts),
      sglSupported: (id.getUint32(IDCTRL_SGLS_OFFSET, true) & 3) !== 0,
      volatileWriteCache: (id.getUint8(IDCTRL_VWC_OFFSET) & 1) === 1,
      oncs: id.getUint16(IDCTRL_ONCS_OFFSET, true),
      maxNamespaceId: id.getUint32(IDCTRL_NN_OFFSET, true),
    };

    this.state = 'set-number-of-queues';
    const wanted = Math.max(1, Math.min(options.ioQueuePairs ?? 8, 64));
    const granted = await this.adminChecked(
      { opc: AdminOpcode.SET_FEATURES, cdw10: FeatureId.NUMBER_OF_QUEUES, cdw11: numberOfQueuesDw({ nsqr: wanted - 1, ncqr: wanted - 1 }) },
      'Set Features (Number of Queues)',
    );
    const { nsqr, ncqr } = decodeNumberOfQueues(granted.dw0);
    this.grantedQueuePairs = Math.min(nsqr, ncqr) + 1;
    this.state = 'ready';
  }

  private newQueuePair(sqid: number, cqid: number, entries: number, sqRing: DmaBuffer, cqRing: DmaBuffer): QueuePair {
    const queue = new QueuePair({
      sqid,
      cqid,
      entries,
      sqRing,
      cqRing,
      bar: this.transport.bar,
      dstrd: this.dstrd,
      notify: () => this.transport.notify(),
    });
    this.pump.add(queue);
    return queue;
  }

  async newRegion(lengthBytes: number): Promise<DmaRegion> {
    const region = await DmaRegion.create(this.transport, lengthBytes);
    this.regions.push(region);
    return region;
  }

  /** The controller (or its transport) is gone: fail everything outstanding. */
  markLost(error: StorageError, status16: number): void {
    if (this.lostError) return;
    this.lostError = error;
    this.pump.stop();
    this.admin?.failAll(status16);
    for (const queue of this.ioQueues.values()) queue.failAll(status16);
    for (const listener of this.lostListeners.splice(0)) listener(error);
  }

  get lost(): StorageError | undefined {
    return this.lostError;
  }

  /** Submits one command on a queue pair and resolves with its completion. */
  submit(queue: QueuePair, fields: Omit<SqeFields, 'cid'> | Uint8Array, timeoutMs = this.adminTimeoutMs): Promise<CommandResult> {
    if (this.lostError) return Promise.reject(this.lostError);
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      queue.submit(
        (view, offset, cid) => {
          if (fields instanceof Uint8Array) new Uint8Array(view.buffer, view.byteOffset + offset, SQE_SIZE_BYTES).set(fields);
          else writeSqe(view, offset, { ...fields, cid });
        },
        (status16, dw0, dw1) => {
          if (timer) clearTimeout(timer);
          if (this.lostError && status16 !== 0) reject(this.lostError);
          else resolve({ status16, dw0, dw1 });
        },
      );
      queue.ring();
      this.pump.kick();
      if (timeoutMs > 0) {
        timer = setTimeout(() => reject(new StorageError('ETIMEDOUT', `command timed out after ${timeoutMs} ms`)), timeoutMs);
      }
    });
  }

  /** An admin command; resolves with its completion whatever its status. */
  adminCommand(fields: Omit<SqeFields, 'cid'> | Uint8Array, timeoutMs?: number): Promise<CommandResult> {
    return this.submit(this.admin, fields, timeoutMs);
  }

  /** An admin command that must succeed; a failure is a StorageError named after its status. The cid is assigned here. */
  async adminChecked(fields: Omit<SqeFields, 'cid'>, name = adminOpcodeName(fields.opc)): Promise<CommandResult> {
    const result = await this.adminCommand(fields);
    if (result.status16 !== 0) throw statusError(result.status16, name);
    return result;
  }

  /**
   * An admin command that moves one page of data: `write` is sent to the
   * controller, or `readBytes` (up to 4 KiB) come back. PRP1 points at the
   * admin scratch page. Resolves whatever the status.
   */
  async adminTransfer(
    fields: Omit<SqeFields, 'cid' | 'prp1' | 'prp2'>,
    data: { write?: Uint8Array; readBytes?: number } = {},
  ): Promise<CommandResult & { data: Uint8Array }> {
    const scratch = this.adminScratch.bytes;
    scratch.fill(0);
    if (data.write) {
      if (data.write.length > scratch.length) throw new RangeError('admin data is larger than one page');
      scratch.set(data.write);
    }
    const result = await this.adminCommand({ ...fields, prp1: this.adminScratch.iova });
    return { ...result, data: scratch.slice(0, data.readBytes ?? 0) };
  }

  /** Identify into the admin scratch page; returns a copy of the 4 KiB. */
  async identify(cns: number, nsid: number, cntid = 0): Promise<DataView> {
    await this.adminChecked(
      identifySqe({ cid: 0, cns, nsid, cntid, prp1: this.adminScratch.iova }),
      `Identify (CNS ${cns})`,
    );
    return new DataView(this.adminScratch.bytes.slice(0, IDENTIFY_DATA_SIZE_BYTES).buffer);
  }

  async identifyNamespace(nsid: number): Promise<IdentifyNamespaceSummary> {
    return readIdentifyNamespace(await this.identify(Cns.NS, nsid));
  }

  async activeNamespaces(): Promise<number[]> {
    const list = await this.identify(Cns.ACTIVE_NS_LIST, 0);
    const ids: number[] = [];
    for (let offset = 0; offset < IDENTIFY_DATA_SIZE_BYTES; offset += 4) {
      const nsid = list.getUint32(offset, true);
      if (nsid === 0) break;
      ids.push(nsid);
    }
    return ids;
  }

  /**
   * Creates I/O CQ and SQ `qid` over rings the caller placed in registered
   * memory. With an interrupt vector the CQ signals it; if the controller has
   * too few vectors, the CQ is created without interrupts. Returns whether
   * interrupts are on.
   */
  async createIoQueues(qid: number, entries: number, sqIova: number, cqIova: number, vector?: number): Promise<boolean> {
    let interrupts = vector !== undefined;
    let result = await this.adminCommand(createIoCqSqe({ cid: 0, prp1: cqIova, qid, qsize: entries - 1, pc: 1, ien: interrupts ? 1 : 0, iv: vector ?? 0 }));
    if (interrupts && statusName(decodeStatusField(result.status16).sct, decodeStatusField(result.status16).sc) === 'INVALID_INTERRUPT_VECTOR') {
      interrupts = false;
      result = await this.adminCommand(createIoCqSqe({ cid: 0, prp1: cqIova, qid, qsize: entries - 1, pc: 1, ien: 0, iv: 0 }));
    }
    if (result.status16 !== 0) throw statusError(result.status16, 'Create I/O CQ');
    const sq = await this.adminCommand(createIoSqSqe({ cid: 0, prp1: sqIova, qid, qsize: entries - 1, pc: 1, cqid: qid }));
    if (sq.status16 !== 0) {
      await this.adminCommand(deleteIoQueueSqe({ opc: AdminOpcode.DELETE_IO_CQ, cid: 0, qid }));
      throw statusError(sq.status16, 'Create I/O SQ');
    }
    return interrupts;
  }

  /** Deletes I/O SQ and CQ `qid` (SQ first, as the spec requires). */
  async deleteIoQueues(qid: number): Promise<void> {
    if (this.lostError) return;
    await this.adminChecked(deleteIoQueueSqe({ opc: AdminOpcode.DELETE_IO_SQ, cid: 0, qid }), 'Delete I/O SQ');
    await this.adminChecked(deleteIoQueueSqe({ opc: AdminOpcode.DELETE_IO_CQ, cid: 0, qid }), 'Delete I/O CQ');
    // Only once the controller has let go of it: a failed delete keeps the id out of use.
    this.freeQueueIds.push(qid);
  }

  /** Creates an I/O CQ and SQ with the same id; rings live in a region of their own. */
  async createQueuePair(qid: number, entries: number, options: { interruptVector?: number } = {}): Promise<QueuePair> {
    if (qid < 1 || qid > this.grantedQueuePairs) throw new RangeError(`queue id must be 1..${this.grantedQueuePairs}`);
    const count = Math.min(entries, this.cap.mqes + 1);
    const region = await this.newRegion(count * (SQE_SIZE_BYTES + CQE_SIZE_BYTES) + 8192);
    const sqRing = region.alloc(count * SQE_SIZE_BYTES);
    const cqRing = region.alloc(count * CQE_SIZE_BYTES);
    await this.createIoQueues(qid, count, sqRing.iova, cqRing.iova, options.interruptVector);
    const queue = this.newQueuePair(qid, qid, count, sqRing, cqRing);
    this.ioQueues.set(qid, queue);
    return queue;
  }

  async deleteQueuePair(queue: QueuePair): Promise<void> {
    this.ioQueues.delete(queue.sqid);
    this.pump.remove(queue);
    await this.deleteIoQueues(queue.sqid);
  }

  /** Normal shutdown (CC.SHN), then the admin queue and memory are released. */
  async shutdown(): Promise<void> {
    if (!this.lostError && this.state === 'ready') {
      this.state = 'shutdown';
      this.registers.cc = (this.registers.cc & ~(3 << 14)) | (1 << 14);
      this.transport.notify();
      try {
        await this.waitFor('shutdown', () => ((this.registers.csts >> 2) & 3) === 2);
      } finally {
        await this.release();
      }
      return;
    }
    await this.release();
  }

  private async release(): Promise<void> {
    this.pump.stop();
    for (const region of this.regions.splice(0)) {
      if (this.lostError) region.abandon();
      else await region.close().catch(() => region.abandon());
    }
  }
}
