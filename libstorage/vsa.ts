/**
 * Opening a VSA: bring up the VSIC's controller, find the namespace, create a
 * queue pair for this thread, and hand back a Vsa with the I/O API. Worker
 * threads get queue pairs of their own through queueHandle() / openQueue():
 * no locks are shared between threads, each drives its own rings.
 */
import { DmaRegion } from './dma.js';
import { NvmeController } from './driver/controller.js';
import { StorageError } from './errors.js';
import { VsaQueue, queueRegionLayout, type VsaGeometry } from './io/vsa-queue.js';
import { native } from './native.js';
import { PROTOCOL_VERSION, defaultSocketPath } from './control-protocol.js';
import { Channel } from './transport/channel.js';
import { EMU_BAR_BYTES } from './transport/emu/bar.js';
import { EmuTransport } from './transport/emu/emu-transport.js';
import { emuNotifier } from './transport/emu/notify.js';
import { VfioTransport, receiveVfioHandover, type VfioTarget } from './transport/vfio/vfio-transport.js';

export interface OpenOptions {
  /** Namespace to open; defaults to the only (or first) one attached to the VSIC. */
  nsid?: number;
  /** Entries of this thread's queue pair (default 256; at most 1024). */
  queueEntries?: number;
  /** Registered memory for alloc() and bounce buffers (default 16 MiB). */
  poolBytes?: number;
  /** A name for errors and logs (default `nsid-<n>`). */
  name?: string;
}

/**
 * Where the VSA is: a capability redeemed with the offpath daemon (the normal
 * door), or — for tools and tests that run an emulator directly — the path of
 * a VF socket or an already connected VF socket fd, or — for a hardware VF
 * bound to vfio-pci that this process may open itself — `{ vfio: { device } }`.
 */
export type VsaTarget = { capability: string; daemon?: string } | string | { socket: string } | { fd: number } | { vfio: VfioTarget };

/** What every worker queue handle carries: the queue pair, its memory and the VSA. */
interface QueueHandleCommon {
  regionFd: number;
  regionIova: number;
  regionBytes: number;
  sqid: number;
  entries: number;
  dstrd: number;
  interruptFd: number;
  /** Hangs up when the VSA's transport goes (closed, lost, removed). */
  lifelineFd: number;
  geometry: VsaGeometry;
}

/**
 * Everything a worker thread needs to drive its own queue pair
 * (structured-cloneable): descriptors are process-wide, so the worker maps
 * the same BAR and the same DMA memory the handle names. On `vfio` the
 * region is already in the VF's IOMMU domain (mapped by the thread that made
 * the handle); the worker's second mapping of the same memfd pages is what
 * the device reads and writes.
 */
export type QueueHandle =
  | (QueueHandleCommon & { transport: 'emu'; barFd: number; wakeFd: number })
  | (QueueHandleCommon & { transport: 'vfio'; deviceFd: number });

const DEFAULT_ENTRIES = 256;
const DEFAULT_POOL_BYTES = 16 << 20;

function checkedEntries(entries: number | undefined): number {
  const value = entries ?? DEFAULT_ENTRIES;
  if (!Number.isInteger(value) || value < 2 || value > 1024) throw new RangeError('queueEntries must be an integer in [2, 1024]');
  return value;
}

function checkedPool(bytes: number | undefined): number {
  const value = bytes ?? DEFAULT_POOL_BYTES;
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError('poolBytes must be a non-negative integer');
  return value;
}

/** A VSA opened on this thread: the I/O API plus ownership of the controller. */
export class Vsa extends VsaQueue {
  readonly nsid: number;
  /** @internal The NVMe driver under this VSA (diagnostics, the hardware test rig). */
  readonly controller: NvmeController;
  private readonly workerQueues = new Map<number, DmaRegion>();
  private closed = false;
  private session: Channel | undefined;

  /** @internal Use open(). */
  constructor(controller: NvmeController, geometry: VsaGeometry, region: DmaRegion, sqid: number, entries: number, interruptFd: number) {
    super({
      geometry,
      bar: controller.transport.bar,
      dstrd: controller.dstrd,
      notify: controller.transport.notify.bind(controller.transport),
      region,
      sqid,
      entries,
      interruptFd,
      lifelineFd: -1,
    });
    this.nsid = geometry.nsid;
    this.controller = controller;
    controller.lostListeners.push((error) => this.fail(error));
  }

  /** @internal The daemon connection this VSA was opened through (closed with it). */
  attachSession(session: Channel): void {
    this.session = session;
    // The session is the lease on the VSIC. A daemon that stops (or dies)
    // closes it before its VSIC is taken offline or its emulator exits:
    // fail on the hang-up with ECONNRESET, rather than with whatever the
    // VSIC does next (offline: CSTS.CFS, ECONTROLLERFATAL).
    session.onClose = () => {
      if (!this.closed) this.fail(new StorageError('ECONNRESET', `VSA ${this.name}: the daemon ended the session`));
    };
  }

