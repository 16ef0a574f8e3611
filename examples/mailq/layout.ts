/**
 * The mail queue's on-disk layout (docs/mailq.md has the full description
 * and the recovery argument). Everything is little-endian.
 *
 *   block 0, block 1     superblock (two identical copies), written once at format
 *   2 blocks per shard   shard control blocks: the shard's epoch, A/B copies
 *   class regions        for each size class (1 KiB, 4 KiB, 16 KiB): shard 0's
 *                        slots, shard 1's slots, ... (each shard's run a whole
 *                        number of blocks, so no block is shared by shards)
 *   extent area          shard 0's extent space, shard 1's, ... (large records)
 *
 * A slot starts with a 64-byte entry header; an inline record follows it in
 * the slot, a large record lives in an extent the header names.
 */
import { randomBytes } from 'node:crypto';
import { crc32c } from './crc32c.js';

/** The size classes of queue entries, in bytes (header included). */
export const CLASS_BYTES: readonly number[] = [1024, 4096, 16384];
export const HEADER_BYTES = 64;
export const FORMAT_VERSION = 1;

const SUPER_MAGIC = 'offpathQ';
const ENTRY_MAGIC = 0x3145514d; // 'MQE1'
const SHARD_MAGIC = 0x3153514d; // 'MQS1'
const REGION_ALIGN = 64 * 1024;
/** The 1 KiB class is mirrored in memory; keep that mirror bounded by default. */
const DEFAULT_MAX_SMALL_SLOTS = 16384;

export const EntryState = {
  /** Never written (zeroes) — or anything that fails its checks. */
  Free: 0,
  /** Durable and waiting for delivery. */
  Queued: 1,
  /** Handed to a delivery worker (advisory: recovery treats it as queued). */
  Leased: 2,
  /** Delivered and acknowledged: the slot (and extent) may be reused. */
  Removed: 3,
} as const;
export type EntryState = (typeof EntryState)[keyof typeof EntryState];

export const STATE_NAMES = ['free', 'queued', 'leased', 'removed'] as const;

export interface ClassLayout {
  /** Bytes per slot (header + inline record). */
  slotBytes: number;
  /** Slots of this class owned by each shard. */
  slotsPerShard: number;
  /** Byte offset of the class region (shard s's slots start at offset + s × slotsPerShard × slotBytes). */
  offset: number;
}

export interface Superblock {
  version: number;
  uuid: Uint8Array;
  /** CRC32C of the uuid: the seed of every other checksum, so another format's leftovers never validate. */
  seed: number;
  blockBytes: number;
  shards: number;
  shardControlOffset: number;
  classes: ClassLayout[];
  extentOffset: number;
  extentBytesPerShard: number;
  extentGranuleBytes: number;
  /** Size of the VSA at format (the layout never reaches past it). */
  vsaBytes: number;
  createdAt: number;
}

export interface LayoutOptions {
  /** Shards (one per worker thread), default 1. */
  shards?: number;
  /** Slots per shard for each class (1 KiB, 4 KiB, 16 KiB); by default derived from the VSA's size. */
  slots?: readonly number[];
  /** Extent space per shard in bytes; by default what the classes leave. */
  extentBytesPerShard?: number;
  /** Allocation unit of extents (default 16 KiB). */
  extentGranuleBytes?: number;
}

const alignUp = (value: number, unit: number) => Math.ceil(value / unit) * unit;
const alignDown = (value: number, unit: number) => Math.floor(value / unit) * unit;

