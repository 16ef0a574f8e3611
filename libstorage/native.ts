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
