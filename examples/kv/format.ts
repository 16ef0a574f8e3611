/**
 * The on-disk format of the KV log (docs/kv.md has the full description and
 * the recovery argument). All integers are little-endian; 64-bit fields hold
 * integers below 2^53.
 *
 *   VSA: [superblock slot 0][superblock slot 1][log ............................]
 *         one block each     circular; a frame may wrap from the end to the start
 *
 * The log is a sequence of frames. A frame is a whole number of blocks and
 * starts on a block boundary: a 64-byte header, then records, then zero
 * padding. Positions in the log are *LSNs*: byte offsets that grow forever;
 * the VSA offset of LSN L is logStart + (L mod logBytes).
 */
import { crc32 } from './crc.js';

export const SUPERBLOCK_MAGIC = 'offpKVsb';
export const FORMAT_VERSION = 1;
export const SUPERBLOCK_BYTES = 128;
export const SUPERBLOCK_SLOTS = 2;

export const FRAME_MAGIC = 0x4656_4b4f; // "OKVF" read as little-endian bytes
export const FRAME_HEADER_BYTES = 64;
export const RECORD_HEADER_BYTES = 24;

export const enum RecordType {
  /** key, value, expireAt: the key now holds this value. */
  Set = 1,
  /** key: the key is gone. */
  Del = 2,
  /** key, expireAt: the key's expiry changes (0 = none), its value does not. */
  Expire = 3,
  /** no key: every key is gone (FLUSHDB). */
  Flush = 4,
}

export interface Superblock {
  blockBytes: number;
  /** Random per format: frames of an earlier format of the same VSA never match. */
  formatId: number;
  /** Which copy is newer (highest wins). */
  counter: number;
  /** Bumped (durably) every time the log is opened; see docs/kv.md. */
  generation: number;
  logStart: number;
  logBytes: number;
  /** Oldest frame still needed, and its sequence number. */
  tailLsn: number;
  tailSeq: number;
}

export interface FrameHeader {
  formatId: number;
  generation: number;
  seq: number;
  lsn: number;
  frameBlocks: number;
  payloadBytes: number;
  recordCount: number;
}

const U32 = 0x1_0000_0000;

export function writeU64(buffer: Buffer, offset: number, value: number): void {
  buffer.writeUInt32LE(value % U32, offset);
  buffer.writeUInt32LE(Math.floor(value / U32), offset + 4);
}

export function readU64(buffer: Buffer, offset: number): number {
  return buffer.readUInt32LE(offset) + buffer.readUInt32LE(offset + 4) * U32;
}

/** A Buffer view of any Uint8Array (registered memory included), no copy. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function encodeSuperblock(sb: Superblock, into: Buffer): void {
  into.fill(0, 0, into.length);
  into.write(SUPERBLOCK_MAGIC, 0, 'latin1');
  into.writeUInt32LE(FORMAT_VERSION, 8);
  into.writeUInt32LE(sb.blockBytes, 16);
  into.writeUInt32LE(sb.formatId >>> 0, 20);
  writeU64(into, 24, sb.counter);
  into.writeUInt32LE(sb.generation >>> 0, 32);
  writeU64(into, 40, sb.logStart);
  writeU64(into, 48, sb.logBytes);
  writeU64(into, 56, sb.tailLsn);
  writeU64(into, 64, sb.tailSeq);
  into.writeUInt32LE(crc32(into.subarray(0, SUPERBLOCK_BYTES)), 12);
}

/** The superblock in `from`, or null when the slot is blank, torn or foreign. */
export function decodeSuperblock(from: Buffer): Superblock | null {
  if (from.length < SUPERBLOCK_BYTES || from.toString('latin1', 0, 8) !== SUPERBLOCK_MAGIC) return null;
  if (from.readUInt32LE(8) !== FORMAT_VERSION) return null;
  const stored = from.readUInt32LE(12);
  const copy = Buffer.from(from.subarray(0, SUPERBLOCK_BYTES));
  copy.writeUInt32LE(0, 12);
  if (crc32(copy) !== stored) return null;
  return {
    blockBytes: from.readUInt32LE(16),
    formatId: from.readUInt32LE(20),
    counter: readU64(from, 24),
    generation: from.readUInt32LE(32),
    logStart: readU64(from, 40),
    logBytes: readU64(from, 48),
    tailLsn: readU64(from, 56),
    tailSeq: readU64(from, 64),
  };
}