/** The layout of a queue of `options.shards` shards on a VSA; throws RangeError when it does not fit. */
export function planLayout(vsaBytes: number, blockBytes: number, options: LayoutOptions = {}): Superblock {
  const shards = options.shards ?? 1;
  if (!Number.isInteger(shards) || shards < 1 || shards > 64) throw new RangeError('shards must be an integer in [1, 64]');
  if (blockBytes !== 512 && blockBytes !== 4096) throw new RangeError('block size must be 512 or 4096');
  const granule = options.extentGranuleBytes ?? 16384;
  if (granule % blockBytes !== 0 || granule <= 0) throw new RangeError('extentGranuleBytes must be a positive multiple of the block size');
  const shardControlOffset = 2 * blockBytes;
  const dataStart = alignUp(shardControlOffset + shards * 2 * blockBytes, REGION_ALIGN);
  const usable = vsaBytes - dataStart;
  if (usable <= REGION_ALIGN * 4) throw new RangeError(`a VSA of ${vsaBytes} bytes is too small for a mail queue`);
  // Slot runs per shard are whole blocks: packed classes (slot < block) round up.
  const roundSlots = (slots: number, slotBytes: number) => alignUp(slots * slotBytes, blockBytes) / slotBytes;
  let slots: number[];
  if (options.slots) {
    if (options.slots.length !== CLASS_BYTES.length || options.slots.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new RangeError(`slots must list ${CLASS_BYTES.length} positive integers`);
    }
    slots = options.slots.map((n, c) => roundSlots(n, CLASS_BYTES[c]!));
  } else {
    // Default shares of the space: 1/8 small, 3/8 medium, 1/4 large, the rest extents.
    const shares = [1 / 8, 3 / 8, 1 / 4];
    slots = CLASS_BYTES.map((bytes, c) => {
      let n = Math.max(1, Math.floor((usable * shares[c]!) / shards / bytes));
      if (c === 0) n = Math.min(n, DEFAULT_MAX_SMALL_SLOTS);
      return roundSlots(n, bytes);
    });
  }
  const classes: ClassLayout[] = [];
  let offset = dataStart;
  CLASS_BYTES.forEach((slotBytes, c) => {
    classes.push({ slotBytes, slotsPerShard: slots[c]!, offset });
    offset = alignUp(offset + shards * slots[c]! * slotBytes, REGION_ALIGN);
  });
  const extentOffset = offset;
  const room = alignDown(Math.max(0, (vsaBytes - extentOffset) / shards), granule);
  const extentBytesPerShard = options.extentBytesPerShard ?? room;
  if (extentBytesPerShard % granule !== 0) throw new RangeError('extentBytesPerShard must be a multiple of the extent granule');
  if (extentOffset + shards * extentBytesPerShard > vsaBytes) {
    throw new RangeError(`the layout needs ${extentOffset + shards * extentBytesPerShard} bytes; the VSA has ${vsaBytes}`);
  }
  const uuid = new Uint8Array(randomBytes(16));
  return {
    version: FORMAT_VERSION,
    uuid,
    seed: crc32c(uuid),
    blockBytes,
    shards,
    shardControlOffset,
    classes,
    extentOffset,
    extentBytesPerShard,
    extentGranuleBytes: granule,
    vsaBytes,
    createdAt: Date.now(),
  };
}

// --- superblock -------------------------------------------------------------

const SB_CRC = 12;
const SB_COVERED = 512;

export function encodeSuperblock(sb: Superblock): Uint8Array {
  const bytes = new Uint8Array(sb.blockBytes);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 8; i++) bytes[i] = SUPER_MAGIC.charCodeAt(i);
  view.setUint32(8, sb.version, true);
  bytes.set(sb.uuid, 16);
  view.setUint32(32, sb.blockBytes, true);
  view.setUint32(36, sb.shards, true);
  view.setUint32(40, sb.classes.length, true);
  view.setUint32(44, sb.extentGranuleBytes, true);
  setU64(view, 48, sb.vsaBytes);
  setU64(view, 56, sb.shardControlOffset);
  setU64(view, 64, sb.extentOffset);
  setU64(view, 72, sb.extentBytesPerShard);
  setU64(view, 80, sb.createdAt);
  sb.classes.forEach((c, i) => {
    const at = 96 + i * 16;
    view.setUint32(at, c.slotBytes, true);
    view.setUint32(at + 4, c.slotsPerShard, true);
    setU64(view, at + 8, c.offset);
  });
  view.setUint32(SB_CRC, crc32c(bytes, 0, 0, SB_COVERED), true);
  return bytes;
}