  /** Creates a queue pair for a worker thread; pass the handle in workerData and call openQueue() there. */
  async queueHandle(options: { queueEntries?: number; poolBytes?: number } = {}): Promise<QueueHandle> {
    if (this.closed) throw new StorageError('ECLOSED', `VSA ${this.name} is closed`);
    const transport = this.controller.transport;
    if (!(transport instanceof EmuTransport) && !(transport instanceof VfioTransport)) {
      throw new StorageError('ENOTSUP', `worker queues are not supported on transport ${transport.kind}`);
    }
    const entries = checkedEntries(options.queueEntries);
    const layout = queueRegionLayout(entries, checkedPool(options.poolBytes));
    const sqid = this.controller.allocateQueueId();
    const region = await this.controller.newRegion(layout.regionBytes);
    const interrupts = await this.controller.createIoQueues(sqid, entries, region.iova + layout.sqOffset, region.iova + layout.cqOffset, sqid);
    const interruptFd = interrupts ? await transport.interruptFd(sqid) : -1;
    this.workerQueues.set(sqid, region);
    const common: QueueHandleCommon = {
      regionFd: region.fd,
      regionIova: region.iova,
      regionBytes: region.lengthBytes,
      sqid,
      entries,
      dstrd: this.controller.dstrd,
      interruptFd,
      lifelineFd: transport instanceof VfioTransport ? transport.lifelineFd : transport.handles.connectionFd,
      geometry: this.geometryOf(),
    };
    if (transport instanceof VfioTransport) return { transport: 'vfio', deviceFd: transport.deviceFd, ...common };
    const { barFd, wakeFd } = transport.handles;
    return { transport: 'emu', barFd, wakeFd, ...common };
  }

  private geometryOf(): VsaGeometry {
    return {
      name: this.name,
      nsid: this.nsid,
      blockBytes: this.blockSize,
      blocks: this.blocks,
      maxTransferBytes: this.controller.identity.maxTransferBytes,
      sgl: this.controller.identity.sglSupported,
    };
  }

  /** Waits for in-flight I/O, deletes the queues, shuts the controller down (CC.SHN). */
  override async close(timeoutMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await super.close(timeoutMs);
    try {
      if (this.failed) {
        // Revoked, deleted or gone: the controller will not answer; release without it.
        this.controller.markLost(this.failed, 0xfffe);
      } else {
        for (const sqid of this.workerQueues.keys()) await this.controller.deleteIoQueues(sqid);
        await this.controller.deleteIoQueues(this.queue.sqid);
      }
      await this.controller.shutdown();
    } finally {
      this.workerQueues.clear();
      this.controller.transport.close();
      this.session?.close();
    }
  }
}

/**
 * Opens a VSA through its VSIC. Until the control plane hands out
 * capabilities, the target is an emulator VF socket (or a connected fd).
 */
export async function open(target: VsaTarget, options: OpenOptions = {}): Promise<Vsa> {
  if (typeof target === 'object' && target !== null && 'capability' in target) return openWithCapability(target, options);
  if (typeof target === 'object' && target !== null && 'vfio' in target) return openOnTransport(VfioTransport.open(target.vfio), options);
  return openVsic(target, options);
}

/**
 * Redeems a capability: the daemon checks it (and our uid), binds the VSA to
 * a VSIC and passes us the VSIC's connection. The daemon connection stays
 * open as the session: closing it releases the VSIC, and a revocation
 * arrives on it.
 */
async function openWithCapability(target: { capability: string; daemon?: string }, options: OpenOptions): Promise<Vsa> {
  if (typeof target.capability !== 'string') throw new TypeError('capability must be a string');
  const session = Channel.connect(target.daemon ?? defaultSocketPath());
  try {
    const reply = await session.request({ v: PROTOCOL_VERSION, id: 1, method: 'open', params: { capability: target.capability } });
    const fd = reply.fds[0];
    if (fd === undefined) throw new StorageError('EPROTO', 'the daemon sent no VSIC');
    const result = reply.body.result as { vsa: string; nsid: number; transport?: 'emu' | 'vfio' };
    const vsicOptions = { ...options, nsid: result.nsid, name: options.name ?? result.vsa };
    // A hardware VSIC arrives as a socket holding its VFIO descriptors.
    const vsa =
      result.transport === 'vfio'
        ? await openOnTransport(VfioTransport.open(receiveVfioHandover(fd)), vsicOptions)
        : await openVsic({ fd }, vsicOptions);
    session.onMessage = (message) => {
      const event = message.body.event;
      if (event === 'revoked') vsa.fail(new StorageError('CAP_REVOKED', `VSA ${vsa.name}: the capability was revoked`));
      else if (event === 'deleted') vsa.fail(new StorageError('VSA_DELETED', `VSA ${vsa.name} was deleted`));
      else if (event === 'expired') vsa.fail(new StorageError('CAP_EXPIRED', `VSA ${vsa.name}: the capability expired`));
    };
    session.unref();
    vsa.attachSession(session);
    return vsa;
  } catch (error) {
    session.close();
    throw error;
  }
}

