/**
 * One NVMe queue pair driven from JavaScript: an SQ ring and a CQ ring in
 * registered DMA memory, command identifiers, phase tags, batched doorbells.
 *
 * Per command this does no allocation and no syscall: the SQE is written in
 * place, the tail doorbell is one store per batch (ring()), completions are
 * found by their phase bit. A full SQ (or no free command id) parks the
 * command and submits it as completions free space — it never fails.
 * Callbacks run after the reap loop has finished and the CQ head doorbell
 * has been written, never in the middle of reaping (no re-entrancy).
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

/** Fills the 64-byte SQE at sqe[offset..offset+64); the command id is set afterwards. */
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
  readonly sqRing: DmaBuffer;
  readonly cqRing: DmaBuffer;

  private readonly sqView: DataView;
  private readonly cq16: Uint16Array;
  private readonly cq32: Uint32Array;
  private readonly doorbells: Uint32Array;
  private readonly sqDoorbellIndex: number;
  private readonly cqDoorbellIndex: number;
  private readonly notify: () => void;

  private sqTail = 0;
  private sqHead = 0;
  private cqHead = 0;
  private phase = 1;
  private unrungSubmissions = 0;
  // Command ids: a stack of free ids; callbacks indexed by id.
  private readonly freeCids: Uint16Array;
  private freeCidCount: number;
  private readonly callbacks: Array<CompletionCallback | undefined>;
  private readonly parked: Parked[] = [];
  // Completions gathered by reap(), delivered after the loop.
  private readonly reapedCallbacks: Array<CompletionCallback | undefined>;
  private readonly reapedStatus: Uint16Array;
  private readonly reapedDw0: Uint32Array;
  private readonly reapedDw1: Uint32Array;

  constructor(options: QueuePairOptions) {
    this.sqid = options.sqid;
    this.cqid = options.cqid;
    this.entries = options.entries;
    this.sqRing = options.sqRing;
    this.cqRing = options.cqRing;
    const sq = options.sqRing.bytes;
    const cq = options.cqRing.bytes;
    if (sq.byteLength < this.entries * SQE_SIZE_BYTES || cq.byteLength < this.entries * CQE_SIZE_BYTES) {
      throw new RangeError('queue rings are smaller than entries');
    }
    this.sqView = new DataView(sq.buffer, sq.byteOffset, this.entries * SQE_SIZE_BYTES);
    this.cq16 = new Uint16Array(cq.buffer, cq.byteOffset, (this.entries * CQE_SIZE_BYTES) / 2);
    this.cq32 = new Uint32Array(cq.buffer, cq.byteOffset, (this.entries * CQE_SIZE_BYTES) / 4);
    this.doorbells = new Uint32Array(options.bar);
    this.sqDoorbellIndex = sqTailDoorbellOffset(this.sqid, options.dstrd) / 4;
    this.cqDoorbellIndex = cqHeadDoorbellOffset(this.cqid, options.dstrd) / 4;
    this.notify = options.notify;
    // One slot stays empty (a full ring would look empty), so at most
    // entries - 1 commands are outstanding.
    const slots = this.entries - 1;
    this.freeCids = new Uint16Array(slots);
    for (let i = 0; i < slots; i++) this.freeCids[i] = slots - 1 - i;
    this.freeCidCount = slots;
    this.callbacks = new Array(slots).fill(undefined);
    this.reapedCallbacks = new Array(slots).fill(undefined);
    this.reapedStatus = new Uint16Array(slots);
    this.reapedDw0 = new Uint32Array(slots);
    this.reapedDw1 = new Uint32Array(slots);
  }

  /** Commands submitted (or parked) whose completion has not been delivered. */
  get outstanding(): number {
    return this.entries - 1 - this.freeCidCount + this.parked.length;
  }

  /**
   * Writes a command into the SQ (or parks it if the SQ is full). The
   * doorbell is not rung: call ring() once per batch.
   */
  submit(write: SqeWriter, callback: CompletionCallback): void {
    if (this.parked.length > 0 || !this.place(write, callback)) this.parked.push({ write, callback });
  }

  private place(write: SqeWriter, callback: CompletionCallback): boolean {
    const next = this.sqTail + 1 === this.entries ? 0 : this.sqTail + 1;
    if (next === this.sqHead || this.freeCidCount === 0) return false;
    const cid = this.freeCids[--this.freeCidCount]!;
    const offset = this.sqTail * SQE_SIZE_BYTES;
    write(this.sqView, offset, cid);
    this.sqView.setUint16(offset + SQE_CID_OFFSET, cid, true);
    this.callbacks[cid] = callback;
    this.sqTail = next;
    this.unrungSubmissions++;
    return true;
  }

  /** Publishes every command written since the last ring with one doorbell store. */
  ring(): void {
    if (this.unrungSubmissions === 0) return;
    this.unrungSubmissions = 0;
    // Atomics.store is sequentially consistent: the SQE bytes written above
    // are visible before the tail, and the store is ordered before notify()'s
    // load of the poller's sleep flag (the lost-wake-up handshake).
    Atomics.store(this.doorbells, this.sqDoorbellIndex, this.sqTail);
    this.notify();
  }

  /**
   * Consumes every new CQE, then delivers their callbacks. Returns how many
   * completions were delivered.
   */
  reap(): number {
    let count = 0;
    let head = this.cqHead;
    let phase = this.phase;
    const entries = this.entries;
    for (;;) {
      // The status halfword (with the phase tag) is written last by the
      // controller; an atomic load keeps it ordered before the body loads.
      const status = Atomics.load(this.cq16, head * 8 + 7);
      if ((status & 1) !== phase) break;
      const cid = this.cq16[head * 8 + 6]!;
      this.sqHead = this.cq16[head * 8 + 4]!;
      const callback = this.callbacks[cid];
      this.callbacks[cid] = undefined;
      if (callback !== undefined) {
        this.reapedCallbacks[count] = callback;
        this.reapedStatus[count] = status & 0xfffe;
        this.reapedDw0[count] = this.cq32[head * 4]!;
        this.reapedDw1[count] = this.cq32[head * 4 + 1]!;
        this.freeCids[this.freeCidCount++] = cid;
        count++;
      }
      head++;
      if (head === entries) {
        head = 0;
        phase ^= 1;
      }
    }
    if (head === this.cqHead && phase === this.phase) return 0;
    this.cqHead = head;
    this.phase = phase;
    Atomics.store(this.doorbells, this.cqDoorbellIndex, head);
    // Parked work moves in now that slots are free; one doorbell for all.
    while (this.parked.length > 0) {
      const next = this.parked[0]!;
      if (!this.place(next.write, next.callback)) break;
      this.parked.shift();
    }
    this.ring();
    for (let i = 0; i < count; i++) {
      const callback = this.reapedCallbacks[i]!;
      this.reapedCallbacks[i] = undefined;
      callback(this.reapedStatus[i]!, this.reapedDw0[i]!, this.reapedDw1[i]!);
    }
    return count;
  }

  /**
   * Completes every outstanding and parked command with the given status,
   * without the controller (it died or was reset). Used on close and on
   * controller failure so every caller hears back.
   */
  failAll(status16: number): number {
    const pending: CompletionCallback[] = [];
    for (let cid = 0; cid < this.callbacks.length; cid++) {
      const callback = this.callbacks[cid];
      if (callback === undefined) continue;
      this.callbacks[cid] = undefined;
      this.freeCids[this.freeCidCount++] = cid;
      pending.push(callback);
    }
    for (const parked of this.parked.splice(0)) pending.push(parked.callback);
    for (const callback of pending) callback(status16, 0, 0);
    return pending.length;
  }
}
