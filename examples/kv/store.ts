/**
 * A log-structured key-value store on one VSA.
 *
 * Every change is a record in the open *batch*; at the end of the event-loop
 * turn (or when the previous batch completes, whichever is later) the batch
 * becomes one frame and goes to the device as one write — group commit.
 * Frames are acknowledged strictly in log order, when their write completes
 * (`crash` durability) or completes with FUA (`power`). The index (a Map)
 * holds, per key, where its value is in the log, its expiry and the sequence
 * number of the frame that last changed it; values are cached in memory up to
 * a budget (small values always are). Opening the store scans the log from
 * its tail, discarding a torn end, and rebuilds the index. When the log fills
 * up, compaction copies the live records of its oldest part to the head,
 * moves the tail in the superblock and trims what it freed; LSNs wrap around
 * the VSA. docs/kv.md describes the format and why recovery is correct.
 */
import { randomInt } from 'node:crypto';
import type { VsaQueue, VsaRange } from '../../libstorage/index.js';
import {
  FRAME_HEADER_BYTES,
  RecordType,
  SUPERBLOCK_BYTES,
  SUPERBLOCK_SLOTS,
  asBuffer,
  decodeSuperblock,
  encodeSuperblock,
  frameIntact,
  peekFrame,
  recordBytes,
  records,
  sealFrame as sealFrameHeader,
  writeRecordHeader,
  type FrameHeader,
  type Superblock,
} from './format.js';

export type Durability = 'crash' | 'power';

export interface KvOptions {
  /**
   * `crash` (default): a write is acknowledged when the device completed it —
   * it survives any process crash. `power`: frames are written with FUA, so an
   * acknowledged write is on stable storage.
   */
  durability?: Durability;
  /** Bytes of values kept in memory beyond the always-cached small ones (default 256 MiB). */
  cacheBytes?: number;
  /** Batches (frames) in flight at once (default 4 for crash; 1 for power: the next batch grows while a FUA write runs). */
  maxInflight?: number;
  /**
   * After a frame is acknowledged, hold the next one until as many commands
   * as the acknowledged frame carried have come back (its clients' next
   * writes), or 1 ms passed: one FUA then covers every client instead of
   * alternating halves. Default: on in `power` mode.
   */
  gather?: boolean;
  /** Staging buffer per batch (default 1 MiB, at most 1/16 of the log). */
  batchBytes?: number;
  /** Compaction starts when the log is this full (default 0.5). */
  compactAt?: number;
  /** Bytes of log examined per compaction step (default 4 MiB, at most 1/8 of the log). */
  compactStepBytes?: number;
  /** Format the VSA even when it holds something that is not an empty VSA or a KV log. */
  format?: boolean;
  /** The clock for expiry, in ms since the epoch (tests). */
  now?: () => number;
}

/** Values up to this size are always in memory (INCR never needs a read). */
export const PINNED_VALUE_BYTES = 64;

export interface Entry {
  recordLsn: number;
  valueLsn: number;
  valueLength: number;
  /** ms since the epoch; 0 = no expiry. */
  expireAt: number;
  /** Sequence number of the frame that last changed this key. */
  seq: number;
  /** The value, when cached (always while its frame is not yet written). */
  value: Buffer | null;
}

export class KvError extends Error {
  constructor(
    readonly code: 'FULL' | 'TOOBIG' | 'IO' | 'CLOSED' | 'FORMAT',
    message: string,
  ) {
    super(message);
  }
}

interface Batch {
  seq: number;
  lsn: number;
  /** Registered memory (zero copy), and a Buffer view of it. */
  bytes: Uint8Array;
  buffer: Buffer;
  /** Payload bytes (records) written after the header. */
  used: number;
  recordCount: number;
  /** Commands (an atomic group counts once): how many clients this frame answers, roughly. */
  commands: number;
  frameBytes: number;
  done: boolean;
  /** A buffer of its own (a record larger than a staging buffer). */
  dedicated: boolean;
  waiters: Array<(error: Error | null) => void>;
}

export interface KvStats {
  keys: number;
  expires: number;
  logBytes: number;
  usedBytes: number;
  liveBytes: number;
  cachedBytes: number;
  head: number;
  tail: number;
  durableSeq: number;
  framesWritten: number;
  batchesWritten: number;
  recordsWritten: number;
  bytesWritten: number;
  valueReads: number;
  compactions: number;
  relocatedRecords: number;
  trimmedBytes: number;
  recoveredFrames: number;
  recoveredRecords: number;
  discardedTail: boolean;
  generation: number;
  durability: Durability;
}

const MiB = 1 << 20;
const roundUp = (value: number, unit: number) => Math.ceil(value / unit) * unit;

export class KvStore {
  readonly vsa: VsaQueue;
  readonly durability: Durability;
  readonly blockBytes: number;
  readonly logStart: number;
  readonly logBytes: number;
  readonly maxValueBytes: number;
  /** Called (once per advance) when acknowledged writes move forward. */
  onDurable: (() => void) | null = null;

  private sb: Superblock;
  private readonly index = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly cacheBudget: number;
  private readonly maxInflight: number;
  private readonly batchBytes: number;
  private readonly compactAt: number;
  private readonly compactStep: number;
  private readonly reserve: number;
  private readonly fua: boolean;
  private readonly gather: boolean;
  /** While > 0: the open batch is sealed once it holds this many commands (or the timer fires). */
  private gatherTarget = 0;
  private gatherTimer: NodeJS.Timeout | null = null;

