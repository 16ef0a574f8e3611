/**
 * The three I/O helpers a shard uses on its own queue pair:
 *
 * - BufferPool: registered (DMA) buffers recycled per size, so the hot path
 *   never allocates registered memory; falls back to ordinary memory (which
 *   the library bounces) when the queue's pool is exhausted.
 * - Committer: group commit. `sync()` resolves once a Flush issued after the
 *   call has completed, and at most one Flush is in flight, so every message
 *   whose write completed while a Flush ran shares the next one.
 * - BlockWriter: writes of the block that holds an entry header. At most one
 *   write per block is in flight (NVMe does not order concurrent writes to
 *   the same LBA); changes made meanwhile are coalesced into the next write.
 *   Each write goes out from a private snapshot of the block, so the memory
 *   the controller reads never changes under it.
 */
import type { VsaQueue } from '../../libstorage/index.js';

export type Durability = 'flush' | 'fua';

export class BufferPool {
  private readonly free = new Map<number, Uint8Array[]>();
  /** Buffers handed out in ordinary memory because registered memory ran out. */
  fallbacks = 0;

  constructor(private readonly io: VsaQueue) {}

  /** A buffer of exactly `bytes` (a multiple of 4096 for registered memory), contents undefined. */
  take(bytes: number): Uint8Array {
    const stack = this.free.get(bytes);
    const reused = stack?.pop();
    if (reused) return reused;
    try {
      return this.io.alloc(bytes);
    } catch {
      this.fallbacks++;
      return new Uint8Array(bytes);
    }
  }

  give(buffer: Uint8Array): void {
    let stack = this.free.get(buffer.length);
    if (!stack) this.free.set(buffer.length, (stack = []));
    stack.push(buffer);
  }
}

type Settle = (error: Error | null) => void;

export class Committer {
  private inflight = false;
  private waiting: Settle[] = [];
  flushes = 0;
  /** Callers served by those flushes (flushes / synced = how well commits group). */
  synced = 0;

  constructor(
    private readonly io: VsaQueue,
    readonly durability: Durability,
  ) {}

  /** Everything whose write completed before this call is durable when the Promise resolves. */
  sync(): Promise<void> {
    if (this.durability === 'fua') return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiting.push((error) => (error ? reject(error) : resolve()));
      if (!this.inflight) this.start();
    });
  }

  get idle(): boolean {
    return !this.inflight && this.waiting.length === 0;
  }

  private start(): void {
    const batch = this.waiting;
    this.waiting = [];
    this.inflight = true;
    this.flushes++;
    this.synced += batch.length;
    const done = (error: Error | null) => {
      this.inflight = false;
      for (const settle of batch) settle(error);
      if (this.waiting.length > 0) this.start();
    };
    let flush: Promise<void>;
    try {
      flush = this.io.flush();
    } catch (error) {
      queueMicrotask(() => done(error as Error));
      return;
    }
    flush.then(
      () => done(null),
      (error: Error) => done(error),
    );
  }
}

interface BlockState {
  offset: number;
  /** The current image of the block (read when a write is issued). */
  source: Uint8Array;
  inflight: Settle[];
  /** Waiters for the next write (changes made while one was in flight). */
  next: Settle[] | null;
}

export class BlockWriter {
  private readonly blocks = new Map<number, BlockState>();
  writes = 0;

  constructor(
    private readonly io: VsaQueue,
    private readonly pool: BufferPool,
    private readonly fua: boolean,
  ) {}

  /**
   * Writes the block at `offset` with the contents `source` has when the
   * write is issued (now, or after the write in flight completes). Resolves
   * when a write containing the caller's change has completed.
   */
  write(offset: number, source: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      const settle: Settle = (error) => (error ? reject(error) : resolve());
      const state = this.blocks.get(offset);
      if (state === undefined) {
        const fresh: BlockState = { offset, source, inflight: [settle], next: null };
        this.blocks.set(offset, fresh);
        this.issue(fresh);
      } else {
        state.source = source;
        (state.next ??= []).push(settle);
      }
    });
  }

  get idle(): boolean {
    return this.blocks.size === 0;
  }

  private issue(state: BlockState): void {
    const snapshot = this.pool.take(state.source.length);
    snapshot.set(state.source);
    this.writes++;
    const done = (error: Error | null) => {
      this.pool.give(snapshot);
      const settled = state.inflight;
      if (state.next !== null) {
        state.inflight = state.next;
        state.next = null;
        this.issue(state);
      } else {
        this.blocks.delete(state.offset);
      }
      for (const settle of settled) settle(error);
    };
    try {
      this.io.writeCallback(state.offset, snapshot, done, { fua: this.fua });
    } catch (error) {
      queueMicrotask(() => done(error as Error));
    }
  }
}

/** Resolves when `check()` is true, polling every few milliseconds (used while closing). */
export async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return true;
}
