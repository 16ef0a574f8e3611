// The EmuStore test modes (docs/emulator-store.md, "Power-loss simulation and
// fault injection"): the power-loss simulation and the fault injectors, typed
// on top of the store test fixture's EmuStore.
import { StorageError } from '../../libstorage/errors.js';
import { EmuStore as BaseStore, type EmuStore, type EmuStoreOptions } from '../fixtures/store-pattern.js';

/** Member 0's metadata for pools of fewer than 508 chunks fits below this (docs/emulator-store.md, layout): a small pool's size is this plus its data chunks. */
export const SMALL_POOL_METADATA_BYTES = 2 * 1024 * 1024 + 64 * 1024;

export interface PowerLossOptions {
  /** Drives automatic cuts and which pending writes they keep. */
  seed?: number;
  /** Automatic cut right after this many member writes from open. */
  cutAfterWrites?: number;
  /** Automatic cut after a seeded random 1..N member writes. */
  cutWithinWrites?: number;
  /** Automatic cuts tear multi-block writes (default true). */
  tear?: boolean;
  /** Probability that a pending write (or one torn block of it) survives a cut (default 0.5). */
  survive?: number;
  /** Tear granularity, a power of two from 512 (default 4096). */
  tearBytes?: number;
  /** Survivors of automatic cuts land in issue order instead of a random one. */
  inOrder?: boolean;
  /** Pending bytes before the oldest write is written back (default 64 MiB). */
  cacheBytes?: number;
  /** The process exits with this code right after an automatic cut. */
  exitCode?: number;
}

export type MediaErrorKind = 'read' | 'write' | 'both';

export interface FaultOptions {
  mediaErrors?: Array<{ nsid: number; lba: number; blocks?: number; kind?: MediaErrorKind }>;
  delayUs?: number;
  delayNsid?: number;
  brokenFlush?: boolean;
}

export interface CutReport {
  seed: number;
  automatic: boolean;
  atWrite: number;
  pendingWrites: number;
  applied: number;
  torn: number;
  dropped: number;
  restoredBlocks: number;
}

/** What a cut leaves: the bare pool members, reopened by new EmuStore({ image }). */
export interface StoreImage {
  readonly kind: 'memory' | 'file' | 'block';
  readonly paths: string[];
  readonly members: number;
  readonly report: CutReport;
  readonly closed: boolean;
  close(): void;
}

export interface PowerState {
  enabled: boolean;
  cut?: boolean;
  tearBytes?: number;
  writes?: number;
  volatileWrites?: number;
  durableWrites?: number;
  syncs?: number;
  writtenBack?: number;
  pendingWrites?: number;
  pendingBytes?: number;
  dirtyBlocks?: number;
  cutAt?: number;
  lastCut?: CutReport | null;
}

export interface PowerStore extends EmuStore {
  /** inOrder: survivors land in issue order (survive 1, no tear: what a process kill leaves); otherwise in a random order. */
  cut(options?: { seed?: number; tear?: boolean; survive?: number; inOrder?: boolean }): StoreImage;
  armCut(writes: number): void;
  powerState(): PowerState;
  readonly powerLost: boolean;
  injectMediaError(nsid: number, lba: number, kind?: MediaErrorKind, blocks?: number): void;
  clearMediaErrors(nsid?: number): void;
  setCommandDelay(microseconds: number, nsid?: number): void;
  setBrokenFlush(on: boolean): void;
}

export type PowerStoreOptions =
  | (EmuStoreOptions & { powerLoss?: boolean | PowerLossOptions; faults?: FaultOptions })
  | { image: StoreImage; chunkBytes?: number; create?: boolean; powerLoss?: boolean | PowerLossOptions; faults?: FaultOptions };

export const PowerStore = BaseStore as unknown as new (options: PowerStoreOptions) => PowerStore;

/** The image a cut during an open left behind (StorageError 'EPOWERLOSS'), or undefined. */
export function imageOfFailedOpen(error: unknown): StoreImage | undefined {
  if (error instanceof StorageError && error.code === 'EPOWERLOSS') return (error as unknown as { image: StoreImage }).image;
  return undefined;
}
