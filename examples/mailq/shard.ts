/**
 * One shard of the mail queue: its entries in every size class, its extent
 * space and its epoch, driven through one queue pair by the one thread that
 * owns it. Nothing here is shared with another thread, so nothing locks.
 *
 * Life of a message:
 *
 *   reserve()   a free slot of the class the expected size fits; the record
 *               (envelope, then the data as it arrives) is written straight
 *               into the slot's memory — the in-memory mirror of the slot for
 *               the packed 1 KiB class, a registered buffer otherwise — and
 *               moves up a class (or into an extent) if it outgrows it
 *   commit()    header (state queued, epoch, counter, lengths, CRCs) and
 *               record are written; then a Flush (grouped with every other
 *               commit that completed meanwhile) — or FUA — and only then
 *               does commit() resolve: the message is durable
 *   dequeue()   leases the oldest ready message: state leased (advisory),
 *               attempts + 1, a lease timer
 *   ack()       state removed, made durable; then the slot (and extent) is
 *               free for reuse
 *   nack()      state queued again with attempts and a not-before time
 *               (exponential backoff); lease timeouts do the same
 */
import type { VsaQueue } from '../../libstorage/index.js';
import { crc32c } from './crc32c.js';
import { ExtentAllocator } from './extents.js';
import { BlockWriter, BufferPool, Committer, until, type Durability } from './io.js';
import {
  EntryState,
  FLAG_EXTENT,
  HEADER_BYTES,
  decodeRecord,
  decodeShardControl,
  encodeEnvelope,
  encodeShardControl,
  messageId,
  patchHeader,
  readHeader,
  shardControlOffset,
  slotIdOf,
  writeHeader,
  type EntryHeader,
  type Envelope,
  type Superblock,
} from './layout.js';

/** Errors of the queue itself, with a stable code. */
export class MailqError extends Error {
  override readonly name = 'MailqError';
  constructor(
    readonly code: 'EFULL' | 'ETOOBIG' | 'ELEASE' | 'ECLOSED' | 'ECORRUPT' | 'EABORTED',
    message: string,
  ) {
    super(message);
  }
}

export interface ShardOptions {
  /** How commits become durable: grouped Flush (default) or FUA writes. */
  durability?: Durability;
  /** How long a lease lasts before the message is retried (default 5 minutes). */
  leaseMs?: number;
  /** Retry delay after the n-th failed attempt: min(maxMs, baseMs × 2^(n−1)). */
  backoff?: { baseMs?: number; maxMs?: number };
  /** Largest record accepted (envelope + data), default: what the extent space holds. */
  maxRecordBytes?: number;
  /** Clock (ms since the epoch); tests replace it. */
  now?: () => number;
  /** Inspect only: no new epoch is written and nothing can be enqueued. */
  readOnly?: boolean;
}

/** A message as the queue keeps it in memory. */
interface Message {
  classIndex: number;
  index: number;
  state: 'queued' | 'leased' | 'removing';
  epoch: number;
  counter: number;
  /** epoch × 2^32 + counter: FIFO order across restarts. */
  seq: number;
  recordBytes: number;
  recordCrc: number;
  attempts: number;
  notBefore: number;
  enqueuedAt: number;
  extentOffset: number;
  extentBytes: number;
  /** The current header block image of an unpacked slot while leased. */
  image: Uint8Array | null;
  leaseGeneration: number;
  leaseTimer: NodeJS.Timeout | null;
}

export interface LeaseInfo {
  /** The queue id (`shard.epoch.counter`). */
  id: string;
  shard: number;
  envelope: Envelope;
  data: Uint8Array;
  /** Delivery attempts including this one. */
  attempts: number;
  enqueuedAt: number;
}

/** A message leased to a delivery worker. */
export class Lease implements LeaseInfo {
  readonly id: string;
  readonly shard: number;
  readonly envelope: Envelope;
  readonly data: Uint8Array;
  readonly attempts: number;
  readonly enqueuedAt: number;

  /** @internal */
  constructor(
    private readonly owner: MailQueueShard,
    /** @internal */ readonly message: Message,
    /** @internal */ readonly generation: number,
    record: Uint8Array,
  ) {
    const { envelope, data } = decodeRecord(record);
    this.id = messageId(owner.index, message.epoch, message.counter);
    this.shard = owner.index;
    this.envelope = envelope;
    this.data = data;
    this.attempts = message.attempts;
    this.enqueuedAt = message.enqueuedAt;
  }

  /** Delivered: removes the message; resolves once the removal is durable. */
  ack(): Promise<void> {
    return this.owner.ack(this);
  }

  /** Not delivered: back to the queue after `delayMs` (default: the backoff for this attempt). */
  nack(options: { delayMs?: number } = {}): Promise<void> {
    return this.owner.nack(this, options.delayMs);
  }
}

/** Where a record in the making lives. */
const enum Mode {
  Slot,
  Extent,
}

const EXTENT_CHUNK_BYTES = 64 * 1024;

/**
 * A message being received: the record is filled in place as bytes arrive
 * (append), then made durable (commit) or given up (abort).
 */