async function openVsic(target: string | { socket: string } | { fd: number }, options: OpenOptions): Promise<Vsa> {
  checkedEntries(options.queueEntries);
  checkedPool(options.poolBytes);
  const endpoint = typeof target === 'string' ? target : 'socket' in target ? target.socket : target.fd;
  if (typeof endpoint !== 'string' && !Number.isInteger(endpoint)) throw new TypeError('target must be a socket path or { fd }');
  return openOnTransport(await EmuTransport.connect(endpoint), options);
}

/** Brings up the VSIC's controller over a connected transport and opens the VSA on it. */
async function openOnTransport(transport: EmuTransport | VfioTransport, options: OpenOptions): Promise<Vsa> {
  let entries: number;
  let poolBytes: number;
  try {
    entries = checkedEntries(options.queueEntries);
    poolBytes = checkedPool(options.poolBytes);
  } catch (error) {
    transport.close();
    throw error;
  }
  let controller: NvmeController | undefined;
  try {
    controller = await NvmeController.bringUp(transport, { ioQueuePairs: 64 });
    const active = await controller.activeNamespaces();
    const nsid = options.nsid ?? active[0];
    if (nsid === undefined || !active.includes(nsid)) {
      throw new StorageError('ENOENT', nsid === undefined ? 'no VSA is attached to this VSIC' : `VSA nsid ${nsid} is not attached to this VSIC`);
    }
    const ns = await controller.identifyNamespace(nsid);
    const geometry: VsaGeometry = {
      name: options.name ?? `nsid-${nsid}`,
      nsid,
      blockBytes: ns.blockSizeBytes,
      blocks: Number(ns.nsze),
      maxTransferBytes: controller.identity.maxTransferBytes,
      sgl: controller.identity.sglSupported,
    };
    const layout = queueRegionLayout(entries, poolBytes);
    const sqid = controller.allocateQueueId();
    const region = await controller.newRegion(layout.regionBytes);
    const interrupts = await controller.createIoQueues(sqid, entries, region.iova + layout.sqOffset, region.iova + layout.cqOffset, sqid);
    const interruptFd = interrupts ? await transport.interruptFd(sqid) : -1;
    transport.setActive(false);
    return new Vsa(controller, geometry, region, sqid, entries, interruptFd);
  } catch (error) {
    if (controller) await controller.shutdown().catch(() => {});
    transport.close();
    throw error;
  }
}

/**
 * In a worker thread: the I/O API over the queue pair a handle describes.
 * The queue takes descriptors of its own (dup), so the thread that made the
 * handle may close its copies without pulling them from under this one.
 */
export function openQueue(handle: QueueHandle): VsaQueue {
  if (handle?.transport !== 'emu' && handle?.transport !== 'vfio') throw new TypeError('not a queue handle');
  // Only the BAR and its doorbell notice differ. The lifeline hangs up when
  // the VSA's transport closes (emu: the VF connection; vfio: the VSA
  // closed or the device is being removed). A VF taken offline under a vfio
  // queue (revocation) reports CSTS.CFS, which the health check turns into
  // ECONTROLLERFATAL.
  let bar: ArrayBuffer;
  let notify: () => void;
  const ownedFds: number[] = [];
  if (handle.transport === 'vfio') {
    bar = native.vfioMmapRegion(handle.deviceFd, native.vfioConstants.PCI_BAR0_REGION_INDEX);
    notify = () => {};
  } else {
    bar = native.mmap(handle.barFd, EMU_BAR_BYTES);
    const wakeFd = native.dupFd(handle.wakeFd);
    ownedFds.push(wakeFd);
    notify = emuNotifier(bar, wakeFd);
  }
  const region = DmaRegion.adopt(handle.regionFd, handle.regionIova, handle.regionBytes);
  const lifelineFd = native.dupFd(handle.lifelineFd);
  const interruptFd = handle.interruptFd >= 0 ? native.dupFd(handle.interruptFd) : -1;
  ownedFds.push(lifelineFd);
  if (interruptFd >= 0) ownedFds.push(interruptFd);
  return new VsaQueue({
    geometry: handle.geometry,
    bar,
    dstrd: handle.dstrd,
    notify,
    region,
    sqid: handle.sqid,
    entries: handle.entries,
    interruptFd,
    lifelineFd,
    ownedFds,
    release: () => {
      region.abandon();
      native.munmap(bar);
    },
  });
}
