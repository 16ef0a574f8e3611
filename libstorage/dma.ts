/**
 * DMA memory: regions of sealed, page-aligned shared memory registered with a
 * controller (its IOVA space), carved into page-granular allocations for
 * queue rings, PRP lists and I/O buffers.
 */
import { StorageError } from './errors.js';
import { native, type DmaAllocation } from './native.js';
import type { Transport } from './transport/transport.js';

export const DMA_PAGE_BYTES = 4096;

/** A piece of registered memory: its bytes and the address the controller uses. */
export interface DmaBuffer {
  readonly bytes: Uint8Array;
  readonly iova: number;
}

export class DmaRegion {
  readonly iova: number;
  readonly lengthBytes: number;
  readonly bytes: Uint8Array;
  private readonly allocation: DmaAllocation;
  // Undefined for a region adopted from another thread: registered there.
  private readonly transport: Transport | undefined;
  // Free page runs as [firstPage, pageCount], kept sorted and coalesced.
  private free: Array<[number, number]>;
  private released = false;

  private constructor(transport: Transport | undefined, allocation: DmaAllocation, iova: number) {
    this.transport = transport;
    this.allocation = allocation;
    this.iova = iova;
    this.lengthBytes = allocation.lengthBytes;
    this.bytes = new Uint8Array(allocation.buffer);
    this.free = [[0, this.lengthBytes / DMA_PAGE_BYTES]];
  }

  static async create(transport: Transport, lengthBytes: number, hugepage: 'none' | 'prefer' = 'prefer'): Promise<DmaRegion> {
    const allocation = native.dmaAlloc(lengthBytes, { hugepage });
    try {
      const iova = await transport.mapDma(allocation);
      return new DmaRegion(transport, allocation, iova);
    } catch (error) {
      native.munmap(allocation.buffer);
      native.closeFd(allocation.fd);
      throw error;
    }
  }

  /**
   * A region another thread allocated and registered (fd and IOVA handed
   * over): mapped here, never registered or unregistered from here.
   */
  static adopt(fd: number, iova: number, lengthBytes: number): DmaRegion {
    const buffer = native.mmap(fd, lengthBytes);
    return new DmaRegion(undefined, { fd, buffer, lengthBytes, hugepage: false, locked: false }, iova);
  }

  /** The sealed memfd behind the region (to hand it to another thread). */
  get fd(): number {
    return this.allocation.fd;
  }

  /** The ArrayBuffer every view of this region shares. */
  get buffer(): ArrayBuffer {
    return this.allocation.buffer;
  }

  /** Whole pages, zeroed, page aligned. Throws ENOMEM when the region is full. */
  alloc(lengthBytes: number): DmaBuffer {
    const pages = Math.ceil(lengthBytes / DMA_PAGE_BYTES);
    const index = this.free.findIndex(([, count]) => count >= pages);
    if (index < 0) throw new StorageError('ENOMEM', `DMA region full: no ${pages} contiguous free pages`);
    const run = this.free[index]!;
    const first = run[0];
    if (run[1] === pages) this.free.splice(index, 1);
    else this.free[index] = [first + pages, run[1] - pages];
    const offset = first * DMA_PAGE_BYTES;
    const bytes = this.bytes.subarray(offset, offset + pages * DMA_PAGE_BYTES);
    bytes.fill(0);
    return { bytes: bytes.subarray(0, lengthBytes), iova: this.iova + offset };
  }

  release(buffer: DmaBuffer): void {
    const first = (buffer.iova - this.iova) / DMA_PAGE_BYTES;
    const pages = Math.ceil(buffer.bytes.length / DMA_PAGE_BYTES);
    this.free.push([first, pages]);
    this.free.sort((a, b) => a[0] - b[0]);
    const merged: Array<[number, number]> = [];
    for (const run of this.free) {
      const last = merged[merged.length - 1];
      if (last && last[0] + last[1] === run[0]) last[1] += run[1];
      else merged.push([run[0], run[1]]);
    }
    this.free = merged;
  }

  /** Byte offset inside this region of an IOVA, or -1. */
  offsetOf(iova: number): number {
    const offset = iova - this.iova;
    return offset >= 0 && offset < this.lengthBytes ? offset : -1;
  }

  async close(): Promise<void> {
    if (this.released) return;
    try {
      if (this.transport) await this.transport.unmapDma(this.iova);
    } finally {
      this.abandon();
    }
  }

  /**
   * Drops this thread's mapping without telling the controller (it is gone
   * or reset, or the region belongs to another thread). An adopted region
   * leaves the fd to its owner.
   */
  abandon(): void {
    if (this.released) return;
    this.released = true;
    native.munmap(this.allocation.buffer);
    if (this.transport) native.closeFd(this.allocation.fd);
  }
}