export class Reservation {
  private mode = Mode.Slot;
  private classIndex = -1;
  private index = -1;
  /** Slot mode: the slot's memory; the record starts at HEADER_BYTES. */
  private slot: Uint8Array | null = null;
  private slotOwned = false;
  /** Extent mode: the record in chunks of registered memory. */
  private chunks: Uint8Array[] = [];
  private length = 0;
  private tooBig = false;
  private full = false;
  private done = false;

  /** @internal */
  constructor(
    private readonly owner: MailQueueShard,
    envelope: Envelope,
    sizeHint: number,
  ) {
    const head = encodeEnvelope(envelope);
    if (!owner.placeSlot(this, HEADER_BYTES + head.length + sizeHint)) {
      if (!this.toExtent(head.length + sizeHint)) this.full = true;
    }
    this.append(head, 0, head.length);
  }

  /** Record bytes so far (envelope included). */
  get bytes(): number {
    return this.length;
  }

  /** True once the record can no longer be stored (too big, or no space): commit() will reject. */
  get failed(): boolean {
    return this.tooBig || this.full;
  }

  /** @internal */
  useSlot(classIndex: number, index: number, memory: Uint8Array, owned: boolean): void {
    this.classIndex = classIndex;
    this.index = index;
    this.slot = memory;
    this.slotOwned = owned;
  }

  /** Copies src[start, end) to the end of the record. */
  append(src: Uint8Array, start = 0, end = src.length): void {
    if (this.done) throw new MailqError('EABORTED', 'reservation already committed or aborted');
    const n = end - start;
    if (n <= 0 || this.failed) return;
    if (this.length + n > this.owner.maxRecordBytes) {
      this.tooBig = true;
      this.release();
      return;
    }
    if (this.mode === Mode.Slot) {
      const slot = this.slot!;
      if (HEADER_BYTES + this.length + n <= slot.length) {
        slot.set(src.subarray(start, end), HEADER_BYTES + this.length);
        this.length += n;
        return;
      }
      if (!this.grow(this.length + n)) {
        this.full = true;
        this.release();
        return;
      }
      if (this.mode === Mode.Slot) {
        this.slot!.set(src.subarray(start, end), HEADER_BYTES + this.length);
        this.length += n;
        return;
      }
    }
    // Extent mode: fill chunk by chunk.
    let at = start;
    while (at < end) {
      const chunkIndex = Math.floor(this.length / EXTENT_CHUNK_BYTES);
      if (chunkIndex === this.chunks.length) this.chunks.push(this.owner.pool.take(EXTENT_CHUNK_BYTES));
      const chunk = this.chunks[chunkIndex]!;
      const within = this.length % EXTENT_CHUNK_BYTES;
      const take = Math.min(end - at, EXTENT_CHUNK_BYTES - within);
      chunk.set(src.subarray(at, at + take), within);
      at += take;
      this.length += take;
    }
  }

  /** The record outgrew its slot: a bigger class, else an extent. Copies what is there once. */
  private grow(needed: number): boolean {
    const old = this.slot!;
    const oldClass = this.classIndex;
    const oldIndex = this.index;
    const oldOwned = this.slotOwned;
    const kept = old.subarray(HEADER_BYTES, HEADER_BYTES + this.length);
    if (this.owner.placeSlot(this, HEADER_BYTES + needed, oldClass + 1)) {
      this.slot!.set(kept, HEADER_BYTES);
    } else {
      this.slot = null;
      this.mode = Mode.Extent;
      const length = this.length;
      this.length = 0;
      if (!this.toExtent(needed)) {
        this.owner.releaseSlot(oldClass, oldIndex, oldOwned ? old : null);
        return false;
      }
      this.append(kept, 0, kept.length);
      if (this.length !== length) throw new Error('mailq: lost bytes moving to an extent');
    }
    this.owner.releaseSlot(oldClass, oldIndex, oldOwned ? old : null);
    return true;
  }

  private toExtent(needed: number): boolean {
    if (needed > this.owner.maxRecordBytes) {
      this.tooBig = true;
      return false;
    }
    this.mode = Mode.Extent;
    this.slot = null;
    this.classIndex = -1;
    return true;
  }

  /** Makes the message durable; resolves with its queue id. */
  async commit(): Promise<string> {
    if (this.done) throw new MailqError('EABORTED', 'reservation already committed or aborted');
    if (this.tooBig) {
      this.abort();
      throw new MailqError('ETOOBIG', `message exceeds ${this.owner.maxRecordBytes} bytes`);
    }
    if (this.full) {
      this.abort();
      throw new MailqError('EFULL', 'the queue is full');
    }
    this.done = true;
    if (this.mode === Mode.Slot) {
      const slot = this.slot!;
      const owned = this.slotOwned;
      this.slot = null;
      return this.owner.commitSlot(this.classIndex, this.index, slot, owned, this.length);
    }
    const chunks = this.chunks;
    this.chunks = [];
    return this.owner.commitExtent(chunks, this.length);
  }

