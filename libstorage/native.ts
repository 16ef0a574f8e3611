/**
 * The native addon, loaded once per thread, with the types of what it exports.
 * Built by `npm install` (cmake-js) into build/addon/Release/offpath.node.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StorageError } from './errors.js';

export interface MmapOptions {
  writable?: boolean;
  /** Fault every page in now (MAP_POPULATE). */
  populate?: boolean;
  /** Keep the pages resident (MAP_LOCKED). */
  lock?: boolean;
}

export interface DmaAllocation {
  /** The sealed memfd behind the region, to register it with a controller. */
  fd: number;
  buffer: ArrayBuffer;
  lengthBytes: number;
  hugepage: boolean;
  locked: boolean;
}

export interface ReceivedMessage {
  /** Empty when the peer closed the connection. */
  data: Buffer;
  fds: number[];
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** Readiness bits for FdWatcher and pollFd. */
export const READABLE = 1;
export const WRITABLE = 2;
/** The peer hung up (for watching a socket another thread reads). */
export const DISCONNECT = 4;

export interface FdWatcher {
  start(events?: number): void;
  stop(): void;
  close(): void;
  ref(): void;
  unref(): void;
}

type Bytes = ArrayBuffer | ArrayBufferView;

export interface VfioDeviceInfo {
  flags: number;
  pci: boolean;
  reset: boolean;
  regions: number;
  irqs: number;
}

export interface VfioRegionInfo {
  index: number;
  flags: number;
  size: number;
  /** Where the region starts in the device fd's file offsets. */
  offset: number;
  read: boolean;
  write: boolean;
  mmap: boolean;
}

export interface VfioIommuInfo {
  flags: number;
  /** Bitmap of the IOMMU page sizes. */
  pageSizes: bigint;
  /** Usable IOVA ranges, inclusive; null on kernels without the capability. */
  iovaRanges: Array<{ start: bigint; end: bigint }> | null;
  /** DMA mappings still allowed (vfio_iommu_type1 dma_entry_limit), when reported. */
  dmaAvailable: number | null;
}

export interface NativeAddon {
  setErrorClass(ctor: typeof StorageError): void;

  memfdCreate(name: string, options?: { cloexec?: boolean; allowSealing?: boolean; hugetlb?: boolean }): number;
  ftruncate(fd: number, lengthBytes: number): void;
  fileSize(fd: number): number;
  addSeals(fd: number, seals: number): void;
  getSeals(fd: number): number;
  mmap(fd: number, lengthBytes: number, offsetBytes?: number, options?: MmapOptions): ArrayBuffer;
  munmap(buffer: ArrayBuffer): void;
  isMapped(buffer: ArrayBuffer): boolean;
  mappingConstants: {
    F_SEAL_SEAL: number;
    F_SEAL_SHRINK: number;
    F_SEAL_GROW: number;
    F_SEAL_WRITE: number;
    PAGE_SIZE: number;
  };

  dmaAlloc(lengthBytes: number, options?: { hugepage?: 'none' | 'prefer' | 'require'; lock?: boolean }): DmaAllocation;

  FdWatcher: new (fd: number, callback: (error: Error | null, events: number) => void) => FdWatcher;
  pollFd(fd: number, events: number, timeoutMs?: number): number;

  eventfdCreate(initial?: number, options?: { semaphore?: boolean }): number;
  eventfdSignal(fd: number, count?: number): boolean;
  eventfdRead(fd: number): number;

  seqpacketListen(path: string, options?: { backlog?: number; mode?: number }): number;
  seqpacketConnect(path: string): number;
  seqpacketPair(): [number, number];
  seqpacketAccept(listenFd: number): number | null;
  seqpacketSend(fd: number, data: Bytes, fds?: number[]): number | null;
  seqpacketRecv(fd: number, maxBytes?: number): ReceivedMessage | null;
  peerCredentials(fd: number): PeerCredentials;
  closeFd(fd: number): void;
  dupFd(fd: number): number;

  store32Release(buffer: Bytes, byteOffset: number, value: number): void;
  store32Fenced(buffer: Bytes, byteOffset: number, value: number): void;
  load32Acquire(buffer: Bytes, byteOffset: number): number;
  fence(): void;

  specLayout: Record<string, number>;

  // VFIO (addon/src/vfio.cc): a PCI function driven from user space.
  vfioOpenContainer(path?: string): number;
  vfioOpenGroup(path: string): number;
  vfioGroupStatus(groupFd: number): { viable: boolean; containerSet: boolean };
  vfioGroupSetContainer(groupFd: number, containerFd: number): void;
  vfioSetIommu(containerFd: number, type?: number): void;
  vfioGetDeviceFd(groupFd: number, address: string): number;
  vfioDeviceInfo(deviceFd: number): VfioDeviceInfo;
  vfioRegionInfo(deviceFd: number, index: number): VfioRegionInfo;
  vfioMmapRegion(deviceFd: number, index: number, lengthBytes?: number): ArrayBuffer;
  vfioRegionRead(deviceFd: number, index: number, offset: number, lengthBytes: number): Buffer;
  vfioRegionWrite(deviceFd: number, index: number, offset: number, bytes: Bytes): void;
  vfioIommuInfo(containerFd: number): VfioIommuInfo;
  vfioMapDma(containerFd: number, buffer: Bytes, iova: number, access?: { read?: boolean; write?: boolean }): void;
  vfioUnmapDma(containerFd: number, iova: number, lengthBytes: number): number;
  vfioIrqInfo(deviceFd: number, index: number): { flags: number; count: number; eventfd: boolean };
  vfioSetIrqs(deviceFd: number, index: number, start: number, fds: number[] | null): void;
  vfioDeviceReset(deviceFd: number): void;
  /** NVMe admin pass-through on /dev/nvmeN (addon/src/nvme_admin.cc); status16 as in CQEs, phase bit clear. */
  nvmeAdminCommand(fd: number, sqe: Uint8Array, data?: Uint8Array, options?: { timeoutMs?: number }): Promise<{ status16: number; dw0: number }>;
  vfioConstants: {
    API_VERSION: number;
    TYPE1v2_IOMMU: number;
    PCI_BAR0_REGION_INDEX: number;
    PCI_CONFIG_REGION_INDEX: number;
    PCI_INTX_IRQ_INDEX: number;
    PCI_MSI_IRQ_INDEX: number;
    PCI_MSIX_IRQ_INDEX: number;
    PCI_REQ_IRQ_INDEX: number;
  };

  // Further exports are typed by the modules that use them.
  [name: string]: unknown;
}

/** The package root: the nearest folder above this module holding offpath's package.json. */
export function packageRoot(): string {
  let folder = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(folder, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'offpath') return folder;
    const parent = dirname(folder);
    if (parent === folder) throw new Error('offpath: cannot find the package root');
    folder = parent;
  }
}

function load(): NativeAddon {
  const path = join(packageRoot(), 'build', 'addon', 'Release', 'offpath.node');
  if (!existsSync(path)) {
    throw new StorageError('ENOADDON', `offpath: the native addon is not built (${path} is missing); run npm install`);
  }
  const addon = createRequire(import.meta.url)(path) as NativeAddon;
  addon.setErrorClass(StorageError);
  return addon;
}

export const native: NativeAddon = load();