/** The superblock in `bytes`, or null when it is not one (blank, foreign, torn). */
export function decodeSuperblock(bytes: Uint8Array): Superblock | null {
  if (bytes.length < SB_COVERED) return null;
  for (let i = 0; i < 8; i++) if (bytes[i] !== SUPER_MAGIC.charCodeAt(i)) return null;
  const copy = bytes.slice(0, SB_COVERED);
  const view = new DataView(copy.buffer);
  const stored = view.getUint32(SB_CRC, true);
  view.setUint32(SB_CRC, 0, true);
  if (crc32c(copy) !== stored) return null;
  const version = view.getUint32(8, true);
  if (version !== FORMAT_VERSION) return null;
  const uuid = copy.slice(16, 32);
  const classCount = view.getUint32(40, true);
  if (classCount !== CLASS_BYTES.length) return null;
  const classes: ClassLayout[] = [];
  for (let i = 0; i < classCount; i++) {
    const at = 96 + i * 16;
    classes.push({ slotBytes: view.getUint32(at, true), slotsPerShard: view.getUint32(at + 4, true), offset: getU64(view, at + 8) });
  }
  return {
    version,
    uuid,
    seed: crc32c(uuid),
    blockBytes: view.getUint32(32, true),
    shards: view.getUint32(36, true),
    extentGranuleBytes: view.getUint32(44, true),
    vsaBytes: getU64(view, 48),
    shardControlOffset: getU64(view, 56),
    extentOffset: getU64(view, 64),
    extentBytesPerShard: getU64(view, 72),
    createdAt: getU64(view, 80),
    classes,
  };
}

/** True when the block is all zeroes (a blank VSA). */
export function isBlank(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

// --- shard control block ----------------------------------------------------

/** Byte offset of shard `shard`'s control block copy `copy` (0 or 1). */
export function shardControlOffset(sb: Superblock, shard: number, copy: number): number {
  return sb.shardControlOffset + (shard * 2 + copy) * sb.blockBytes;
}

export function encodeShardControl(sb: Superblock, shard: number, epoch: number): Uint8Array {
  const bytes = new Uint8Array(sb.blockBytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, SHARD_MAGIC, true);
  view.setUint32(4, shard, true);
  view.setUint32(8, epoch, true);
  setU64(view, 16, Date.now());
  view.setUint32(12, crc32c(bytes, sb.seed, 0, 64), true);
  return bytes;
}

/** The epoch recorded in a shard control block copy, or -1 when the copy is not valid. */
export function decodeShardControl(sb: Superblock, shard: number, bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, 64);
  if (view.getUint32(0, true) !== SHARD_MAGIC || view.getUint32(4, true) !== shard) return -1;
  const copy = bytes.slice(0, 64);
  const stored = view.getUint32(12, true);
  new DataView(copy.buffer).setUint32(12, 0, true);
  if (crc32c(copy, sb.seed) !== stored) return -1;
  return view.getUint32(8, true);
}

// --- entry header -----------------------------------------------------------

export const FLAG_EXTENT = 1;

/** One entry header as it is on disk. */
export interface EntryHeader {
  state: EntryState;
  classIndex: number;
  flags: number;
  epoch: number;
  counter: number;
  recordBytes: number;
  recordCrc: number;
  attempts: number;
  extentBytes: number;
  extentOffset: number;
  notBefore: number;
  enqueuedAt: number;
  /** The slot this header was written for: (class << 24) | index. */
  slotId: number;
}

export const slotIdOf = (classIndex: number, index: number) => ((classIndex << 24) | index) >>> 0;

/**
 * Writes a header at bytes[at, at + 64) with its checksum. The header checksum
 * covers the header only; the record has its own (recordCrc), so a state
 * change rewrites 64 bytes and never needs the record.
 */