  /** Gives the slot (and memory) back; nothing was written. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    this.release();
  }

  private release(): void {
    if (this.slot !== null) {
      this.owner.releaseSlot(this.classIndex, this.index, this.slotOwned ? this.slot : null);
      this.slot = null;
    }
    for (const chunk of this.chunks) this.owner.pool.give(chunk);
    this.chunks = [];
  }
}

export interface PeekedMessage {
  id: string;
  state: 'queued' | 'leased' | 'removing';
  attempts: number;
  enqueuedAt: number;
  notBefore: number;
  /** The size class of the entry holding the header (and the record, unless in an extent). */
  slotBytes: number;
  /** Bytes of the extent holding the record, 0 when inline. */
  extentBytes: number;
  recordBytes: number;
  /** The record still matches its checksum. */
  valid: boolean;
  envelope: Envelope;
  data: Uint8Array;
}

export interface ShardStats {
  shard: number;
  epoch: number;
  queued: number;
  ready: number;
  delayed: number;
  leased: number;
  freeSlots: number[];
  extentFreeBytes: number;
  enqueued: number;
  acked: number;
  nacked: number;
  leaseTimeouts: number;
  recovered: number;
  discarded: number;
  flushes: number;
  syncedCommits: number;
  headerWrites: number;
}

export class MailQueueShard {
  readonly index: number;
  readonly sb: Superblock;
  readonly io: VsaQueue;
  readonly pool: BufferPool;
  readonly maxRecordBytes: number;
  readonly durability: Durability;
  epoch = 0;
  private counter = 0;
  private readonly committer: Committer;
  private readonly blocks: BlockWriter;
  private readonly extents: ExtentAllocator;
  private readonly bs: number;
  /** Per class: the slot run of this shard. */
  private readonly slotBase: number[];
  private readonly slotBytes: number[];
  private readonly slotCount: number[];
  private readonly packed: boolean[];
  /** Mirror of the packed (smaller than a block) classes' slot runs. */
  private readonly mirror: Array<Uint8Array | null>;
  private readonly freeSlots: number[][];
  private readonly live = new Map<number, Message>();
  private readonly ready: Message[] = [];
  private readyHead = 0;
  private readonly delayed: Message[] = [];
  private delayTimer: NodeJS.Timeout | null = null;
  private delayTimerAt = Infinity;
  private readonly waiters: Array<(message: Message | null) => void> = [];
  private readonly leaseMs: number;
  private readonly backoffBase: number;
  private readonly backoffMax: number;
  private readonly now: () => number;
  private closed = false;
  private readonly readOnly: boolean;
  private pendingCommits = 0;
  /** Called whenever a message becomes ready (for multi-shard waiters). */
  onReady: (() => void) | null = null;
  private readonly stat = { enqueued: 0, acked: 0, nacked: 0, leaseTimeouts: 0, recovered: 0, discarded: 0 };

  private constructor(io: VsaQueue, sb: Superblock, index: number, options: ShardOptions) {
    if (index < 0 || index >= sb.shards) throw new RangeError(`shard ${index} does not exist (the queue has ${sb.shards})`);
    if (io.blockSize !== sb.blockBytes) throw new RangeError(`block size ${io.blockSize} differs from the queue's ${sb.blockBytes}`);
    this.io = io;
    this.sb = sb;
    this.index = index;
    this.bs = sb.blockBytes;
    this.durability = options.durability ?? 'flush';
    this.pool = new BufferPool(io);
    this.committer = new Committer(io, this.durability);
    this.blocks = new BlockWriter(io, this.pool, this.durability === 'fua');
    this.extents = new ExtentAllocator(sb.extentOffset + index * sb.extentBytesPerShard, sb.extentBytesPerShard, sb.extentGranuleBytes);
    this.maxRecordBytes = Math.min(options.maxRecordBytes ?? Infinity, Math.max(sb.extentBytesPerShard, sb.classes[sb.classes.length - 1]!.slotBytes - HEADER_BYTES));
    this.slotBase = sb.classes.map((c) => c.offset + index * c.slotsPerShard * c.slotBytes);
    this.slotBytes = sb.classes.map((c) => c.slotBytes);
    this.slotCount = sb.classes.map((c) => c.slotsPerShard);
    this.packed = sb.classes.map((c) => c.slotBytes < this.bs);
    this.mirror = sb.classes.map((c) => (c.slotBytes < this.bs ? new Uint8Array(c.slotsPerShard * c.slotBytes) : null));
    this.freeSlots = sb.classes.map(() => []);
    this.leaseMs = options.leaseMs ?? 5 * 60_000;
    this.backoffBase = options.backoff?.baseMs ?? 1000;
    this.backoffMax = options.backoff?.maxMs ?? 3_600_000;
    this.now = options.now ?? Date.now;
    this.readOnly = options.readOnly ?? false;
  }

  /** Opens shard `index` of the queue `sb` describes on `io` (this thread's queue pair): recovery, then a new epoch. */
  static async open(io: VsaQueue, sb: Superblock, index: number, options: ShardOptions = {}): Promise<MailQueueShard> {
    const shard = new MailQueueShard(io, sb, index, options);
    await shard.recover();
    return shard;
  }

  // --- recovery ---------------------------------------------------------------