  // Log positions (LSNs) and sequence numbers.
  private tail: number;
  private tailSeq: number;
  /** LSN where the next frame starts (after the open batch, once sealed). */
  private head: number;
  private nextSeq: number;
  private durableSeqValue: number;
  private durableLsn: number;

  private open: Batch | null = null;
  /** Inside atomic(): records must land in the open batch. */
  private atomicDepth = 0;
  private readonly sealed: Batch[] = [];
  private readonly inflight: Batch[] = [];
  private readonly freeBuffers: Uint8Array[] = [];
  private pumpScheduled = false;
  private failure: Error | null = null;
  private closed = false;
  /** Keys deleted by frames not yet acknowledged (key -> seq), for read visibility. */
  private readonly pendingDeletes = new Map<string, number>();
  /** Seq of the last FLUSH record. */
  private clearSeq = 0;
  private cached = 0;
  private liveBytes = 0;
  private expiring = 0;
  private evictCursor: Iterator<Entry> | null = null;
  // Reads of values from the log, by epoch (compaction trims only after older reads finish).
  private readEpoch = 0;
  private readonly readsByEpoch = new Map<number, number>();
  private readWaiters: Array<{ epoch: number; resolve: () => void }> = [];
  private compacting: Promise<void> | null = null;
  private compactPausedUntil = 0;
  private readonly sbBuffer: Uint8Array;
  private readonly counters = {
    framesWritten: 0,
    batchesWritten: 0,
    recordsWritten: 0,
    bytesWritten: 0,
    valueReads: 0,
    compactions: 0,
    relocatedRecords: 0,
    trimmedBytes: 0,
    recoveredFrames: 0,
    recoveredRecords: 0,
    discardedTail: false,
  };

  private constructor(vsa: VsaQueue, sb: Superblock, options: KvOptions) {
    this.vsa = vsa;
    this.sb = sb;
    this.durability = options.durability ?? 'crash';
    if (this.durability !== 'crash' && this.durability !== 'power') throw new RangeError(`durability must be crash or power`);
    this.fua = this.durability === 'power';
    this.gather = options.gather ?? this.fua;
    this.blockBytes = vsa.blockSize;
    this.logStart = sb.logStart;
    this.logBytes = sb.logBytes;
    this.now = options.now ?? Date.now;
    this.cacheBudget = options.cacheBytes ?? 256 * MiB;
    this.maxInflight = Math.max(1, options.maxInflight ?? (this.fua ? 1 : 4));
    this.batchBytes = roundUp(Math.min(options.batchBytes ?? MiB, Math.max(this.logBytes / 16, 16 * 1024)), 4096);
    this.compactAt = options.compactAt ?? 0.5;
    this.compactStep = roundUp(Math.min(options.compactStepBytes ?? 4 * MiB, this.logBytes / 8), this.blockBytes);
    this.reserve = 2 * this.compactStep + this.batchBytes + FRAME_HEADER_BYTES + this.blockBytes;
    // The largest record a client may write: it must leave room for compaction to move it.
    this.maxValueBytes = Math.max(0, Math.floor((this.logBytes - this.reserve) / 4) - 4096);
    this.tail = this.head = sb.tailLsn;
    this.tailSeq = this.nextSeq = sb.tailSeq;
    this.durableSeqValue = sb.tailSeq - 1;
    this.durableLsn = sb.tailLsn;
    this.sbBuffer = vsa.alloc(this.blockBytes);
  }

  /**
   * Opens the store on a VSA: formats a blank one, otherwise recovers the log
   * (scan from the tail, torn end discarded, index rebuilt).
   */
  static async open(vsa: VsaQueue, options: KvOptions = {}): Promise<KvStore> {
    const bs = vsa.blockSize;
    const slots = asBuffer(vsa.alloc(SUPERBLOCK_SLOTS * bs));
    try {
      await vsa.read(0, slots);
      const copies = [0, 1].map((i) => decodeSuperblock(slots.subarray(i * bs, (i + 1) * bs)));
      let sb = copies.reduce<Superblock | null>((best, c) => (c && (!best || c.counter > best.counter) ? c : best), null);
      if (sb && (sb.blockBytes !== bs || sb.logStart + sb.logBytes > vsa.size)) {
        throw new KvError('FORMAT', `the KV log on ${vsa.name} was made for another geometry`);
      }
      if (!sb) {
        const blank = slots.every((byte) => byte === 0);
        if (!blank && !options.format) {
          throw new KvError('FORMAT', `${vsa.name} holds something that is not a KV log; open with format: true to overwrite it`);
        }
        const logStart = SUPERBLOCK_SLOTS * bs;
        const logBytes = Math.floor((vsa.size - logStart) / bs) * bs;
        if (logBytes < 64 * bs) throw new KvError('FORMAT', `${vsa.name} is too small for a KV log`);
        sb = { blockBytes: bs, formatId: randomInt(1, 0xffff_ffff), counter: 0, generation: 0, logStart, logBytes, tailLsn: 0, tailSeq: 1 };
        // A fresh log: nothing of an earlier one may be read as ours.
        await vsa.trim(logStart, logBytes);
      }
      const store = new KvStore(vsa, sb, options);
      await store.recover();
      store.maybeCompact(false);
      return store;
    } finally {
      vsa.free(slots);
    }
  }

  // --- reading state ----------------------------------------------------------

  get durableSeq(): number {
    return this.durableSeqValue;
  }

  /** Sequence number of the newest staged change (acknowledged once durableSeq reaches it). */
  get stagedSeq(): number {
    if (this.open === null) return this.nextSeq - 1;
    // atomic() opens a batch before its group, which may stage nothing (a
    // DEL of absent keys): an empty batch is never written, so waiting for
    // it would wait until some later write came along.
    return this.open.recordCount > 0 ? this.open.seq : this.open.seq - 1;
  }

