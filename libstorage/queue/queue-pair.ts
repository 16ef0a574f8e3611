/**
 * One NVMe queue pair driven from JavaScript: an SQ ring and a CQ ring in
 * registered DMA memory, command identifiers, phase tags, batched doorbells.
 *
 * The hot path allocates nothing and makes no syscall: reserve() hands out a
 * command id and the SQE's offset in the ring, the caller writes the SQE in
 * place (sq32 / sqView), commit() publishes it, ring() stores the tail
 * doorbell once per batch, reap() finds completions by their phase bit and
 * hands each to `onCompletion` — after the loop has finished and the CQ head
 * doorbell is written, never in the middle of reaping (no re-entrancy).
 *
 * submit() is the convenience form with a callback per command; when the SQ
 * is full it parks the command and submits it as completions free space.
 */
import {
  CQE_SIZE_BYTES,
  SQE_CID_OFFSET,
  SQE_SIZE_BYTES,
  cqHeadDoorbellOffset,
  sqTailDoorbellOffset,
} from '../nvme/spec.js';
import type { DmaBuffer } from '../dma.js';

/** status16 is the CQE STATUS field with the phase bit cleared (0 = success). */
export type CompletionCallback = (status16: number, dw0: number, dw1: number) => void;
export type CompletionHandler = (cid: number, status16: number, dw0: number, dw1: number) => void;

/** Fills the 64-byte SQE at view[offset..offset+64); the command id is set afterwards. */
export type SqeWriter = (sqe: DataView, offset: number, cid: number) => void;

export interface QueuePairOptions {
  sqid: number;
  cqid: number;
  entries: number;
  sqRing: DmaBuffer;
  cqRing: DmaBuffer;
  /** BAR0 (registers + doorbells). */
  bar: ArrayBuffer;
  dstrd: number;
  /** Called after each doorbell store (wakes a sleeping controller). */
  notify: () => void;
}

interface Parked {
  write: SqeWriter;
  callback: CompletionCallback;
}

export class QueuePair {
  readonly sqid: number;
  readonly cqid: number;
  readonly entries: number;
  /** Most commands outstanding at once (one ring slot always stays empty). */
  readonly depth: number;
  readonly sqRing: DmaBuffer;
  readonly cqRing: DmaBuffer;
  /** The SQ ring, for writing SQEs in place after reserve(). */
  readonly sqView: DataView;
  readonly sq32: Uint32Array;
  /** Byte offset in the SQ ring of the SQE reserve() handed out last. */
  sqeOffset = 0;
  /** Receives every completion; the default dispatches to submit()'s callbacks. */
  onCompletion: CompletionHandler;

  private readonly cq16: Uint16Array;
  private readonly cq32: Uint32Array;
  private readonly doorbells: Uint32Array;
  private readonly sqDoorbellIndex: number;
  private readonly cqDoorbellIndex: number;
  private readonly notify: () => void;

  // No SQ head is kept: at most depth = entries - 1 commands are out (one
  // per command id), and an id comes back only with its completion, after
  // the controller has consumed its SQE, so the SQ can never overflow.
  private sqTail = 0;
  private cqHead = 0;
  private phase = 1;
  private unrung = 0;
  private readonly freeCids: Uint16Array;
  private freeCidCount: number;
  private readonly callbacks: Array<CompletionCallback | undefined>;
  private readonly parked: Parked[] = [];
  private readonly reapedCid: Uint16Array;
  private readonly reapedStatus: Uint16Array;
  private readonly reapedDw0: Uint32Array;
  private readonly reapedDw1: Uint32Array;

  constructor(options: QueuePairOptions) {
    this.sqid = options.sqid;
    this.cqid = options.cqid;
    this.entries = options.entries;
    this.depth = this.entries - 1;
    this.sqRing = options.sqRing;
    this.cqRing = options.cqRing;
    const sq = options.sqRing.bytes;
    const cq = options.cqRing.bytes;
    if (sq.byteLength < this.entries * SQE_SIZE_BYTES || cq.byteLength < this.entries * CQE_SIZE_BYTES) {
      throw new RangeError('queue rings are smaller than entries');
    }
    this.sqView = new DataView(sq.buffer, sq.byteOffset, this.entries * SQE_SIZE_BYTES);
    this.sq32 = new Uint32Array(sq.buffer, sq.byteOffset, (this.entries * SQE_SIZE_BYTES) / 4);
    this.cq16 = new Uint16Array(cq.buffer, cq.byteOffset, (this.entries * CQE_SIZE_BYTES) / 2);
    this.cq32 = new Uint32Array(cq.buffer, cq.byteOffset, (this.entries * CQE_SIZE_BYTES) / 4);
    this.doorbells = new Uint32Array(options.bar);
    this.sqDoorbellIndex = sqTailDoorbellOffset(this.sqid, options.dstrd) / 4;
    this.cqDoorbellIndex = cqHeadDoorbellOffset(this.cqid, options.dstrd) / 4;
    this.notify = options.notify;
    this.freeCids = new Uint16Array(this.depth);
    for (let i = 0; i < this.depth; i++) this.freeCids[i] = this.depth - 1 - i;
    this.freeCidCount = this.depth;
    this.callbacks = new Array(this.depth).fill(undefined);
    this.reapedCid = new Uint16Array(this.depth);
    this.reapedStatus = new Uint16Array(this.depth);
    this.reapedDw0 = new Uint32Array(this.depth);
    this.reapedDw1 = new Uint32Array(this.depth);
    this.onCompletion = this.dispatch;
  }