  private async recover(): Promise<void> {
    // 1. A new epoch, durable before any message of it exists: queue ids
    //    (shard.epoch.counter) are never reused, whatever was lost in a crash.
    const copies = [0, 1].map(() => new Uint8Array(this.bs));
    await Promise.all(copies.map((copy, c) => this.io.read(shardControlOffset(this.sb, this.index, c), copy)));
    const previous = Math.max(0, ...copies.map((copy) => decodeShardControl(this.sb, this.index, copy)));
    this.epoch = previous + 1;
    if (this.readOnly) this.epoch = previous;
    else {
      const control = this.pool.take(this.bs);
    control.set(encodeShardControl(this.sb, this.index, this.epoch));
      await this.io.write(shardControlOffset(this.sb, this.index, this.epoch % 2), control, { fua: true });
      this.pool.give(control);
    }

    // 2. Scan every slot of every class.
    const found: Message[] = [];
    const extentChecks: Message[] = [];
    for (let c = 0; c < this.slotBase.length; c++) {
      const slotBytes = this.slotBytes[c]!;
      const count = this.slotCount[c]!;
      const mirror = this.mirror[c];
      const piece = Math.max(slotBytes, Math.floor((1 << 20) / slotBytes) * slotBytes);
      const scratch = mirror ? null : new Uint8Array(Math.min(piece, count * slotBytes));
      for (let first = 0; first < count; first += piece / slotBytes) {
        const n = Math.min(piece / slotBytes, count - first);
        const bytes = mirror ? mirror.subarray(first * slotBytes, (first + n) * slotBytes) : scratch!.subarray(0, n * slotBytes);
        await this.io.read(this.slotBase[c]! + first * slotBytes, bytes);
        for (let i = 0; i < n; i++) {
          const at = i * slotBytes;
          const message = this.validateSlot(c, first + i, bytes, at);
          if (message === null) {
            // Not a live message. A packed slot's stale header is cleared in
            // the mirror (the next write of its block clears it on disk).
            if (mirror && bytes[at] !== 0 && readHeader(bytes, at, this.sb.seed)?.state !== EntryState.Removed) bytes.fill(0, at, at + HEADER_BYTES);
            continue;
          }
          if (message.extentBytes > 0) extentChecks.push(message);
          else found.push(message);
        }
      }
    }
    // 3. Records in extents: claimed in order and checked against their CRC.
    extentChecks.sort((a, b) => a.seq - b.seq);
    for (const message of extentChecks) {
      if (!this.extents.claim(message.extentOffset, message.extentBytes)) {
        this.stat.discarded++;
        this.clearPackedHeader(message);
        continue;
      }
      const record = await this.readExtent(message);
      if (crc32c(record, this.sb.seed) !== message.recordCrc) {
        this.extents.release(message.extentOffset, message.extentBytes);
        this.stat.discarded++;
        this.clearPackedHeader(message);
        continue;
      }
      found.push(message);
    }
    // 4. In-memory index: FIFO by sequence; retries wait for their time.
    found.sort((a, b) => a.seq - b.seq);
    const now = this.now();
    for (const message of found) {
      this.live.set(slotIdOf(message.classIndex, message.index), message);
      if (message.notBefore > now) this.pushDelayed(message);
      else this.ready.push(message);
    }
    this.stat.recovered = found.length;
    for (let c = 0; c < this.slotBase.length; c++) {
      const free = this.freeSlots[c]!;
      for (let i = this.slotCount[c]! - 1; i >= 0; i--) if (!this.live.has(slotIdOf(c, i))) free.push(i);
    }
  }

  /** The live message in a slot, or null (free, removed, torn, foreign). */
  private validateSlot(c: number, index: number, bytes: Uint8Array, at: number): Message | null {
    if (bytes[at] === 0 && bytes[at + 1] === 0) return null;
    const h = readHeader(bytes, at, this.sb.seed);
    if (h === null) return null;
    if (h.state !== EntryState.Queued && h.state !== EntryState.Leased) return null;
    if (h.slotId !== slotIdOf(c, index) || h.classIndex !== c || h.epoch === 0) {
      this.stat.discarded++;
      return null;
    }
    const message = this.messageFrom(h, c, index);
    if (h.flags & FLAG_EXTENT) {
      const end = this.extents.base + this.extents.bytes;
      if (h.extentOffset < this.extents.base || h.extentOffset + h.extentBytes > end || h.recordBytes > h.extentBytes) {
        this.stat.discarded++;
        return null;
      }
      return message;
    }
    if (h.extentBytes !== 0 || HEADER_BYTES + h.recordBytes > this.slotBytes[c]!) {
      this.stat.discarded++;
      return null;
    }
    // Header written but record torn or never written: the enqueue was never acknowledged.
    if (crc32c(bytes, this.sb.seed, at + HEADER_BYTES, at + HEADER_BYTES + h.recordBytes) !== h.recordCrc) {
      this.stat.discarded++;
      return null;
    }
    return message;
  }

  private messageFrom(h: EntryHeader, classIndex: number, index: number): Message {
    return {
      classIndex,
      index,
      state: 'queued',
      epoch: h.epoch,
      counter: h.counter,
      seq: h.epoch * 0x1_0000_0000 + h.counter,
      recordBytes: h.recordBytes,
      recordCrc: h.recordCrc,
      attempts: h.attempts,
      notBefore: h.notBefore,
      enqueuedAt: h.enqueuedAt,
      extentOffset: h.flags & FLAG_EXTENT ? h.extentOffset : 0,
      extentBytes: h.flags & FLAG_EXTENT ? h.extentBytes : 0,
      image: null,
      leaseGeneration: 0,
      leaseTimer: null,
    };
  }