  get size(): number {
    return this.index.size;
  }

  get failed(): Error | null {
    return this.failure;
  }

  /** The live entry for a key (expired ones are dropped here, as Redis does lazily). */
  lookup(key: string): Entry | undefined {
    const entry = this.index.get(key);
    if (entry === undefined) return undefined;
    if (entry.expireAt !== 0 && entry.expireAt <= this.now()) {
      this.forget(key, entry);
      return undefined;
    }
    return entry;
  }

  /** The sequence number a reply about `key` must wait for (what it observed must be acknowledged first). */
  observedSeq(key: string, entry: Entry | undefined): number {
    if (entry !== undefined) return entry.seq;
    const deleted = this.pendingDeletes.size > 0 ? (this.pendingDeletes.get(key) ?? 0) : 0;
    return Math.max(deleted, this.clearSeq);
  }

  /** Reads an entry's value: from memory, or from the log (the callback runs later then). */
  readValue(entry: Entry, callback: (error: Error | null, value: Buffer | null) => void): Buffer | null {
    if (entry.value !== null) return entry.value;
    this.readFromLog(entry.valueLsn, entry.valueLength, (error, value) => {
      if (value !== null && entry.value === null && this.cached + value.length <= this.cacheBudget) {
        entry.value = value;
        this.cached += value.length;
      }
      callback(error, value);
    });
    return null;
  }

  /** Time to live in ms (-1 none, -2 no key). */
  ttlMs(entry: Entry | undefined): number {
    if (entry === undefined) return -2;
    if (entry.expireAt === 0) return -1;
    return Math.max(0, entry.expireAt - this.now());
  }

  get expiresCount(): number {
    return this.expiring;
  }

  keys(): IterableIterator<string> {
    return this.index.keys();
  }

  stats(): KvStats {
    return {
      keys: this.index.size,
      expires: this.expiring,
      logBytes: this.logBytes,
      usedBytes: this.head - this.tail,
      liveBytes: this.liveBytes,
      cachedBytes: this.cached,
      head: this.head,
      tail: this.tail,
      durableSeq: this.durableSeqValue,
      generation: this.sb.generation,
      durability: this.durability,
      ...this.counters,
    };
  }

  // --- changing state (synchronous; the returned seq is acknowledged later) --

  /** Sets a key. Returns the seq to wait for. Throws KvError FULL / TOOBIG / IO. */
  put(key: string, keyBytes: Uint8Array, value: Uint8Array, expireAt: number): number {
    const batch = this.stage(RecordType.Set, keyBytes, value, expireAt, false);
    const recordLsn = batch.lsn + FRAME_HEADER_BYTES + batch.used - recordBytes(keyBytes.length, value.length);
    let entry = this.index.get(key);
    const copy = Buffer.allocUnsafe(value.length);
    copy.set(value);
    if (entry === undefined) {
      entry = { recordLsn, valueLsn: recordLsn + recordBytes(keyBytes.length, 0), valueLength: value.length, expireAt, seq: batch.seq, value: copy };
      this.index.set(key, entry);
      if (expireAt !== 0) this.expiring++;
    } else {
      this.liveBytes -= recordBytes(keyBytes.length, entry.valueLength);
      if (entry.value !== null) this.cached -= entry.value.length;
      if ((entry.expireAt !== 0) !== (expireAt !== 0)) this.expiring += expireAt !== 0 ? 1 : -1;
      entry.recordLsn = recordLsn;
      entry.valueLsn = recordLsn + recordBytes(keyBytes.length, 0);
      entry.valueLength = value.length;
      entry.expireAt = expireAt;
      entry.seq = batch.seq;
      entry.value = copy;
    }
    this.liveBytes += recordBytes(keyBytes.length, value.length);
    this.cached += copy.length;
    if (this.cached > this.cacheBudget) this.evict();
    return batch.seq;
  }

  /** Deletes a key; returns the seq to wait for, or 0 when there was no such key. */
  remove(key: string, keyBytes: Uint8Array): number {
    const entry = this.lookup(key);
    if (entry === undefined) return 0;
    const batch = this.stage(RecordType.Del, keyBytes, null, 0, true);
    this.forget(key, entry);
    this.pendingDeletes.set(key, batch.seq);
    return batch.seq;
  }

  /** Changes a live key's expiry (0 = persist). An expiry in the past deletes the key. */
  setExpiry(key: string, keyBytes: Uint8Array, entry: Entry, expireAt: number): number {
    if (expireAt !== 0 && expireAt <= this.now()) return this.remove(key, keyBytes);
    const batch = this.stage(RecordType.Expire, keyBytes, null, expireAt, true);
    if ((entry.expireAt !== 0) !== (expireAt !== 0)) this.expiring += expireAt !== 0 ? 1 : -1;
    entry.expireAt = expireAt;
    entry.seq = batch.seq;
    return batch.seq;
  }

  /** Deletes every key (FLUSHDB). */
  clear(): number {
    const batch = this.stage(RecordType.Flush, null, null, 0, true);
    this.index.clear();
    this.pendingDeletes.clear();
    this.evictCursor = null;
    this.cached = 0;
    this.liveBytes = 0;
    this.expiring = 0;
    this.clearSeq = batch.seq;
    return batch.seq;
  }

  /** Calls back once every change up to `seq` is acknowledged (or the log failed). */
  whenDurable(seq: number, callback: (error: Error | null) => void): void {
    if (this.failure) return callback(this.failure);
    if (seq <= this.durableSeqValue) return callback(null);
    const batch = this.batchOf(seq);
    if (batch === undefined) return callback(this.failure ?? new KvError('IO', 'unknown sequence number'));
    batch.waiters.push(callback);
  }

