/**
 * A shard's extent space: large records live in contiguous runs of granules
 * named by (offset, bytes) in their entry header. First fit over a sorted,
 * coalesced list of free runs; owned by one thread, so no locks. Rebuilt at
 * recovery from the extents that valid queued entries name.
 */
export class ExtentAllocator {
  /** Free runs as [firstGranule, granuleCount], sorted and coalesced. */
  private free: Array<[number, number]>;
  private freeGranules: number;

  constructor(
    readonly base: number,
    readonly bytes: number,
    readonly granuleBytes: number,
  ) {
    const granules = Math.floor(bytes / granuleBytes);
    this.free = granules > 0 ? [[0, granules]] : [];
    this.freeGranules = granules;
  }

  get freeBytes(): number {
    return this.freeGranules * this.granuleBytes;
  }

  /** Largest record an extent can hold right now. */
  get largestFree(): number {
    let best = 0;
    for (const [, count] of this.free) best = Math.max(best, count);
    return best * this.granuleBytes;
  }

  /** Allocates at least `bytes`; returns { offset, bytes } (VSA byte offset) or null when no run is long enough. */
  allocate(bytes: number): { offset: number; bytes: number } | null {
    const count = Math.ceil(bytes / this.granuleBytes);
    const index = this.free.findIndex(([, n]) => n >= count);
    if (index < 0) return null;
    const run = this.free[index]!;
    const first = run[0];
    if (run[1] === count) this.free.splice(index, 1);
    else {
      run[0] += count;
      run[1] -= count;
    }
    this.freeGranules -= count;
    return { offset: this.base + first * this.granuleBytes, bytes: count * this.granuleBytes };
  }

  /** Marks a run as used (recovery); false when it is outside the area or overlaps a used run. */
  claim(offset: number, bytes: number): boolean {
    if ((offset - this.base) % this.granuleBytes !== 0 || bytes % this.granuleBytes !== 0 || bytes <= 0) return false;
    const first = (offset - this.base) / this.granuleBytes;
    const count = bytes / this.granuleBytes;
    const index = this.free.findIndex(([start, n]) => start <= first && first + count <= start + n);
    if (index < 0) return false;
    const [start, n] = this.free[index]!;
    const pieces: Array<[number, number]> = [];
    if (first > start) pieces.push([start, first - start]);
    if (first + count < start + n) pieces.push([first + count, start + n - first - count]);
    this.free.splice(index, 1, ...pieces);
    this.freeGranules -= count;
    return true;
  }

  release(offset: number, bytes: number): void {
    const first = (offset - this.base) / this.granuleBytes;
    const count = bytes / this.granuleBytes;
    // Insert in order, then merge with the neighbours.
    let index = this.free.findIndex(([start]) => start > first);
    if (index < 0) index = this.free.length;
    this.free.splice(index, 0, [first, count]);
    this.freeGranules += count;
    const next = this.free[index + 1];
    if (next && first + count === next[0]) {
      this.free[index]![1] += next[1];
      this.free.splice(index + 1, 1);
    }
    const previous = this.free[index - 1];
    if (previous && previous[0] + previous[1] === first) {
      previous[1] += this.free[index]![1];
      this.free.splice(index, 1);
    }
  }
}