  private clearPackedHeader(message: Message): void {
    const mirror = this.mirror[message.classIndex];
    if (mirror) mirror.fill(0, message.index * this.slotBytes[message.classIndex]!, message.index * this.slotBytes[message.classIndex]! + HEADER_BYTES);
  }

  // --- enqueue ----------------------------------------------------------------

  /** Starts receiving a message of about `sizeHint` data bytes (0: unknown); fill it with append(), then commit(). */
  reserve(envelope: Envelope, sizeHint = 0): Reservation {
    if (this.closed || this.readOnly) throw new MailqError('ECLOSED', this.closed ? 'the queue is closed' : 'the queue is open read-only');
    return new Reservation(this, envelope, sizeHint);
  }

  /** Enqueues a whole message; resolves with its id once it is durable. */
  enqueue(envelope: Envelope, data: Uint8Array): Promise<string> {
    const reservation = this.reserve(envelope, data.length);
    reservation.append(data);
    return reservation.commit();
  }

  /** @internal Gives the reservation a slot of class ≥ fromClass holding `bytes`; false if none is free. */
  placeSlot(reservation: Reservation, bytes: number, fromClass = 0): boolean {
    for (let c = fromClass; c < this.slotBytes.length; c++) {
      if (bytes > this.slotBytes[c]!) continue;
      const index = this.freeSlots[c]!.pop();
      if (index === undefined) continue;
      const mirror = this.mirror[c];
      if (mirror) {
        reservation.useSlot(c, index, mirror.subarray(index * this.slotBytes[c]!, (index + 1) * this.slotBytes[c]!), false);
      } else {
        reservation.useSlot(c, index, this.pool.take(this.slotBytes[c]!), true);
      }
      return true;
    }
    return false;
  }

  /** @internal */
  releaseSlot(classIndex: number, index: number, owned: Uint8Array | null): void {
    if (owned) this.pool.give(owned);
    if (classIndex >= 0) this.freeSlots[classIndex]!.push(index);
  }

  private nextCounter(): number {
    // 2^32 − 1 messages per shard per epoch; a restart starts a new epoch.
    if (this.counter >= 0xffff_fffe) throw new MailqError('EFULL', 'sequence space of this epoch exhausted; restart the queue');
    return ++this.counter;
  }

  /** @internal An inline record in slot memory: header + record, one write, then durable. */
  async commitSlot(classIndex: number, index: number, slot: Uint8Array, owned: boolean, length: number): Promise<string> {
    const counter = this.nextCounter();
    const recordCrc = crc32c(slot, this.sb.seed, HEADER_BYTES, HEADER_BYTES + length);
    const header: EntryHeader = {
      state: EntryState.Queued,
      classIndex,
      flags: 0,
      epoch: this.epoch,
      counter,
      recordBytes: length,
      recordCrc,
      attempts: 0,
      extentBytes: 0,
      extentOffset: 0,
      notBefore: 0,
      enqueuedAt: this.now(),
      slotId: slotIdOf(classIndex, index),
    };
    writeHeader(slot, 0, this.sb.seed, header);
    this.pendingCommits++;
    try {
      if (this.packed[classIndex]) {
        await this.writeBlockSoon(this.headerBlockOffset(classIndex, index), this.packedBlock(classIndex, index));
      } else {
        const bytes = Math.ceil((HEADER_BYTES + length) / this.bs) * this.bs;
        const offset = this.slotOffset(classIndex, index);
        await this.submitSoon(() => this.io.write(offset, slot.subarray(0, bytes), { fua: this.durability === 'fua' }));
      }
      await this.committer.sync();
    } catch (error) {
      // The header may or may not be on the device; the sender is told the
      // message failed. The slot is retired for this epoch rather than
      // reused under a write whose fate is unknown.
      if (owned) this.pool.give(slot);
      throw error;
    } finally {
      this.pendingCommits--;
    }
    if (owned) this.pool.give(slot);
    return this.admit(this.messageFrom(header, classIndex, index));
  }