  durable(seq: number): Promise<void> {
    return new Promise((resolve, reject) => this.whenDurable(seq, (error) => (error ? reject(error) : resolve())));
  }

  // --- the promise API for embedding (no network) ------------------------------

  async get(key: string | Uint8Array): Promise<Buffer | null> {
    const { name } = keyOf(key);
    const entry = this.lookup(name);
    if (entry === undefined) return null;
    return new Promise((resolve, reject) => {
      const value = this.readValue(entry, (error, v) => (error ? reject(error) : resolve(v)));
      if (value !== null) resolve(value);
    });
  }

  /** Sets a key and resolves once the write is acknowledged (durable per the mode). */
  async set(key: string | Uint8Array, value: string | Uint8Array, options: { expireAt?: number; ttlMs?: number } = {}): Promise<void> {
    const { name, bytes } = keyOf(key);
    const data = typeof value === 'string' ? Buffer.from(value) : value;
    const expireAt = options.expireAt ?? (options.ttlMs !== undefined ? this.now() + options.ttlMs : 0);
    let seq: number;
    try {
      seq = this.put(name, bytes, data, expireAt);
    } catch (error) {
      // Full: wait once for the compaction that this started, then try again.
      if (!(error instanceof KvError && error.code === 'FULL' && this.compacting)) throw error;
      await this.compacting;
      seq = this.put(name, bytes, data, expireAt);
    }
    await this.durable(seq);
  }

  async delete(key: string | Uint8Array): Promise<boolean> {
    const { name, bytes } = keyOf(key);
    const seq = this.remove(name, bytes);
    if (seq === 0) return false;
    await this.durable(seq);
    return true;
  }

  /** Waits for everything staged so far (without waiting to gather more). */
  async sync(): Promise<void> {
    if (this.gatherTarget > 0) {
      this.endGather();
      this.pump();
    }
    await this.durable(this.stagedSeq);
  }

  /** Waits for staged writes and compaction, then stops. Does not close the VSA. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.failure) await this.sync().catch(() => {});
    this.closed = true;
    await this.compacting?.catch(() => {});
    while (this.inflight.length > 0 || this.sealed.length > 0) await new Promise((resolve) => setTimeout(resolve, 1));
  }

  // --- staging and group commit ------------------------------------------------

  private stage(type: RecordType, key: Uint8Array | null, value: Uint8Array | null, expireAt: number, internal: boolean, relocation = false): Batch {
    if (this.failure) throw new KvError('IO', `the log failed: ${this.failure.message}`);
    if (this.closed) throw new KvError('CLOSED', 'the store is closed');
    const keyLength = key?.length ?? 0;
    const valueLength = value?.length ?? 0;
    const need = recordBytes(keyLength, valueLength);
    // Inside atomic() the whole group was checked (size and room) before its first record.
    if (this.atomicDepth === 0 && !internal && !relocation && valueLength > this.maxValueBytes) {
      throw new KvError('TOOBIG', `value of ${valueLength} bytes is larger than this log allows (${this.maxValueBytes})`);
    }
    let batch = this.open;
    const fits = batch !== null && batch.used + need <= batch.bytes.length - FRAME_HEADER_BYTES;
    if (this.atomicDepth > 0 && !fits) throw new Error('atomic group larger than its reservation');
    // Room in the log for this record (clients leave the reserve to compaction).
    const openBytes = batch !== null && fits ? batch.used : 0;
    const projected = this.head + (batch !== null && !fits ? roundUp(FRAME_HEADER_BYTES + batch.used, this.blockBytes) : 0) +
      roundUp(FRAME_HEADER_BYTES + openBytes + need, this.blockBytes) - this.tail;
    // Clients leave the reserve to compaction; deletes may dip into half of it (they free space).
    const limit = relocation ? this.logBytes - this.blockBytes : internal ? this.logBytes - this.reserve / 2 : this.logBytes - this.reserve;
    if (this.atomicDepth === 0 && projected > limit) {
      this.maybeCompact(true);
      throw new KvError('FULL', 'the log is full');
    }
    if (batch === null || !fits) {
      if (batch !== null) {
        // A full batch: nothing more to gather for it.
        this.endGather();
        this.seal(batch);
      }
      batch = this.openBatch(FRAME_HEADER_BYTES + need > this.batchBytes ? roundUp(FRAME_HEADER_BYTES + need, 4096) : 0);
    }
    const at = FRAME_HEADER_BYTES + batch.used;
    writeRecordHeader(batch.buffer, at, type, keyLength, valueLength, expireAt);
    if (key !== null) batch.buffer.set(key, at + 24);
    if (value !== null) batch.buffer.set(value, at + 24 + keyLength);
    batch.used += need;
    batch.recordCount++;
    if (this.atomicDepth === 0) batch.commands++;
    if (batch.dedicated && this.atomicDepth === 0) this.seal(batch);
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      setImmediate(this.pumpTick);
    }
    return batch;
  }

  /**
   * Runs `fn`, whose changes (records of `bytes` in all, see recordBytes)
   * land in one frame: after a crash all of them are there or none is
   * (MSET, DEL of several keys). Throws KvError FULL before changing anything;
   * `deletes` (records that free space) may use half of compaction's reserve.
   */
  atomic<T>(bytes: number, fn: () => T, deletes = false): T {
    if (this.atomicDepth > 0) return fn();
    if (this.failure) throw new KvError('IO', `the log failed: ${this.failure.message}`);
    if (bytes > this.maxValueBytes) throw new KvError('TOOBIG', `a group of ${bytes} bytes is larger than this log allows`);
    const batch = this.open;
    if (batch === null || batch.used + bytes > batch.bytes.length - FRAME_HEADER_BYTES) {
      const frame = roundUp(FRAME_HEADER_BYTES + bytes, this.blockBytes);
      const sealedOpen = batch !== null ? roundUp(FRAME_HEADER_BYTES + batch.used, this.blockBytes) : 0;
      const limit = this.logBytes - (deletes ? this.reserve / 2 : this.reserve);
      if (this.head + sealedOpen + frame - this.tail > limit) {
        this.maybeCompact(true);
        throw new KvError('FULL', 'the log is full');
      }
      if (batch !== null) this.seal(batch);
      this.openBatch(FRAME_HEADER_BYTES + bytes > this.batchBytes ? roundUp(FRAME_HEADER_BYTES + bytes, 4096) : 0);
    } else {
      const projected = this.head + roundUp(FRAME_HEADER_BYTES + batch.used + bytes, this.blockBytes) - this.tail;
      if (projected > this.logBytes - (deletes ? this.reserve / 2 : this.reserve)) {
        this.maybeCompact(true);
        throw new KvError('FULL', 'the log is full');
      }
    }
    this.atomicDepth++;
    try {
      return fn();
    } finally {
      this.atomicDepth--;
      if (this.open !== null) this.open.commands++;
      const open = this.open;
      if (open !== null && open.dedicated) this.seal(open);
    }
  }

