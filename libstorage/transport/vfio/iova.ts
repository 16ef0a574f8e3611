/**
 * IOVA space of one VFIO container: first-fit over the ranges the IOMMU
 * reports as usable (VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE). Those exclude the
 * MSI window and end at the IOMMU's address width (39 bits on many Intel
 * IOMMUs), so "IOVA = virtual address" does not work and addresses are
 * handed out here. Every allocation is followed by one unmapped guard page,
 * so a device overrun faults instead of landing in the next region.
 */
import { StorageError } from '../../errors.js';

export const IOVA_PAGE_BYTES = 4096;
/** Nothing below this is handed out: a zero pointer in a command always faults. */
export const IOVA_FLOOR = 0x10_0000;

/** [start, end) as Numbers; IOVAs beyond 2^53 are never used. */
type Span = [number, number];

const alignUp = (value: number, unit: number) => Math.ceil(value / unit) * unit;

export class IovaAllocator {
  private free: Span[];

  /** ranges: inclusive {start, end} pairs as reported by the kernel. */
  constructor(ranges: Array<{ start: bigint | number; end: bigint | number }>) {
    const limit = BigInt(Number.MAX_SAFE_INTEGER);
    this.free = ranges
      .map(({ start, end }): Span => {
        const from = BigInt(start);
        const to = BigInt(end) + 1n; // exclusive
        const clamp = (value: bigint) => Number(value > limit ? limit : value);
        return [alignUp(Math.max(clamp(from), IOVA_FLOOR), IOVA_PAGE_BYTES), Math.floor(clamp(to) / IOVA_PAGE_BYTES) * IOVA_PAGE_BYTES];
      })
      .filter(([from, to]) => to > from)
      .sort((a, b) => a[0] - b[0]);
    if (this.free.length === 0) throw new StorageError('ENOSPC', 'the IOMMU reports no usable IOVA range');
  }

  /** Free IOVA bytes left (guard pages included). */
  get freeBytes(): number {
    return this.free.reduce((sum, [from, to]) => sum + to - from, 0);
  }

  /** The usable spans, [start, end) (for diagnostics and tests). */
  get spans(): ReadonlyArray<readonly [number, number]> {
    return this.free;
  }

  /**
   * An IOVA for `lengthBytes` (whole pages), aligned to `alignment` (a power
   * of two ≥ 4 KiB; 2 MiB for hugepage memory so the IOMMU can use large
   * pages). Throws ENOSPC when no range has room.
   */
  allocate(lengthBytes: number, alignment = IOVA_PAGE_BYTES): number {
    if (!Number.isSafeInteger(lengthBytes) || lengthBytes <= 0 || lengthBytes % IOVA_PAGE_BYTES !== 0) {
      throw new RangeError('IOVA allocations are whole pages');
    }
    const span = lengthBytes + IOVA_PAGE_BYTES; // with the guard page
    for (let i = 0; i < this.free.length; i++) {
      const [from, to] = this.free[i]!;
      const start = alignUp(from, alignment);
      if (start + span > to) continue;
      const pieces: Span[] = [];
      if (start > from) pieces.push([from, start]);
      if (start + span < to) pieces.push([start + span, to]);
      this.free.splice(i, 1, ...pieces);
      return start;
    }
    throw new StorageError('ENOSPC', `no free IOVA range of ${lengthBytes} bytes`);
  }

  /** Returns an allocation (with its guard page). */
  release(iova: number, lengthBytes: number): void {
    this.free.push([iova, iova + lengthBytes + IOVA_PAGE_BYTES]);
    this.free.sort((a, b) => a[0] - b[0]);
    const merged: Span[] = [];
    for (const span of this.free) {
      const last = merged[merged.length - 1];
      if (last && last[1] === span[0]) last[1] = span[1];
      else merged.push([span[0], span[1]]);
    }
    this.free = merged;
  }
}