  /** @internal A record in an extent: extent data and header written together, then durable. */
  async commitExtent(chunks: Uint8Array[], length: number): Promise<string> {
    const extent = this.extents.allocate(Math.max(length, 1));
    const give = () => chunks.forEach((chunk) => this.pool.give(chunk));
    if (extent === null) {
      give();
      throw new MailqError('EFULL', 'no extent space for the message');
    }
    // The header goes into the smallest free slot.
    let classIndex = -1;
    let index = -1;
    for (let c = 0; c < this.freeSlots.length && classIndex < 0; c++) {
      const free = this.freeSlots[c]!.pop();
      if (free !== undefined) {
        classIndex = c;
        index = free;
      }
    }
    if (classIndex < 0) {
      this.extents.release(extent.offset, extent.bytes);
      give();
      throw new MailqError('EFULL', 'no free entry for the message');
    }
    let recordCrc = this.sb.seed;
    let left = length;
    const pieces: Uint8Array[] = [];
    const padded = Math.ceil(length / this.bs) * this.bs;
    let toWrite = padded;
    for (const chunk of chunks) {
      const take = Math.min(left, chunk.length);
      recordCrc = crc32c(chunk, recordCrc, 0, take);
      left -= take;
      const span = Math.min(toWrite, chunk.length);
      chunk.fill(0, take, span);
      pieces.push(chunk.subarray(0, span));
      toWrite -= span;
      if (toWrite === 0) break;
    }
    const header: EntryHeader = {
      state: EntryState.Queued,
      classIndex,
      flags: FLAG_EXTENT,
      epoch: this.epoch,
      counter: this.nextCounter(),
      recordBytes: length,
      recordCrc,
      attempts: 0,
      extentBytes: extent.bytes,
      extentOffset: extent.offset,
      notBefore: 0,
      enqueuedAt: this.now(),
      slotId: slotIdOf(classIndex, index),
    };
    const image = this.headerImage(classIndex, index);
    writeHeader(image, this.headerAt(classIndex, index), this.sb.seed, header);
    this.pendingCommits++;
    try {
      const fua = this.durability === 'fua';
      await Promise.all([
        padded > 0 ? this.submitSoon(() => this.io.writev(pieces, [{ offset: extent.offset, length: padded }], { fua })) : Promise.resolve(),
        this.writeBlockSoon(this.headerBlockOffset(classIndex, index), image),
      ]);
      await this.committer.sync();
    } catch (error) {
      give();
      throw error;
    } finally {
      this.pendingCommits--;
    }
    give();
    return this.admit(this.messageFrom(header, classIndex, index));
  }

  /** A durable message joins the queue. */
  private admit(message: Message): string {
    this.stat.enqueued++;
    this.live.set(slotIdOf(message.classIndex, message.index), message);
    this.makeReady(message);
    return messageId(this.index, message.epoch, message.counter);
  }

  // --- dequeue ----------------------------------------------------------------

  /** Messages that may be leased now. */
  get readyCount(): number {
    return this.ready.length - this.readyHead;
  }

  /**
   * Leases the oldest ready message. With `wait`, waits for one (until the
   * queue closes: then null); otherwise null when none is ready.
   */
  async dequeue(options: { wait?: boolean } = {}): Promise<Lease | null> {
    for (;;) {
      let message = this.takeReady();
      if (message === null) {
        if (!options.wait || this.closed) return null;
        message = await new Promise<Message | null>((resolve) => this.waiters.push(resolve));
        if (message === null) return null;
      }
      const lease = await this.lease(message);
      if (lease !== null) return lease;
    }
  }

  private takeReady(): Message | null {
    if (this.readyHead === this.ready.length) return null;
    const message = this.ready[this.readyHead]!;
    this.ready[this.readyHead++] = undefined as unknown as Message;
    if (this.readyHead > 1024 && this.readyHead * 2 > this.ready.length) {
      this.ready.splice(0, this.readyHead);
      this.readyHead = 0;
    }
    return message;
  }

  private makeReady(message: Message): void {
    message.state = 'queued';
    const waiter = this.waiters.shift();
    if (waiter) waiter(message);
    else {
      this.ready.push(message);
      this.onReady?.();
    }
  }

  private async lease(message: Message): Promise<Lease | null> {
    message.state = 'leased';
    message.attempts++;
    const generation = ++message.leaseGeneration;
    let record: Uint8Array;
    try {
      record = await this.loadRecord(message);
    } catch (error) {
      message.attempts--;
      this.makeReady(message);
      throw error;
    }
    if (crc32c(record, this.sb.seed) !== message.recordCrc) {
      // Changed under us (a bug or a failing device): keep it out of the way, on disk as it is.
      this.stat.discarded++;
      this.live.delete(slotIdOf(message.classIndex, message.index));
      throw new MailqError('ECORRUPT', `message ${messageId(this.index, message.epoch, message.counter)} fails its checksum`);
    }
    // Leased + attempts is advisory (recovery treats leased as queued); not
    // waited for, and ordered before any later header write by BlockWriter.
    this.writeState(message, EntryState.Leased).catch(() => {});
    message.leaseTimer = setTimeout(() => this.expire(message, generation), this.leaseMs);
    message.leaseTimer.unref();
    return new Lease(this, message, generation, record);
  }

  /** The record bytes; for unpacked inline slots also keeps the header block image. */
  private async loadRecord(message: Message): Promise<Uint8Array> {
    const c = message.classIndex;
    const mirror = this.mirror[c];
    if (message.extentBytes > 0) {
      if (!mirror) {
        // The header block of an extent entry holds only the header.
        const image = new Uint8Array(this.bs);
        this.writeMessageHeader(image, 0, message, EntryState.Queued);
        message.image = image;
      }
      return this.readExtent(message);
    }
    if (mirror) {
      const at = message.index * this.slotBytes[c]! + HEADER_BYTES;
      return mirror.slice(at, at + message.recordBytes);
    }
    const bytes = Math.ceil((HEADER_BYTES + message.recordBytes) / this.bs) * this.bs;
    const buffer = this.pool.take(this.slotBytes[c]!);
    try {
      await this.io.read(this.slotOffset(c, message.index), buffer.subarray(0, bytes));
      message.image = buffer.slice(0, this.bs);
      return buffer.slice(HEADER_BYTES, HEADER_BYTES + message.recordBytes);
    } finally {
      this.pool.give(buffer);
    }
  }