  private openBatch(dedicatedBytes: number): Batch {
    let bytes: Uint8Array;
    if (dedicatedBytes > 0) {
      try {
        bytes = this.vsa.alloc(dedicatedBytes);
      } catch {
        throw new KvError('TOOBIG', `no registered memory for a record of ${dedicatedBytes} bytes`);
      }
    } else {
      bytes = this.freeBuffers.pop() ?? this.allocBatch();
    }
    const batch: Batch = {
      seq: this.nextSeq++,
      lsn: this.head,
      bytes,
      buffer: asBuffer(bytes),
      used: 0,
      recordCount: 0,
      commands: 0,
      frameBytes: 0,
      done: false,
      dedicated: dedicatedBytes > 0,
      waiters: [],
    };
    this.open = batch;
    return batch;
  }

  private allocBatch(): Uint8Array {
    try {
      return this.vsa.alloc(this.batchBytes);
    } catch {
      throw new KvError('FULL', 'every write buffer is waiting for the device');
    }
  }

  /** Closes the open batch into a frame: its length is fixed and the head moves past it. */
  private seal(batch: Batch): void {
    batch.frameBytes = roundUp(FRAME_HEADER_BYTES + batch.used, this.blockBytes);
    // Zero the padding (stale bytes of an earlier batch would otherwise reach the device).
    batch.buffer.fill(0, FRAME_HEADER_BYTES + batch.used, batch.frameBytes);
    this.head = batch.lsn + batch.frameBytes;
    this.sealed.push(batch);
    if (this.open === batch) this.open = null;
  }

  private readonly pumpTick = (): void => {
    this.pumpScheduled = false;
    this.pump();
  };

  /** Submits sealed batches, then the open one, while fewer than maxInflight are out. */
  private pump(): void {
    if (this.failure) return;
    while (this.inflight.length < this.maxInflight) {
      if (this.sealed.length > 0) this.submit(this.sealed.shift()!);
      else if (this.open !== null && this.open.recordCount > 0 && (this.gatherTarget === 0 || this.open.commands >= this.gatherTarget)) {
        this.endGather();
        this.seal(this.open);
      } else break;
    }
  }

  private endGather(): void {
    this.gatherTarget = 0;
    if (this.gatherTimer !== null) {
      clearTimeout(this.gatherTimer);
      this.gatherTimer = null;
    }
  }

  private readonly gatherExpired = (): void => {
    this.gatherTimer = null;
    this.gatherTarget = 0;
    this.pump();
  };

  /** Sealed frames are waiting for the device: callers should stop taking writes for a while. */
  get congested(): boolean {
    return this.sealed.length >= 4;
  }

  private submit(batch: Batch): void {
    sealFrameOf(batch, this.sb);
    this.inflight.push(batch);
    const data = batch.bytes.subarray(0, batch.frameBytes);
    const ranges = this.physical(batch.lsn, batch.frameBytes);
    const done = (error: Error | null) => this.completed(batch, error);
    this.counters.batchesWritten++;
    this.counters.framesWritten++;
    this.counters.recordsWritten += batch.recordCount;
    this.counters.bytesWritten += batch.frameBytes;
    try {
      if (ranges.length === 1) this.vsa.writeCallback(ranges[0]!.offset, data, done, { fua: this.fua });
      else this.vsa.writev([data], ranges, { fua: this.fua }).then(() => done(null), done);
    } catch (error) {
      queueMicrotask(() => done(error as Error));
    }
  }

