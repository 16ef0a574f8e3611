/**
 * Transport `vfio`: a hardware controller (an SR-IOV NVMe VF, or any NVMe
 * function) bound to vfio-pci and driven from this process. BAR0 is mapped
 * into JS, so doorbells and registers are plain 32-bit stores and loads the
 * device sees by itself (notify() has nothing to do); DMA memory is pinned and
 * mapped into the container's IOMMU domain at IOVAs chosen here; completion
 * interrupts are MSI-X vectors signalled on eventfds.
 *
 * Two ways in: `{ device }` (optionally `{ group }`) opens the IOMMU group and
 * a container of its own, which needs access to /dev/vfio/*; or `{ deviceFd,
 * containerFd }` adopts descriptors a privileged process already set up
 * (container with its IOMMU set, group attached) and passed over a socket.
 * Either way the transport owns the descriptors from then on: close() (or
 * process exit) closes the device fd, and vfio-pci resets the function.
 */
import { readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { StorageError } from '../../errors.js';
import { native, READABLE, type DmaAllocation, type FdWatcher } from '../../native.js';
import type { Transport } from '../transport.js';
import { IOVA_PAGE_BYTES, IovaAllocator } from './iova.js';

/** PCI command register: memory space and bus master enable. */
const PCI_COMMAND_OFFSET = 0x04;
const PCI_COMMAND_MEMORY = 0x2;
const PCI_COMMAND_MASTER = 0x4;
const HUGEPAGE_BYTES = 2 << 20;
/** NVMe registers and doorbells need at least this much of BAR0. */
const MIN_BAR_BYTES = 0x2000;

/** Opens the VF itself. `group` defaults to the device's IOMMU group from sysfs. */
export interface VfioDeviceTarget {
  /** PCI address, e.g. '0000:01:00.1'. */
  device: string;
  /** '/dev/vfio/<n>' or the group number. */
  group?: string | number;
  /** Default '/dev/vfio/vfio'. */
  container?: string;
}

/** Descriptors handed over by a privileged process (the transport takes ownership). */
export interface VfioHandover {
  deviceFd: number;
  containerFd: number;
  /** Kept open with the device when given (closing it is harmless otherwise). */
  groupFd?: number;
  /** For messages only. */
  device?: string;
}

export type VfioTarget = VfioDeviceTarget | VfioHandover;

/** The /dev/vfio/<n> group device of a PCI function, from sysfs. */
export function vfioGroupPath(address: string): string {
  let link: string;
  try {
    link = readlinkSync(`/sys/bus/pci/devices/${address}/iommu_group`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'ENOENT';
    throw new StorageError(code, `${address}: no IOMMU group (is the IOMMU on, e.g. intel_iommu=on, and the address right?)`, { cause: error });
  }
  return `/dev/vfio/${basename(link)}`;
}

/**
 * Reads the one message a control plane queued on `socketFd` (a JSON body
 * with `device`, and the device, container and group descriptors, in that
 * order) and closes the socket: the VSIC as VFIO descriptors, ready for
 * VfioTransport.open().
 */
export function receiveVfioHandover(socketFd: number): VfioHandover {
  try {
    const message = native.seqpacketRecv(socketFd);
    if (!message || message.data.length === 0) throw new StorageError('EPROTO', 'no VFIO handover message on the VSIC socket');
    const [deviceFd, containerFd, groupFd] = message.fds;
    if (deviceFd === undefined || containerFd === undefined) {
      for (const fd of message.fds) native.closeFd(fd);
      throw new StorageError('EPROTO', 'the VFIO handover carried no device and container descriptors');
    }
    let device: string | undefined;
    try {
      device = (JSON.parse(message.data.toString('utf8')) as { device?: string }).device;
    } catch {}
    return { deviceFd, containerFd, ...(groupFd !== undefined ? { groupFd } : {}), ...(device ? { device } : {}) };
  } finally {
    native.closeFd(socketFd);
  }
}

function groupPathOf(group: string | number | undefined, device: string): string {
  if (group === undefined) return vfioGroupPath(device);
  if (typeof group === 'number') return `/dev/vfio/${group}`;
  return /^\d+$/.test(group) ? `/dev/vfio/${group}` : group;
}

export class VfioTransport implements Transport {
  readonly kind = 'vfio';
  readonly bar: ArrayBuffer;
  /** PCI address, when known. */
  readonly device: string;
  readonly deviceFd: number;
  readonly containerFd: number;
  private readonly groupFd: number;
  readonly iova: IovaAllocator;
  private readonly mappings = new Map<number, number>(); // iova -> bytes
  private readonly interruptFds = new Map<number, number>();
  private msixVectors = 0;
  private closed = false;
  /** The device-request eventfd: vfio-pci signals it when the host wants the device back (removal, unbind). */
  private requestFd = -1;
  private requestWatcher: FdWatcher | undefined;
  /** Worker queues' lifeline: they hold the other end, which hangs up when this transport closes. */
  private lifeline: [number, number] | undefined;
  onLost: ((error?: StorageError) => void) | undefined;

  private constructor(deviceFd: number, containerFd: number, groupFd: number, device: string) {
    this.deviceFd = deviceFd;
    this.containerFd = containerFd;
    this.groupFd = groupFd;
    this.device = device;
    const { PCI_BAR0_REGION_INDEX, PCI_CONFIG_REGION_INDEX } = native.vfioConstants;
    const info = native.vfioDeviceInfo(deviceFd);
    if (!info.pci) throw new StorageError('ENODEV', `${device}: not a PCI device`);
    const bar0 = native.vfioRegionInfo(deviceFd, PCI_BAR0_REGION_INDEX);
    if (bar0.size < MIN_BAR_BYTES) throw new StorageError('ENODEV', `${device}: BAR0 is ${bar0.size} bytes; not an NVMe controller`);
    if (!bar0.mmap) throw new StorageError('ENOTSUP', `${device}: BAR0 cannot be mapped (vfio-pci refuses mmap of this BAR)`);
    // Bus Master Enable: vfio-pci sets memory enable only; without bus
    // mastering the controller goes ready but never fetches a command.
    const command = native.vfioRegionRead(deviceFd, PCI_CONFIG_REGION_INDEX, PCI_COMMAND_OFFSET, 2).readUInt16LE(0);
    const wanted = command | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    if (wanted !== command) {
      const bytes = Buffer.alloc(2);
      bytes.writeUInt16LE(wanted, 0);
      native.vfioRegionWrite(deviceFd, PCI_CONFIG_REGION_INDEX, PCI_COMMAND_OFFSET, bytes);
    }
    const iommu = native.vfioIommuInfo(containerFd);
    // Kernels before 5.4 do not report ranges: assume the common 39-bit space minus the x86 MSI window.
    this.iova = new IovaAllocator(
      iommu.iovaRanges ?? [
        { start: 0n, end: 0xfedfffffn },
        { start: 0xfef00000n, end: 0x7f_ffff_ffffn },
      ],
    );
    this.enableMsix();
    this.bar = native.vfioMmapRegion(deviceFd, PCI_BAR0_REGION_INDEX);
    this.watchDeviceRequests();
  }

  /**
   * Surprise removal the VFIO way: when the host removes or unbinds the VF,
   * vfio-pci signals the device-request eventfd and waits for user space to
   * let go. Everything outstanding fails with ENODEV and the device is
   * released at once (BAR unmapped, DMA unmapped, descriptors closed), so the
   * removal can complete; worker queues see their lifeline hang up.
   */
  private watchDeviceRequests(): void {
    const { PCI_REQ_IRQ_INDEX } = native.vfioConstants;
    const irq = native.vfioIrqInfo(this.deviceFd, PCI_REQ_IRQ_INDEX);
    if (irq.count === 0 || !irq.eventfd) return;
    const fd = native.eventfdCreate();
    try {
      native.vfioSetIrqs(this.deviceFd, PCI_REQ_IRQ_INDEX, 0, [fd]);
    } catch {
      native.closeFd(fd);
      return; // an older vfio-pci: no notice, removal waits for close()
    }
    this.requestFd = fd;
    this.requestWatcher = new native.FdWatcher(fd, () => this.deviceRequested());
    this.requestWatcher.start(READABLE);
    // Waiting for a removal notice is no reason to keep the process alive.
    this.requestWatcher.unref();
  }

  private deviceRequested(): void {
    native.eventfdRead(this.requestFd);
    if (this.closed) return;
    const lost = new StorageError('ENODEV', `${this.device}: the host is taking the device back (removal or unbind); it was released`);
    try {
      this.onLost?.(lost);
    } finally {
      this.close();
    }
  }

  /** A descriptor that hangs up when this transport closes (for worker queues on other threads). */
  get lifelineFd(): number {
    this.checkOpen();
    this.lifeline ??= native.seqpacketPair();
    return this.lifeline[1];
  }

  /**
   * MSI-X on, every vector of the table allocated, none wired to an eventfd
   * yet. It must be on before I/O CQs are created: a controller may refuse
   * a non-zero interrupt vector while MSI-X is off (QEMU's does, with Invalid
   * Interrupt Vector), and before Linux 6.5 the vector count cannot grow
   * once MSI-X is enabled.
   */
  private enableMsix(): void {
    const { PCI_MSIX_IRQ_INDEX } = native.vfioConstants;
    const irq = native.vfioIrqInfo(this.deviceFd, PCI_MSIX_IRQ_INDEX);
    if (irq.count === 0 || !irq.eventfd) return; // polled only
    native.vfioSetIrqs(this.deviceFd, PCI_MSIX_IRQ_INDEX, 0, new Array<number>(irq.count).fill(-1));
    this.msixVectors = irq.count;
  }

  /** Opens a VF bound to vfio-pci, or adopts handed-over descriptors. */
  static open(target: VfioTarget): VfioTransport {
    if ('deviceFd' in target) {
      try {
        return new VfioTransport(target.deviceFd, target.containerFd, target.groupFd ?? -1, target.device ?? `fd ${target.deviceFd}`);
      } catch (error) {
        for (const fd of [target.deviceFd, target.containerFd, target.groupFd ?? -1]) if (fd >= 0) native.closeFd(fd);
        throw error;
      }
    }
    if (typeof target?.device !== 'string') throw new TypeError('target must be { device, group? } or { deviceFd, containerFd }');
    const opened: number[] = [];
    try {
      const groupPath = groupPathOf(target.group, target.device);
      const containerFd = native.vfioOpenContainer(target.container);
      opened.push(containerFd);
      const groupFd = native.vfioOpenGroup(groupPath);
      opened.push(groupFd);
      native.vfioGroupSetContainer(groupFd, containerFd);
      native.vfioSetIommu(containerFd);
      const deviceFd = native.vfioGetDeviceFd(groupFd, target.device);
      opened.push(deviceFd);
      return new VfioTransport(deviceFd, containerFd, groupFd, target.device);
    } catch (error) {
      for (const fd of opened.reverse()) native.closeFd(fd);
      throw error;
    }
  }

  async mapDma(region: DmaAllocation): Promise<number> {
    this.checkOpen();
    const bytes = region.lengthBytes;
    const iova = this.iova.allocate(bytes, region.hugepage && bytes >= HUGEPAGE_BYTES ? HUGEPAGE_BYTES : IOVA_PAGE_BYTES);
    try {
      native.vfioMapDma(this.containerFd, region.buffer, iova);
    } catch (error) {
      this.iova.release(iova, bytes);
      throw error;
    }
    this.mappings.set(iova, bytes);
    return iova;
  }

  async unmapDma(iova: number): Promise<void> {
    const bytes = this.mappings.get(iova);
    if (bytes === undefined || this.closed) return;
    this.mappings.delete(iova);
    native.vfioUnmapDma(this.containerFd, iova, bytes);
    this.iova.release(iova, bytes);
  }

  /** The eventfd MSI-X vector `vector` signals (MSI-X was enabled at open). */
  async interruptFd(vector: number): Promise<number> {
    this.checkOpen();
    const existing = this.interruptFds.get(vector);
    if (existing !== undefined) return existing;
    if (this.msixVectors === 0) throw new StorageError('ENOTSUP', `${this.device}: no MSI-X vectors`);
    if (!Number.isInteger(vector) || vector < 0 || vector >= this.msixVectors) {
      throw new StorageError('EINVAL', `${this.device}: interrupt vector ${vector} is outside its ${this.msixVectors} MSI-X vectors`);
    }
    const fd = native.eventfdCreate();
    try {
      native.vfioSetIrqs(this.deviceFd, native.vfioConstants.PCI_MSIX_IRQ_INDEX, vector, [fd]);
    } catch (error) {
      native.closeFd(fd);
      throw error;
    }
    this.interruptFds.set(vector, fd);
    return fd;
  }

  /** Doorbells are MMIO stores the device sees itself. */
  notify(): void {}

  /** Function-level reset (vfio-pci does one on close as well). */
  reset(): void {
    this.checkOpen();
    native.vfioDeviceReset(this.deviceFd);
  }

  /** Nothing here keeps the event loop alive (no socket): a no-op, for symmetry with EmuTransport. */
  setActive(_active: boolean): void {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.msixVectors > 0) {
      try {
        native.vfioSetIrqs(this.deviceFd, native.vfioConstants.PCI_MSIX_IRQ_INDEX, 0, null);
      } catch {
        // The device fd goes next; vfio-pci tears MSI-X down with it.
      }
    }
    for (const fd of this.interruptFds.values()) native.closeFd(fd);
    this.interruptFds.clear();
    this.requestWatcher?.close();
    if (this.requestFd >= 0) native.closeFd(this.requestFd);
    this.requestFd = -1;
    if (this.lifeline) for (const fd of this.lifeline) native.closeFd(fd);
    this.lifeline = undefined;
    for (const [iova, bytes] of this.mappings) {
      try {
        native.vfioUnmapDma(this.containerFd, iova, bytes);
      } catch {}
    }
    this.mappings.clear();
    native.munmap(this.bar);
    native.closeFd(this.deviceFd);
    if (this.groupFd >= 0) native.closeFd(this.groupFd);
    native.closeFd(this.containerFd);
  }

  private checkOpen(): void {
    if (this.closed) throw new StorageError('ECLOSED', `VFIO device ${this.device} is closed`);
  }
}