  private async readExtent(message: Message): Promise<Uint8Array> {
    const padded = Math.ceil(message.recordBytes / this.bs) * this.bs;
    const out = new Uint8Array(padded);
    if (padded > 0) await this.io.read(message.extentOffset, out);
    return out.subarray(0, message.recordBytes);
  }

  private check(lease: Lease): Message {
    const message = lease.message;
    if (message.state !== 'leased' || message.leaseGeneration !== lease.generation) {
      throw new MailqError('ELEASE', `lease of ${lease.id} is no longer held (expired or settled)`);
    }
    if (message.leaseTimer) clearTimeout(message.leaseTimer);
    message.leaseTimer = null;
    return message;
  }

  /** @internal */
  async ack(lease: Lease): Promise<void> {
    const message = this.check(lease);
    message.state = 'removing';
    await this.writeState(message, EntryState.Removed);
    await this.committer.sync();
    // Only now, with the removal durable, may the slot and extent be reused:
    // otherwise a crash could resurrect the old (acked) message.
    this.live.delete(slotIdOf(message.classIndex, message.index));
    message.image = null;
    if (message.extentBytes > 0) this.extents.release(message.extentOffset, message.extentBytes);
    this.freeSlots[message.classIndex]!.push(message.index);
    this.stat.acked++;
  }

  /** @internal */
  async nack(lease: Lease, delayMs?: number): Promise<void> {
    const message = this.check(lease);
    this.stat.nacked++;
    await this.retry(message, delayMs ?? this.backoff(message.attempts));
  }

  private expire(message: Message, generation: number): void {
    if (message.state !== 'leased' || message.leaseGeneration !== generation) return;
    message.leaseTimer = null;
    message.leaseGeneration++;
    this.stat.leaseTimeouts++;
    this.retry(message, this.backoff(message.attempts)).catch(() => {});
  }

  /** Delay after the n-th failed attempt. */
  backoff(attempts: number): number {
    return Math.min(this.backoffMax, this.backoffBase * 2 ** Math.max(0, attempts - 1));
  }

  private async retry(message: Message, delayMs: number): Promise<void> {
    message.notBefore = this.now() + Math.max(0, delayMs);
    message.state = 'queued';
    message.leaseGeneration++;
    // Attempts and not-before survive a restart; not waited to be durable
    // (losing them only retries sooner).
    const written = this.writeState(message, EntryState.Queued);
    message.image = null;
    if (delayMs <= 0) this.makeReady(message);
    else this.pushDelayed(message);
    await written;
  }

  // --- header writes ------------------------------------------------------------

  private slotOffset(c: number, index: number): number {
    return this.slotBase[c]! + index * this.slotBytes[c]!;
  }

  private headerBlockOffset(c: number, index: number): number {
    const offset = this.slotOffset(c, index);
    return offset - (offset % this.bs);
  }

  /** Where the header sits inside its block image. */
  private headerAt(c: number, index: number): number {
    return this.slotOffset(c, index) % this.bs;
  }

  /** The mirror's view of the block holding a packed slot. */
  private packedBlock(c: number, index: number): Uint8Array {
    const perBlock = this.bs / this.slotBytes[c]!;
    const first = Math.floor(index / perBlock) * this.bs;
    return this.mirror[c]!.subarray(first, first + this.bs);
  }

  /** The header block image of a slot: the mirror's block, or a fresh block for an unpacked slot. */
  private headerImage(c: number, index: number): Uint8Array {
    return this.mirror[c] ? this.packedBlock(c, index) : new Uint8Array(this.bs);
  }

  private writeMessageHeader(image: Uint8Array, at: number, message: Message, state: EntryState): void {
    writeHeader(image, at, this.sb.seed, {
      state,
      classIndex: message.classIndex,
      flags: message.extentBytes > 0 ? FLAG_EXTENT : 0,
      epoch: message.epoch,
      counter: message.counter,
      recordBytes: message.recordBytes,
      recordCrc: message.recordCrc,
      attempts: message.attempts,
      extentBytes: message.extentBytes,
      extentOffset: message.extentOffset,
      notBefore: message.notBefore,
      enqueuedAt: message.enqueuedAt,
      slotId: slotIdOf(message.classIndex, message.index),
    });
  }

  /** Rewrites a live message's header with a new state (the record bytes in the block are unchanged). */
  private writeState(message: Message, state: EntryState): Promise<void> {
    const c = message.classIndex;
    const image = this.mirror[c] ? this.packedBlock(c, message.index) : message.image;
    if (image === null) throw new Error('mailq: no header image for an unpacked slot');
    const at = this.headerAt(c, message.index);
    patchHeader(image, at, this.sb.seed, state, message.attempts, message.notBefore);
    return this.writeBlockSoon(this.headerBlockOffset(c, message.index), image);
  }

  // --- batched submission -----------------------------------------------------------
  //
  // Writes requested during one turn of the event loop (every SMTP session
  // whose data ended in it, every ack) are submitted together from a
  // setImmediate: one doorbell (and at most one wake-up of the controller)
  // for all of them, and header changes to the same block in one write.

  private soon: Array<() => void> = [];
  private soonBlocks = new Map<number, { source: Uint8Array; settles: Array<(error: Error | null) => void> }>();
  private soonScheduled = false;