  private completed(batch: Batch, error: Error | null): void {
    if (error !== null) return this.failLog(error);
    batch.done = true;
    let advanced = false;
    let ackedCommands = 0;
    while (this.inflight.length > 0 && this.inflight[0]!.done) {
      const head = this.inflight.shift()!;
      ackedCommands += head.commands;
      this.durableSeqValue = head.seq;
      this.durableLsn = head.lsn + head.frameBytes;
      if (head.dedicated) this.vsa.free(head.bytes);
      else this.freeBuffers.push(head.bytes);
      for (const waiter of head.waiters) waiter(null);
      advanced = true;
    }
    if (!advanced) return;
    if (this.pendingDeletes.size > 0) {
      for (const [key, seq] of this.pendingDeletes) if (seq <= this.durableSeqValue) this.pendingDeletes.delete(key);
    }
    // Replies first: the clients they release are what the next frame gathers.
    this.onDurable?.();
    if (this.gather && this.inflight.length === 0 && this.sealed.length === 0 && !this.closed) {
      this.gatherTarget = (this.open?.commands ?? 0) + ackedCommands;
      if (this.gatherTimer === null) this.gatherTimer = setTimeout(this.gatherExpired, 1);
    }
    this.pump();
    if (this.cached > this.cacheBudget) this.evict();
    this.maybeCompact(false);
  }

  private failLog(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.endGather();
    const batches = [...this.inflight, ...this.sealed, ...(this.open ? [this.open] : [])];
    this.inflight.length = 0;
    this.sealed.length = 0;
    this.open = null;
    for (const batch of batches) for (const waiter of batch.waiters) waiter(error);
    this.onDurable?.();
  }

  private batchOf(seq: number): Batch | undefined {
    if (this.open?.seq === seq) return this.open;
    return this.sealed.find((b) => b.seq === seq) ?? this.inflight.find((b) => b.seq === seq);
  }

  // --- the index ---------------------------------------------------------------

  private forget(key: string, entry: Entry): void {
    this.index.delete(key);
    if (entry.value !== null) this.cached -= entry.value.length;
    if (entry.expireAt !== 0) this.expiring--;
    this.liveBytes -= recordBytes(key.length, entry.valueLength);
  }

  /** Drops cached values (never small ones, never ones whose frame is not written) until under budget. */
  private evict(): void {
    let examined = 0;
    while (this.cached > this.cacheBudget && examined < 4096) {
      if (this.evictCursor === null) this.evictCursor = this.index.values();
      const next = this.evictCursor.next();
      if (next.done) {
        this.evictCursor = null;
        if (examined > this.index.size) return;
        continue;
      }
      examined++;
      const entry = next.value;
      if (entry.value !== null && entry.value.length > PINNED_VALUE_BYTES && entry.seq <= this.durableSeqValue) {
        this.cached -= entry.value.length;
        entry.value = null;
      }
    }
  }

  // --- log geometry and raw I/O ------------------------------------------------

  /** VSA ranges of log bytes [lsn, lsn + length): one, or two when they wrap. */
  private physical(lsn: number, length: number): VsaRange[] {
    const position = lsn % this.logBytes;
    const first = Math.min(length, this.logBytes - position);
    const ranges = [{ offset: this.logStart + position, length: first }];
    if (first < length) ranges.push({ offset: this.logStart, length: length - first });
    return ranges;
  }

  private async readLog(lsn: number, length: number, into: Uint8Array): Promise<void> {
    const ranges = this.physical(lsn, length);
    if (ranges.length === 1) await this.vsa.read(ranges[0]!.offset, into.subarray(0, length));
    else await this.vsa.readv([into.subarray(0, length)], ranges);
  }

  private readFromLog(lsn: number, length: number, callback: (error: Error | null, value: Buffer | null) => void): void {
    const bs = this.blockBytes;
    const start = Math.floor(lsn / bs) * bs;
    const span = roundUp(lsn + length, bs) - start;
    const epoch = this.readEpoch;
    this.readsByEpoch.set(epoch, (this.readsByEpoch.get(epoch) ?? 0) + 1);
    this.counters.valueReads++;
    let scratch: Uint8Array;
    try {
      scratch = this.vsa.alloc(span);
    } catch (error) {
      this.readDone(epoch);
      queueMicrotask(() => callback(error as Error, null));
      return;
    }
    const finish = (error: Error | null) => {
      let value: Buffer | null = null;
      if (error === null) {
        value = Buffer.allocUnsafe(length);
        value.set(scratch.subarray(lsn - start, lsn - start + length));
      }
      this.vsa.free(scratch);
      this.readDone(epoch);
      callback(error, value);
    };
    const ranges = this.physical(start, span);
    try {
      if (ranges.length === 1) this.vsa.readCallback(ranges[0]!.offset, scratch, finish);
      else this.vsa.readv([scratch], ranges).then(() => finish(null), finish);
    } catch (error) {
      queueMicrotask(() => finish(error as Error));
    }
  }

  private readDone(epoch: number): void {
    const left = this.readsByEpoch.get(epoch)! - 1;
    if (left > 0) {
      this.readsByEpoch.set(epoch, left);
      return;
    }
    this.readsByEpoch.delete(epoch);
    this.readWaiters = this.readWaiters.filter((w) => {
      for (const e of this.readsByEpoch.keys()) if (e <= w.epoch) return true;
      w.resolve();
      return false;
    });
  }

  /** Resolves once every value read started before now has finished. */
  private readsBefore(): Promise<void> {
    const epoch = this.readEpoch++;
    for (const e of this.readsByEpoch.keys()) {
      if (e <= epoch) return new Promise((resolve) => this.readWaiters.push({ epoch, resolve }));
    }
    return Promise.resolve();
  }

  private async writeSuperblock(changes: Partial<Superblock>): Promise<void> {
    const next: Superblock = { ...this.sb, ...changes, counter: this.sb.counter + 1 };
    const slot = next.counter % SUPERBLOCK_SLOTS;
    const block = asBuffer(this.sbBuffer);
    block.fill(0);
    encodeSuperblock(next, block.subarray(0, Math.max(SUPERBLOCK_BYTES, this.blockBytes)));
    // Always FUA: the superblock decides where recovery starts.
    await this.vsa.write(slot * this.blockBytes, this.sbBuffer, { fua: true });
    this.sb = next;
  }

