/**
 * What a soak application does to its VSA, epoch by epoch, and how it tells
 * good data from bad.
 *
 * The work of epoch E is a pure function of (app index, profile, E): a
 * successor started after its predecessor was SIGKILLed can recompute what
 * the predecessor may have been doing when it died. Within an epoch no block
 * is touched twice (writes, trims and reads never overlap), so after an
 * interruption each block holds one of exactly two states: the one recorded
 * at the last completed epoch, or the one that epoch's operation leaves.
 *
 * Block state: -1 = reads as zeroes (never written, trimmed or zeroed);
 * G >= 0 = written in epoch G, content fillBlock(tag, block, G).
 */

import { prng } from '../../test/fixtures/store-pattern.js';

export const ZERO = -1;
/** A block whose content was already reported wrong: not checked again until rewritten. */
export const UNKNOWN = -2;
const MAGIC = 0x534f414b; // "SOAK"

export type Profile = 'random' | 'sequential' | 'fua' | 'trim';
export const PROFILES: readonly Profile[] = ['random', 'sequential', 'fua', 'trim'];

export interface WriteOp {
  kind: 'write' | 'trim' | 'zeroes';
  block: number;
  blocks: number;
  fua: boolean;
}

export interface ReadOp {
  block: number;
  blocks: number;
}

export interface EpochPlan {
  epoch: number;
  writes: WriteOp[];
  reads: ReadOp[];
  /** Commands in flight at once. */
  queueDepth: number;
}

/** Blocks of one sequential extent (1 MiB of 4 KiB blocks). */
export const EXTENT_BLOCKS = 256;
/** Largest single command the sequential profile issues (the emulator's MDTS). */
export const CHUNK_BLOCKS = 64;

/** Picks non-overlapping block ranges within one epoch. */
class RangePicker {
  private readonly used: Uint8Array;

  constructor(readonly blocks: number, private readonly next: () => number) {
    this.used = new Uint8Array(blocks);
  }

  /** A free range of `length` blocks, or undefined after a few tries (the epoch gets one op fewer). */
  pick(length: number): number | undefined {
    for (let attempt = 0; attempt < 16; attempt++) {
      const start = Math.floor(this.next() * (this.blocks - length + 1));
      if (this.take(start, length)) return start;
    }
    return undefined;
  }

  private take(start: number, length: number): boolean {
    for (let b = start; b < start + length; b++) if (this.used[b]) return false;
    this.used.fill(1, start, start + length);
    return true;
  }
}

/** The work of one epoch; the same arguments give the same plan in any process. */
export function planEpoch(app: number, profile: Profile, epoch: number, blocks: number): EpochPlan {
  const next = prng(Math.imul(app + 1, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b));
  const ranges = new RangePicker(blocks, next);
  const writes: WriteOp[] = [];
  const reads: ReadOp[] = [];
  const add = (count: number, length: () => number, make: (block: number, blocks: number) => void) => {
    for (let i = 0; i < count; i++) {
      const n = length();
      const block = ranges.pick(n);
      if (block !== undefined) make(block, n);
    }
  };
  const one = () => 1;
  const upTo8 = () => 1 + Math.floor(next() * 8);
  const write = (fua: boolean) => (block: number, n: number) => writes.push({ kind: 'write', block, blocks: n, fua });
  const read = (block: number, n: number) => reads.push({ block, blocks: n });
  switch (profile) {
    case 'random':
      add(48, one, write(false));
      add(48, one, read);
      return { epoch, writes, reads, queueDepth: 4 };
    case 'fua':
      add(16, one, write(true));
      add(32, one, read);
      return { epoch, writes, reads, queueDepth: 2 };
    case 'trim':
      add(24, one, write(false));
      add(8, upTo8, (block, n) => writes.push({ kind: 'trim', block, blocks: n, fua: false }));
      add(8, upTo8, (block, n) => writes.push({ kind: 'zeroes', block, blocks: n, fua: false }));
      add(24, one, read);
      return { epoch, writes, reads, queueDepth: 4 };
    case 'sequential': {
      // One extent written front to back, another one read back whole.
      const extents = Math.floor(blocks / EXTENT_BLOCKS);
      const target = epoch % extents;
      const source = (target + 1 + Math.floor(next() * (extents - 1))) % extents;
      for (let b = 0; b < EXTENT_BLOCKS; b += CHUNK_BLOCKS) writes.push({ kind: 'write', block: target * EXTENT_BLOCKS + b, blocks: CHUNK_BLOCKS, fua: false });
      for (let b = 0; b < EXTENT_BLOCKS; b += CHUNK_BLOCKS) reads.push({ block: source * EXTENT_BLOCKS + b, blocks: CHUNK_BLOCKS });
      return { epoch, writes, reads, queueDepth: 2 };
    }
  }
}

/** The state a write op leaves its blocks in. */
export function stateAfter(op: WriteOp, epoch: number): number {
  return op.kind === 'write' ? epoch : ZERO;
}

/** Self-describing content: header (magic, tag, block, generation), then words derived from it. */
export function fillBlock(view: Uint8Array, tag: number, block: number, generation: number): void {
  const words = new Uint32Array(view.buffer, view.byteOffset, view.byteLength >>> 2);
  words[0] = MAGIC;
  words[1] = tag;
  words[2] = block;
  words[3] = generation;
  const base = (Math.imul(tag, 0x27d4eb2d) ^ Math.imul(block, 0x165667b1) ^ generation) >>> 0;
  for (let i = 4; i < words.length; i++) words[i] = (base + Math.imul(i, 0x9e3779b9)) >>> 0;
}

/** Decides what a block read back holds, against at most two acceptable states. */
export class BlockChecker {
  private readonly expected: Uint8Array;
  private readonly zero: Uint8Array;

  constructor(readonly tag: number, readonly blockBytes: number) {
    this.expected = new Uint8Array(blockBytes);
    this.zero = new Uint8Array(blockBytes);
  }

  /** True if `view` is exactly `state` for this block. */
  holds(view: Uint8Array, block: number, state: number): boolean {
    if (state === UNKNOWN) return true;
    if (state === ZERO) return Buffer.compare(view, this.zero) === 0;
    fillBlock(this.expected, this.tag, block, state);
    return Buffer.compare(view, this.expected) === 0;
  }

  /** What the block looks like, for a report: zero, ours with a generation, or foreign. */
  describe(view: Uint8Array): string {
    if (Buffer.compare(view, this.zero) === 0) return 'zeroes';
    const words = new Uint32Array(view.buffer, view.byteOffset, 4);
    if (words[0] !== MAGIC) return `foreign data (first word ${words[0]!.toString(16)})`;
    return `tag ${words[1]} block ${words[2]} generation ${words[3]}`;
  }
}