/** Fills in a frame header at `at` and the CRC over header and payload. */
export function sealFrame(buffer: Buffer, at: number, header: FrameHeader): void {
  buffer.writeUInt32LE(FRAME_MAGIC, at);
  buffer.writeUInt32LE(0, at + 4);
  buffer.writeUInt32LE(header.formatId >>> 0, at + 8);
  buffer.writeUInt32LE(header.generation >>> 0, at + 12);
  writeU64(buffer, at + 16, header.seq);
  writeU64(buffer, at + 24, header.lsn);
  buffer.writeUInt32LE(header.frameBlocks, at + 32);
  buffer.writeUInt32LE(header.payloadBytes, at + 36);
  buffer.writeUInt32LE(header.recordCount, at + 40);
  buffer.fill(0, at + 44, at + FRAME_HEADER_BYTES);
  const crc = crc32(buffer.subarray(at + 8, at + FRAME_HEADER_BYTES + header.payloadBytes));
  buffer.writeUInt32LE(crc, at + 4);
}

/** The header at `at` if its magic and format id match (the CRC is checked by frameIntact). */
export function peekFrame(buffer: Buffer, at: number, formatId: number): FrameHeader | null {
  if (at + FRAME_HEADER_BYTES > buffer.length) return null;
  if (buffer.readUInt32LE(at) !== FRAME_MAGIC || buffer.readUInt32LE(at + 8) !== formatId >>> 0) return null;
  return {
    formatId,
    generation: buffer.readUInt32LE(at + 12),
    seq: readU64(buffer, at + 16),
    lsn: readU64(buffer, at + 24),
    frameBlocks: buffer.readUInt32LE(at + 32),
    payloadBytes: buffer.readUInt32LE(at + 36),
    recordCount: buffer.readUInt32LE(at + 40),
  };
}

/** Every byte of header and payload is what was written: no block of the frame is stale or torn. */
export function frameIntact(buffer: Buffer, at: number, header: FrameHeader): boolean {
  const end = at + FRAME_HEADER_BYTES + header.payloadBytes;
  if (end > buffer.length) return false;
  return crc32(buffer.subarray(at + 8, end)) === buffer.readUInt32LE(at + 4);
}

/** Bytes a record takes in a frame. */
export function recordBytes(keyLength: number, valueLength: number): number {
  return RECORD_HEADER_BYTES + keyLength + valueLength;
}

/** Writes a record's header at `at`; the caller copies key and value after it. */
export function writeRecordHeader(buffer: Buffer, at: number, type: RecordType, keyLength: number, valueLength: number, expireAt: number): void {
  buffer[at] = type;
  buffer[at + 1] = 0;
  buffer[at + 2] = 0;
  buffer[at + 3] = 0;
  buffer.writeUInt32LE(keyLength, at + 4);
  buffer.writeUInt32LE(valueLength, at + 8);
  buffer.writeUInt32LE(0, at + 12);
  buffer.writeDoubleLE(expireAt, at + 16);
}

export interface RecordView {
  type: RecordType;
  /** Offsets in the frame buffer. */
  keyStart: number;
  keyLength: number;
  valueStart: number;
  valueLength: number;
  expireAt: number;
  /** Offset of the record itself. */
  start: number;
  next: number;
}

/** Walks the records of an intact frame at `at`. */
export function* records(buffer: Buffer, at: number, header: FrameHeader): Generator<RecordView> {
  let offset = at + FRAME_HEADER_BYTES;
  const end = offset + header.payloadBytes;
  for (let i = 0; i < header.recordCount && offset + RECORD_HEADER_BYTES <= end; i++) {
    const type = buffer[offset] as RecordType;
    const keyLength = buffer.readUInt32LE(offset + 4);
    const valueLength = buffer.readUInt32LE(offset + 8);
    const expireAt = buffer.readDoubleLE(offset + 16);
    const keyStart = offset + RECORD_HEADER_BYTES;
    const valueStart = keyStart + keyLength;
    const next = valueStart + valueLength;
    if (next > end) return;
    yield { type, keyStart, keyLength, valueStart, valueLength, expireAt, start: offset, next };
    offset = next;
  }
}