  // --- recovery ------------------------------------------------------------------

  /**
   * Scans frames from the tail while each is intact and continues the one
   * before (next seq, its LSN, generation not lower), applying their records;
   * the first one that is not ends the log. Then bumps the generation
   * (durably) so that frames a crash left beyond the end can never be taken
   * for frames written from now on.
   */
  private async recover(): Promise<void> {
    const bs = this.blockBytes;
    const limit = this.tail + this.logBytes;
    const windowBytes = Math.min(4 * MiB, this.logBytes);
    let window = this.vsa.alloc(windowBytes);
    let view = asBuffer(window);
    let windowLsn = -1;
    let windowLength = 0;
    let lsn = this.tail;
    let seq = this.tailSeq;
    let generation = 0;
    try {
      for (;;) {
        if (lsn + bs > limit) break;
        // Make sure the window holds at least the frame's first block.
        if (windowLsn < 0 || lsn + FRAME_HEADER_BYTES > windowLsn + windowLength) {
          windowLength = Math.min(window.length, limit - lsn);
          await this.readLog(lsn, windowLength, window);
          windowLsn = lsn;
        }
        let at = lsn - windowLsn;
        let header = peekFrame(view.subarray(0, windowLength), at, this.sb.formatId);
        if (!header || !this.continues(header, lsn, seq, generation, limit)) break;
        const frameBytes = header.frameBlocks * bs;
        if (at + frameBytes > windowLength) {
          if (frameBytes > window.length) {
            this.vsa.free(window);
            window = this.vsa.alloc(frameBytes);
            view = asBuffer(window);
          }
          windowLength = Math.min(window.length, limit - lsn);
          await this.readLog(lsn, windowLength, window);
          windowLsn = lsn;
          at = 0;
          header = peekFrame(view.subarray(0, windowLength), 0, this.sb.formatId);
          if (!header || !this.continues(header, lsn, seq, generation, limit)) break;
        }
        if (!frameIntact(view.subarray(0, windowLength), at, header)) break;
        this.replay(view, at, header);
        this.counters.recoveredFrames++;
        generation = header.generation;
        lsn += frameBytes;
        seq++;
      }
    } finally {
      this.vsa.free(window);
    }
    // Whatever follows is a torn or never-acknowledged end: discarded.
    this.counters.discardedTail = await this.blockHasData(lsn, limit);
    this.head = this.durableLsn = lsn;
    this.nextSeq = seq;
    this.durableSeqValue = seq - 1;
    await this.writeSuperblock({ generation: Math.max(this.sb.generation, generation) + 1 });
    if (this.cached > this.cacheBudget) this.evict();
  }

  private continues(header: FrameHeader, lsn: number, seq: number, generation: number, limit: number): boolean {
    const bs = this.blockBytes;
    return (
      header.lsn === lsn &&
      header.seq === seq &&
      header.generation >= generation &&
      header.generation <= this.sb.generation &&
      header.frameBlocks >= 1 &&
      lsn + header.frameBlocks * bs <= limit &&
      FRAME_HEADER_BYTES + header.payloadBytes <= header.frameBlocks * bs
    );
  }

  private async blockHasData(lsn: number, limit: number): Promise<boolean> {
    if (lsn + this.blockBytes > limit) return false;
    const block = this.vsa.alloc(this.blockBytes);
    try {
      await this.readLog(lsn, this.blockBytes, block);
      return block.some((byte) => byte !== 0);
    } finally {
      this.vsa.free(block);
    }
  }

  private replay(view: Buffer, at: number, header: FrameHeader): void {
    const frameLsn = header.lsn;
    const now = this.now();
    for (const r of records(view, at, header)) {
      this.counters.recoveredRecords++;
      const key = view.toString('latin1', r.keyStart, r.keyStart + r.keyLength);
      const recordLsn = frameLsn + (r.start - at);
      switch (r.type) {
        case RecordType.Set: {
          const old = this.index.get(key);
          if (old) this.forget(key, old);
          if (r.expireAt !== 0 && r.expireAt <= now) break;
          const keep = r.valueLength <= PINNED_VALUE_BYTES || this.cached + r.valueLength <= this.cacheBudget;
          const value = keep ? Buffer.from(view.subarray(r.valueStart, r.valueStart + r.valueLength)) : null;
          this.index.set(key, {
            recordLsn,
            valueLsn: frameLsn + (r.valueStart - at),
            valueLength: r.valueLength,
            expireAt: r.expireAt,
            seq: header.seq,
            value,
          });
          if (value) this.cached += value.length;
          if (r.expireAt !== 0) this.expiring++;
          this.liveBytes += recordBytes(r.keyLength, r.valueLength);
          break;
        }
        case RecordType.Del: {
          const old = this.index.get(key);
          if (old) this.forget(key, old);
          break;
        }
        case RecordType.Expire: {
          const entry = this.index.get(key);
          if (!entry) break;
          if (r.expireAt !== 0 && r.expireAt <= now) {
            this.forget(key, entry);
            break;
          }
          if ((entry.expireAt !== 0) !== (r.expireAt !== 0)) this.expiring += r.expireAt !== 0 ? 1 : -1;
          entry.expireAt = r.expireAt;
          break;
        }
        case RecordType.Flush:
          this.index.clear();
          this.cached = 0;
          this.liveBytes = 0;
          this.expiring = 0;
          break;
      }
    }
  }