  private submitSoon(submit: () => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.soon.push(() => {
        try {
          submit().then(resolve, reject);
        } catch (error) {
          reject(error);
        }
      });
      this.scheduleSoon();
    });
  }

  private writeBlockSoon(offset: number, source: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      let entry = this.soonBlocks.get(offset);
      if (!entry) this.soonBlocks.set(offset, (entry = { source, settles: [] }));
      entry.source = source;
      entry.settles.push((error) => (error ? reject(error) : resolve()));
      this.scheduleSoon();
    });
  }

  private scheduleSoon(): void {
    if (this.soonScheduled) return;
    this.soonScheduled = true;
    setImmediate(this.submitNow);
  }

  private readonly submitNow = (): void => {
    this.soonScheduled = false;
    const jobs = this.soon;
    const blocks = this.soonBlocks;
    this.soon = [];
    this.soonBlocks = new Map();
    for (const job of jobs) job();
    for (const [offset, { source, settles }] of blocks) {
      this.blocks.write(offset, source).then(
        () => settles.forEach((settle) => settle(null)),
        (error: Error) => settles.forEach((settle) => settle(error)),
      );
    }
  };

  // --- delayed retries ------------------------------------------------------------

  private pushDelayed(message: Message): void {
    const heap = this.delayed;
    heap.push(message);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.notBefore <= heap[i]!.notBefore) break;
      [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
      i = parent;
    }
    this.armDelayTimer();
  }

  private popDelayed(): Message {
    const heap = this.delayed;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && heap[l]!.notBefore < heap[m]!.notBefore) m = l;
        if (r < heap.length && heap[r]!.notBefore < heap[m]!.notBefore) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i]!, heap[m]!];
        i = m;
      }
    }
    return top;
  }

  private armDelayTimer(): void {
    if (this.closed || this.delayed.length === 0) return;
    const at = this.delayed[0]!.notBefore;
    if (this.delayTimer !== null && at >= this.delayTimerAt) return;
    if (this.delayTimer !== null) clearTimeout(this.delayTimer);
    this.delayTimerAt = at;
    this.delayTimer = setTimeout(this.releaseDue, Math.max(0, at - this.now()));
    this.delayTimer.unref();
  }

  private readonly releaseDue = (): void => {
    this.delayTimer = null;
    this.delayTimerAt = Infinity;
    const now = this.now();
    while (this.delayed.length > 0 && this.delayed[0]!.notBefore <= now) this.makeReady(this.popDelayed());
    this.armDelayTimer();
  };

  /** Makes every dequeue waiting right now resolve null (a delivery worker stopping). */
  interruptDequeue(): void {
    for (const waiter of this.waiters.splice(0)) waiter(null);
  }

  // --- inspection and close ----------------------------------------------------------

  stats(): ShardStats {
    let leased = 0;
    for (const message of this.live.values()) if (message.state === 'leased') leased++;
    return {
      shard: this.index,
      epoch: this.epoch,
      queued: this.live.size,
      ready: this.readyCount,
      delayed: this.delayed.length,
      leased,
      freeSlots: this.freeSlots.map((free) => free.length),
      extentFreeBytes: this.extents.freeBytes,
      ...this.stat,
      flushes: this.committer.flushes,
      syncedCommits: this.committer.synced,
      headerWrites: this.blocks.writes,
    };
  }

  /** The messages in the queue, oldest first, with their contents, without leasing them (tools and tests). */
  async peek(): Promise<PeekedMessage[]> {
    const out: PeekedMessage[] = [];
    for (const message of [...this.live.values()].sort((a, b) => a.seq - b.seq)) {
      const record = await this.loadRecord(message);
      if (message.state !== 'leased') message.image = null;
      const valid = crc32c(record, this.sb.seed) === message.recordCrc;
      const { envelope, data } = valid ? decodeRecord(record) : { envelope: { from: '', to: [] }, data: new Uint8Array(0) };
      out.push({
        id: messageId(this.index, message.epoch, message.counter),
        state: message.state,
        attempts: message.attempts,
        enqueuedAt: message.enqueuedAt,
        notBefore: message.notBefore,
        slotBytes: this.slotBytes[message.classIndex]!,
        extentBytes: message.extentBytes,
        recordBytes: message.recordBytes,
        valid,
        envelope,
        data,
      });
    }
    return out;
  }

  /** Ids of the messages in the queue, oldest first (for tools and tests). */
  ids(): string[] {
    return [...this.live.values()].sort((a, b) => a.seq - b.seq).map((m) => messageId(this.index, m.epoch, m.counter));
  }

  /**
   * Stops: waiting dequeues resolve null, no new reservations; waits (up to
   * `timeoutMs`) for commits and header writes in flight. Leases still held
   * stay on disk as queued (or leased) and are retried after a restart. The
   * queue pair stays open (it belongs to the caller).
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.delayTimer) clearTimeout(this.delayTimer);
    for (const message of this.live.values()) if (message.leaseTimer) clearTimeout(message.leaseTimer);
    for (const waiter of this.waiters.splice(0)) waiter(null);
    await until(() => this.pendingCommits === 0 && !this.soonScheduled && this.blocks.idle && this.committer.idle, timeoutMs);
  }
}