  /** Commands submitted (or parked) whose completion has not been delivered. */
  get outstanding(): number {
    return this.depth - this.freeCidCount + this.parked.length;
  }

  /** Free command slots right now. */
  get available(): number {
    return this.parked.length > 0 ? 0 : this.freeCidCount;
  }

  /**
   * Takes a command id and the next SQ slot: the SQE at sqeOffset must be
   * fully written (it is zeroed here) and then commit()ted. Returns -1 when
   * the queue is full.
   */
  reserve(): number {
    if (this.freeCidCount === 0) return -1;
    const cid = this.freeCids[--this.freeCidCount]!;
    const offset = this.sqTail * SQE_SIZE_BYTES;
    this.sq32.fill(0, offset >> 2, (offset >> 2) + 16);
    this.sqeOffset = offset;
    this.sqView.setUint16(offset + SQE_CID_OFFSET, cid, true);
    return cid;
  }

  /** Gives back a command id from reserve() that will not be committed. */
  cancel(cid: number): void {
    this.freeCids[this.freeCidCount++] = cid;
  }

  /** Publishes the SQE reserve() handed out (the doorbell waits for ring()). */
  commit(): void {
    this.sqTail = this.sqTail + 1 === this.entries ? 0 : this.sqTail + 1;
    this.unrung++;
  }

  /** Writes a command with a callback, or parks it while the queue is full. */
  submit(write: SqeWriter, callback: CompletionCallback): void {
    if (this.parked.length > 0 || !this.place(write, callback)) this.parked.push({ write, callback });
  }

  private place(write: SqeWriter, callback: CompletionCallback): boolean {
    const cid = this.reserve();
    if (cid < 0) return false;
    write(this.sqView, this.sqeOffset, cid);
    this.sqView.setUint16(this.sqeOffset + SQE_CID_OFFSET, cid, true);
    this.callbacks[cid] = callback;
    this.commit();
    return true;
  }

  private readonly dispatch: CompletionHandler = (cid, status16, dw0, dw1) => {
    const callback = this.callbacks[cid];
    this.callbacks[cid] = undefined;
    callback?.(status16, dw0, dw1);
  };

  /** Publishes every command committed since the last ring with one doorbell store. */
  ring(): void {
    if (this.unrung === 0) return;
    this.unrung = 0;
    // Atomics.store is sequentially consistent: the SQE bytes written before
    // are visible before the tail, and the store is ordered before notify()'s
    // load of the poller's sleep flag (the lost-wake-up handshake).
    Atomics.store(this.doorbells, this.sqDoorbellIndex, this.sqTail);
    this.notify();
  }

  /** Consumes every new CQE, then delivers them. Returns how many. */
  reap(): number {
    let count = 0;
    let head = this.cqHead;
    let phase = this.phase;
    const entries = this.entries;
    const cq16 = this.cq16;
    for (;;) {
      // The status halfword (with the phase tag) is written last by the
      // controller; an atomic load keeps it ordered before the body loads.
      const status = Atomics.load(cq16, head * 8 + 7);
      if ((status & 1) !== phase) break;
      const cid = cq16[head * 8 + 6]!;
      if (cid < this.depth && count < this.depth) {
        this.reapedCid[count] = cid;
        this.reapedStatus[count] = status & 0xfffe;
        this.reapedDw0[count] = this.cq32[head * 4]!;
        this.reapedDw1[count] = this.cq32[head * 4 + 1]!;
        count++;
      }
      if (++head === entries) {
        head = 0;
        phase ^= 1;
      }
    }
    if (head === this.cqHead && phase === this.phase) return 0;
    this.cqHead = head;
    this.phase = phase;
    Atomics.store(this.doorbells, this.cqDoorbellIndex, head);
    // Each id goes back just before its completion is delivered: a handler
    // reads its per-command state first, and a callback that submits at once
    // can only reuse ids whose completions were already delivered.
    for (let i = 0; i < count; i++) {
      const cid = this.reapedCid[i]!;
      this.freeCids[this.freeCidCount++] = cid;
      this.onCompletion(cid, this.reapedStatus[i]!, this.reapedDw0[i]!, this.reapedDw1[i]!);
    }
    while (this.parked.length > 0) {
      const next = this.parked[0]!;
      if (!this.place(next.write, next.callback)) break;
      this.parked.shift();
    }
    this.ring();
    return count;
  }

  /**
   * Completes every outstanding and parked command with the given status,
   * without the controller (it died or was reset), so every caller hears back.
   */
  failAll(status16: number): number {
    let failed = 0;
    const inFlight: number[] = [];
    const isFree = new Uint8Array(this.depth);
    for (let i = 0; i < this.freeCidCount; i++) isFree[this.freeCids[i]!] = 1;
    for (let cid = 0; cid < this.depth; cid++) if (!isFree[cid]) inFlight.push(cid);
    for (const cid of inFlight) {
      this.freeCids[this.freeCidCount++] = cid;
      this.onCompletion(cid, status16, 0, 0);
      failed++;
    }
    for (const parked of this.parked.splice(0)) {
      parked.callback(status16, 0, 0);
      failed++;
    }
    return failed;
  }
}