  // --- compaction ----------------------------------------------------------------

  private maybeCompact(urgent: boolean): void {
    if (this.compacting || this.closed || this.failure) return;
    const used = this.head - this.tail;
    if (used < this.compactAt * this.logBytes) return;
    if (!urgent && this.head < this.compactPausedUntil) return;
    this.compacting = this.compact()
      .catch((error) => {
        // The log full even for compaction's copies: try again after more deletes.
        if (error instanceof KvError && error.code === 'FULL') this.compactPausedUntil = this.head + this.compactStep;
        else this.failLog(error as Error);
      })
      .finally(() => {
        this.compacting = null;
      });
  }

  /** Runs steps until the log is below the threshold or a step frees too little. */
  private async compact(): Promise<void> {
    const low = this.compactAt * this.logBytes * 0.75;
    while (!this.closed && !this.failure && this.head - this.tail > low) {
      const result = await this.compactOnce();
      if (result.examined === 0) return;
      if (result.freed < result.examined / 8) {
        // Mostly live: try again after another step's worth of writes.
        this.compactPausedUntil = this.head + this.compactStep;
        return;
      }
    }
  }

  /**
   * One step: read the oldest frames, stage copies of their live records at
   * the head, wait until those are acknowledged, flush, move the tail in the
   * superblock, wait for older value reads, trim the freed range.
   */
  async compactOnce(): Promise<{ examined: number; freed: number }> {
    const bs = this.blockBytes;
    const start = this.tail;
    const available = this.durableLsn - start;
    if (available < bs) return { examined: 0, freed: 0 };
    let length = Math.min(this.compactStep, available);
    let scratch = this.vsa.alloc(length);
    try {
      await this.readLog(start, length, scratch);
      let view = asBuffer(scratch);
      let header = peekFrame(view, 0, this.sb.formatId);
      if (!header) throw new KvError('IO', `compaction: no frame at the tail (LSN ${start})`);
      if (header.frameBlocks * bs > length) {
        // One frame larger than a step: take it whole.
        length = header.frameBlocks * bs;
        this.vsa.free(scratch);
        scratch = this.vsa.alloc(length);
        await this.readLog(start, length, scratch);
        view = asBuffer(scratch);
        header = peekFrame(view, 0, this.sb.formatId)!;
      }
      let at = 0;
      let lastSeq = -1;
      let relocatedBytes = 0;
      let lastStaged = 0;
      const now = this.now();
      let expectSeq = this.tailSeq;
      while (header && at + header.frameBlocks * bs <= length && header.lsn === start + at && header.seq === expectSeq) {
        expectSeq++;
        if (!frameIntact(view, at, header)) throw new KvError('IO', `compaction: frame ${header.seq} at LSN ${header.lsn} is damaged`);
        for (const r of records(view, at, header)) {
          if (r.type !== RecordType.Set) continue;
          const key = view.toString('latin1', r.keyStart, r.keyStart + r.keyLength);
          const entry = this.index.get(key);
          const recordLsn = start + r.start;
          if (!entry || entry.recordLsn !== recordLsn || (entry.expireAt !== 0 && entry.expireAt <= now)) continue;
          const keyBytes = view.subarray(r.keyStart, r.keyStart + r.keyLength);
          const value = view.subarray(r.valueStart, r.valueStart + r.valueLength);
          const batch = this.stage(RecordType.Set, keyBytes, value, entry.expireAt, true, true);
          const newLsn = batch.lsn + FRAME_HEADER_BYTES + batch.used - recordBytes(r.keyLength, r.valueLength);
          entry.recordLsn = newLsn;
          entry.valueLsn = newLsn + recordBytes(r.keyLength, 0);
          entry.seq = batch.seq;
          if (entry.value === null) {
            // Readable from memory until the copy is written.
            entry.value = Buffer.from(value);
            this.cached += value.length;
          }
          lastStaged = batch.seq;
          relocatedBytes += recordBytes(r.keyLength, r.valueLength);
          this.counters.relocatedRecords++;
        }
        lastSeq = header.seq;
        at += header.frameBlocks * bs;
        header = at + FRAME_HEADER_BYTES <= length ? peekFrame(view, at, this.sb.formatId) : null;
      }
      if (lastSeq < 0) return { examined: 0, freed: 0 };
      const end = start + at;
      if (lastStaged > 0) await this.durable(lastStaged);
      await this.vsa.flush();
      await this.writeSuperblock({ tailLsn: end, tailSeq: lastSeq + 1 });
      this.tail = end;
      this.tailSeq = lastSeq + 1;
      await this.readsBefore();
      for (const range of this.physical(start, at)) await this.vsa.trim(range.offset, range.length);
      this.counters.compactions++;
      this.counters.trimmedBytes += at;
      if (this.cached > this.cacheBudget) this.evict();
      return { examined: at, freed: at - relocatedBytes };
    } finally {
      this.vsa.free(scratch);
    }
  }
}

function sealFrameOf(batch: Batch, sb: Superblock): void {
  sealFrameHeader(batch.buffer, 0, {
    formatId: sb.formatId,
    generation: sb.generation,
    seq: batch.seq,
    lsn: batch.lsn,
    frameBlocks: batch.frameBytes / sb.blockBytes,
    payloadBytes: batch.used,
    recordCount: batch.recordCount,
  });
}

function keyOf(key: string | Uint8Array): { name: string; bytes: Uint8Array } {
  if (typeof key === 'string') {
    const bytes = Buffer.from(key);
    return { name: bytes.toString('latin1'), bytes };
  }
  return { name: asBuffer(key).toString('latin1'), bytes: key };
}