export function writeHeader(bytes: Uint8Array, at: number, seed: number, h: EntryHeader): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, HEADER_BYTES);
  view.setUint32(0, ENTRY_MAGIC, true);
  view.setUint8(4, h.state);
  view.setUint8(5, h.classIndex);
  view.setUint8(6, h.flags);
  view.setUint8(7, HEADER_BYTES);
  view.setUint32(8, h.epoch, true);
  view.setUint32(12, h.counter, true);
  view.setUint32(16, h.recordBytes, true);
  view.setUint32(20, h.recordCrc, true);
  view.setUint32(24, h.attempts, true);
  view.setUint32(28, h.extentBytes, true);
  setU64(view, 32, h.extentOffset);
  setU64(view, 40, Math.max(0, Math.round(h.notBefore)));
  setU64(view, 48, Math.max(0, Math.round(h.enqueuedAt)));
  view.setUint32(56, h.slotId, true);
  view.setUint32(60, crc32c(bytes, seed, at, at + 60), true);
}

/** The header at bytes[at, at + 64), or null when it fails its magic or checksum (treated as free). */
export function readHeader(bytes: Uint8Array, at: number, seed: number): EntryHeader | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, HEADER_BYTES);
  if (view.getUint32(0, true) !== ENTRY_MAGIC) return null;
  if (crc32c(bytes, seed, at, at + 60) !== view.getUint32(60, true)) return null;
  const state = view.getUint8(4) as EntryState;
  if (state > EntryState.Removed || view.getUint8(7) !== HEADER_BYTES) return null;
  return {
    state,
    classIndex: view.getUint8(5),
    flags: view.getUint8(6),
    epoch: view.getUint32(8, true),
    counter: view.getUint32(12, true),
    recordBytes: view.getUint32(16, true),
    recordCrc: view.getUint32(20, true),
    attempts: view.getUint32(24, true),
    extentBytes: view.getUint32(28, true),
    extentOffset: getU64(view, 32),
    notBefore: getU64(view, 40),
    enqueuedAt: getU64(view, 48),
    slotId: view.getUint32(56, true),
  };
}

/** Rewrites only the state and retry fields of a valid header in place (and its checksum). */
export function patchHeader(bytes: Uint8Array, at: number, seed: number, state: EntryState, attempts: number, notBefore: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, HEADER_BYTES);
  view.setUint8(4, state);
  view.setUint32(24, attempts, true);
  setU64(view, 40, Math.max(0, Math.round(notBefore)));
  view.setUint32(60, crc32c(bytes, seed, at, at + 60), true);
}

// --- records ----------------------------------------------------------------

/**
 * A record is the message as queued: `u32 envelope bytes | envelope (JSON,
 * UTF-8) | message data`. The envelope is known before the data arrives, so
 * the record is filled front to back as the data streams in.
 */
export interface Envelope {
  /** Reverse path (MAIL FROM), '' for the null sender. */
  from: string;
  /** Forward paths (RCPT TO). */
  to: string[];
  /** Anything else worth keeping (HELO name, client address, ...). */
  [key: string]: unknown;
}

export function encodeEnvelope(envelope: Envelope): Uint8Array {
  const json = Buffer.from(JSON.stringify(envelope), 'utf8');
  const out = new Uint8Array(4 + json.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  return out;
}

export function decodeRecord(record: Uint8Array): { envelope: Envelope; data: Uint8Array } {
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const length = view.getUint32(0, true);
  if (4 + length > record.length) throw new RangeError('record envelope overruns the record');
  const envelope = JSON.parse(Buffer.from(record.buffer, record.byteOffset + 4, length).toString('utf8')) as Envelope;
  return { envelope, data: record.subarray(4 + length) };
}

// --- helpers ----------------------------------------------------------------

export function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value % 0x1_0000_0000, true);
  view.setUint32(at + 4, Math.floor(value / 0x1_0000_0000), true);
}

export function getU64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 0x1_0000_0000;
}

/** A message's queue id: shard, epoch and counter, e.g. `0.3.1742`. */
export function messageId(shard: number, epoch: number, counter: number): string {
  return `${shard}.${epoch}.${counter}`;
}
