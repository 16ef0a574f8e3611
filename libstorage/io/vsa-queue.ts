/**
 * The I/O API of a VSA on one queue pair: what an application thread (the
 * main thread or a worker) uses. Requests become NVMe commands here: split at
 * MDTS, scatter-gather expressed as PRPs (or SGLs when the memory layout
 * needs them and the controller has them), ordinary buffers bounced through
 * registered memory. Completions are polled while I/O is outstanding and
 * waited for on the interrupt eventfd once the queue goes quiet; with nothing
 * outstanding nothing runs at all.
 */
import { DMA_PAGE_BYTES, type DmaBuffer, type DmaRegion } from '../dma.js';
import { statusError } from '../driver/command-error.js';
import { StorageError } from '../errors.js';
import { native, DISCONNECT, READABLE, type FdWatcher } from '../native.js';
import {
  CQE_SIZE_BYTES,
  CSTS_CFS_SHIFT,
  DSM_MAX_RANGES,
  NvmOpcode,
  REG_CSTS_OFFSET,
  SQE_SIZE_BYTES,
} from '../nvme/spec.js';
import { QueuePair } from '../queue/queue-pair.js';
import { OP_NAMES, Op, RequestFifo, RequestPool, type IoCallback, type Request } from './request.js';

/** What a queue needs to know about its VSA and controller. */
export interface VsaGeometry {
  name: string;
  nsid: number;
  blockBytes: number;
  blocks: number;
  /** Largest data transfer per command (MDTS). */
  maxTransferBytes: number;
  /** The controller accepts SGLs for I/O. */
  sgl: boolean;
}

export interface QueueSetup {
  geometry: VsaGeometry;
  bar: ArrayBuffer;
  dstrd: number;
  notify: () => void;
  /** Holds the rings, one list page per command, and the buffer pool. */
  region: DmaRegion;
  sqid: number;
  entries: number;
  /** eventfd the controller signals for this queue's CQ, or -1 (poll only). */
  interruptFd: number;
  /** A socket whose hang-up means the controller is gone (workers), or -1. */
  lifelineFd: number;
  /** Descriptors this queue owns and closes with itself. */
  ownedFds?: number[];
  /** Runs once after close (e.g. unmapping what this thread mapped). */
  release?: () => void;
}

export interface WriteOptions {
  /** Force Unit Access: durable before the write completes. */
  fua?: boolean;
}

/** Polls on consecutive event-loop turns before waiting for the interrupt. */
const EAGER_POLLS = 64;
/**
 * Without an interrupt vector the queue keeps polling on every loop turn for
 * this long after the last completion before it backs off to timers (whose
 * 1 ms floor would otherwise be the latency of every quiet-queue command).
 */
const POLL_ONLY_EAGER_MS = 2;
/** While waiting with I/O outstanding, how often the controller's health is checked. */
const HEALTH_CHECK_MS = 100;
const CSTS_WORD = REG_CSTS_OFFSET / 4;
const CSTS_CFS = 1 << CSTS_CFS_SHIFT;
const LIST_ENTRIES = DMA_PAGE_BYTES / 8;
const MAX_WRITE_ZEROES_BLOCKS = 65536;
const MAX_DSM_RANGE_BLOCKS = 0xffffffff;

const pages = (bytes: number) => Math.ceil(bytes / DMA_PAGE_BYTES) * DMA_PAGE_BYTES;

/**
 * Layout of a queue region, the same in every thread: SQ ring, CQ ring, one
 * list page per command id, then the buffer pool. (The constructor allocates
 * in this order from a fresh region, which places them exactly here.)
 */
export function queueRegionLayout(entries: number, poolBytes: number): { sqOffset: number; cqOffset: number; regionBytes: number } {
  const cqOffset = pages(entries * SQE_SIZE_BYTES);
  const listsOffset = cqOffset + pages(entries * CQE_SIZE_BYTES);
  return { sqOffset: 0, cqOffset, regionBytes: listsOffset + (entries - 1) * DMA_PAGE_BYTES + pages(poolBytes) };
}

export class VsaQueue {
  readonly name: string;
  readonly blockSize: number;
  readonly blocks: number;
  readonly size: number;
  readonly queue: QueuePair;
  private readonly geometry: VsaGeometry;
  private readonly region: DmaRegion;
  private readonly lists: DmaBuffer;
  private readonly list32: Uint32Array;
  private readonly maxTransferBytes: number;
  // Per command id: its request, and a bounce buffer if it has one.
  private readonly cmdRequest: Array<Request | undefined>;
  private readonly cmdBounce: Array<DmaBuffer | undefined>;
  private readonly cmdBufIndex: Uint32Array;
  private readonly cmdBufDone: Float64Array;
  private readonly cmdOffset: Float64Array;
  // Scratch for the pieces of one command's memory.
  private readonly pieceView: Uint8Array[] = [];
  private readonly pieceIova = new Float64Array(LIST_ENTRIES + 1);
  private readonly pieceLength = new Float64Array(LIST_ENTRIES + 1);
  private readonly pool = new RequestPool();
  private readonly waiting = new RequestFifo();
  /** The CQ's interrupt eventfd, or -1 when the queue only polls. */
  readonly interruptFd: number;
  private interruptWatcher: FdWatcher | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private readonly registers: Uint32Array;
  private lifelineWatcher: FdWatcher | undefined;
  private pollScheduled = false;
  private ringScheduled = false;
  private idlePolls = 0;
  private lastProgressMs = 0;
  private failure: StorageError | undefined;
  private closing = false;
  private drainWaiters: Array<() => void> = [];
  private readonly ownedFds: number[];
  private readonly release: (() => void) | undefined;

  constructor(setup: QueueSetup) {
    this.geometry = setup.geometry;
    this.name = setup.geometry.name;
    this.blockSize = setup.geometry.blockBytes;
    this.blocks = setup.geometry.blocks;
    this.size = this.blocks * this.blockSize;
    this.region = setup.region;
    this.registers = new Uint32Array(setup.bar, 0, 16);
    this.maxTransferBytes = Math.min(setup.geometry.maxTransferBytes || 1 << 20, (LIST_ENTRIES - 1) * DMA_PAGE_BYTES);
    // Allocation order fixes the layout, so a worker adopting the region
    // finds the rings where the controller was told they are.
    const sqRing = this.region.alloc(setup.entries * SQE_SIZE_BYTES);
    const cqRing = this.region.alloc(setup.entries * CQE_SIZE_BYTES);
    const layout = queueRegionLayout(setup.entries, 0);
    if (sqRing.iova !== this.region.iova + layout.sqOffset || cqRing.iova !== this.region.iova + layout.cqOffset) {
      throw new StorageError('EINVAL', 'a queue region must be fresh (its rings go first)');
    }
    this.lists = this.region.alloc((setup.entries - 1) * DMA_PAGE_BYTES);
    this.list32 = new Uint32Array(this.lists.bytes.buffer, this.lists.bytes.byteOffset, this.lists.bytes.byteLength / 4);
    this.queue = new QueuePair({
      sqid: setup.sqid,
      cqid: setup.sqid,
      entries: setup.entries,
      sqRing,
      cqRing,
      bar: setup.bar,
      dstrd: setup.dstrd,
      notify: setup.notify,
    });
    const depth = this.queue.depth;
    this.cmdRequest = new Array(depth).fill(undefined);
    this.cmdBounce = new Array(depth).fill(undefined);
    this.cmdBufIndex = new Uint32Array(depth);
    this.cmdBufDone = new Float64Array(depth);
    this.cmdOffset = new Float64Array(depth);
    this.queue.onCompletion = this.complete;
    this.interruptFd = setup.interruptFd;
    this.ownedFds = setup.ownedFds ?? [];
    this.release = setup.release;
    if (setup.lifelineFd >= 0) {
      this.lifelineWatcher = new native.FdWatcher(setup.lifelineFd, () =>
        this.fail(new StorageError('ECONNRESET', `VSA ${this.name}: the controller went away`)),
      );
      this.lifelineWatcher.start(DISCONNECT);
      this.lifelineWatcher.unref();
    }
  }

  // --- memory ---------------------------------------------------------------

  /** Memory the controller reads and writes directly (zero copy). Whole pages. */
  alloc(bytes: number): Uint8Array {
    if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new RangeError('bytes must be a positive integer');
    return this.region.alloc(bytes).bytes;
  }

  /** Returns memory from alloc() to the pool. */
  free(buffer: Uint8Array): void {
    const iova = this.iovaOf(buffer, 0);
    if (iova < 0 || buffer.byteOffset % DMA_PAGE_BYTES !== 0) throw new RangeError('not a buffer from alloc()');
    this.region.release({ bytes: buffer, iova });
  }

  /** The IOVA of view[offset], or -1 when the view is not registered memory. */
  private iovaOf(view: Uint8Array, offset: number): number {
    return view.buffer === this.region.buffer ? this.region.iova + view.byteOffset + offset : -1;
  }

  // --- the API --------------------------------------------------------------

  read(offset: number, buffer: Uint8Array): Promise<void> {
    return this.promise(this.start(Op.Read, false).withBuffer(buffer, offset, 'read'));
  }

  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    return this.promise(this.start(Op.Write, options?.fua === true).withBuffer(data, offset, 'write'));
  }

  /**
   * Scatter-gather: the memory views, taken in order as one stream, are
   * read from the VSA ranges, taken in order as one stream. Lengths must
   * add up to the same total.
   */
  readv(buffers: readonly Uint8Array[], ranges: readonly VsaRange[]): Promise<void> {
    return this.promise(this.start(Op.Read, false).withVectors(buffers, ranges, 'readv'));
  }

  writev(buffers: readonly Uint8Array[], ranges: readonly VsaRange[], options?: WriteOptions): Promise<void> {
    return this.promise(this.start(Op.Write, options?.fua === true).withVectors(buffers, ranges, 'writev'));
  }

  /** Makes every completed write durable. */
  flush(): Promise<void> {
    return this.promise(this.start(Op.Flush, false).request);
  }

  /** Deallocates a byte range: it reads as zeroes and its space goes back to the pool. */
  trim(offset: number, length: number): Promise<void> {
    return this.promise(this.start(Op.Trim, false).withRange(offset, length, 'trim'));
  }

  writeZeroes(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.promise(this.start(Op.WriteZeroes, options?.fua === true).withRange(offset, length, 'writeZeroes'));
  }

  // Callback forms: no Promise per I/O; the callback runs after the
  // completion is reaped, never inside the submitting call.
  readCallback(offset: number, buffer: Uint8Array, callback: IoCallback): void {
    this.callback(this.start(Op.Read, false).withBuffer(buffer, offset, 'read'), callback);
  }

  writeCallback(offset: number, data: Uint8Array, callback: IoCallback, options?: WriteOptions): void {
    this.callback(this.start(Op.Write, options?.fua === true).withBuffer(data, offset, 'write'), callback);
  }

  /** Commands outstanding or waiting for a slot. */
  get outstanding(): number {
    return this.queue.outstanding + this.waiting.length;
  }

  // --- building requests ----------------------------------------------------

  private readonly builder = new RequestBuilder(this);

  private start(op: Op, fua: boolean): RequestBuilder {
    if (this.failure) throw this.failure;
    if (this.closing) throw new StorageError('ECLOSED', `VSA ${this.name} is closed`);
    const request = this.pool.take();
    request.op = op;
    request.fua = fua;
    return this.builder.begin(request);
  }

  /** @internal Checks one VSA range (bytes). */
  checkRange(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`${what}: offset must be a non-negative integer`);
    if (!Number.isSafeInteger(length) || length <= 0) throw new RangeError(`${what}: length must be a positive integer`);
    if (offset % this.blockSize !== 0 || length % this.blockSize !== 0) {
      throw new RangeError(`${what}: offset and length must be multiples of the block size (${this.blockSize})`);
    }
    if (offset + length > this.size) throw new RangeError(`${what}: ${offset}+${length} is past the end of VSA ${this.name} (${this.size} bytes)`);
  }

  /** @internal */
  recycle(request: Request): void {
    this.pool.give(request);
  }

  private promise(request: Request): Promise<void> {
    return new Promise((resolve, reject) => {
      request.resolve = resolve;
      request.reject = reject;
      this.enqueue(request);
    });
  }

  private callback(request: Request, callback: IoCallback): void {
    if (typeof callback !== 'function') {
      this.pool.give(request);
      throw new TypeError('callback must be a function');
    }
    request.callback = callback;
    this.enqueue(request);
  }

  private enqueue(request: Request): void {
    if (this.waiting.length > 0 || !this.emit(request)) this.waiting.push(request);
    if (!this.ringScheduled) {
      this.ringScheduled = true;
      queueMicrotask(this.ringNow);
    }
  }

  // One doorbell for everything submitted in the same turn of the loop.
  private readonly ringNow = (): void => {
    this.ringScheduled = false;
    this.queue.ring();
    this.schedulePoll();
  };

  // --- commands -------------------------------------------------------------

  /** Turns as much of the request into commands as there are slots; true when all of it is out. */
  private emit(request: Request): boolean {
    const nsid = this.geometry.nsid;
    const sq32 = this.queue.sq32;
    while (!request.emitted) {
      const cid = this.queue.reserve();
      if (cid < 0) return false;
      const at = this.queue.sqeOffset >> 2;
      sq32[at + 1] = nsid;
      this.cmdRequest[cid] = request;
      this.cmdBounce[cid] = undefined;
      switch (request.op) {
        case Op.Read:
        case Op.Write:
          if (!this.emitReadWrite(request, cid, at)) {
            // No registered memory for a bounce buffer: nothing of this
            // command was published, so give its slot back.
            this.queue.cancel(cid);
            this.cmdRequest[cid] = undefined;
            // Completions in flight will free memory: wait for them.
            if (this.queue.outstanding > 0) return false;
            request.error = new StorageError('ENOMEM', `VSA ${this.name}: no registered memory left to bounce an ordinary buffer through (raise poolBytes or use alloc())`);
            request.emitted = true;
            // Report it from the loop, never inside the submitting call.
            if (request.pending === 0) setImmediate(() => this.finish(request));
            return true;
          }
          break;
        case Op.Flush:
          sq32[at] = (sq32[at]! | NvmOpcode.FLUSH) >>> 0;
          request.emitted = true;
          break;
        case Op.WriteZeroes:
          this.emitWriteZeroes(request, cid, at);
          break;
        case Op.Trim:
          this.emitTrim(request, cid, at);
          break;
      }
      request.pending++;
      this.queue.commit();
    }
    return true;
  }

  private advanceRange(request: Request, bytes: number): void {
    request.rangeDone += bytes;
    if (request.rangeDone === request.rangeLength[request.rangeIndex]) {
      request.rangeIndex++;
      request.rangeDone = 0;
      if (request.rangeIndex === request.rangeCount) request.emitted = true;
    }
  }

  /** False (and nothing changed in the request) when a bounce buffer cannot be had. */
  private emitReadWrite(request: Request, cid: number, at: number): boolean {
    const sq32 = this.queue.sq32;
    const offset = request.rangeOffset[request.rangeIndex]! + request.rangeDone;
    const bytes = Math.min(this.maxTransferBytes, request.rangeLength[request.rangeIndex]! - request.rangeDone);
    this.cmdOffset[cid] = offset;
    this.cmdBufIndex[cid] = request.bufIndex;
    this.cmdBufDone[cid] = request.bufDone;
    // Dword 0 already holds the command id (bits 31:16); add the opcode.
    sq32[at] = (sq32[at]! | (request.op === Op.Read ? NvmOpcode.READ : NvmOpcode.WRITE)) >>> 0;
    // Gather the memory pieces this command covers.
    let pieces = 0;
    let translatable = true;
    let remaining = bytes;
    let bufIndex = request.bufIndex;
    let bufDone = request.bufDone;
    while (remaining > 0) {
      const view = request.bufs[bufIndex]!;
      const take = Math.min(remaining, view.length - bufDone);
      if (pieces <= LIST_ENTRIES) {
        this.pieceView[pieces] = view;
        const iova = this.iovaOf(view, bufDone);
        if (iova < 0) translatable = false;
        this.pieceIova[pieces] = iova;
        this.pieceLength[pieces] = take;
      }
      pieces++;
      remaining -= take;
      bufDone += take;
      if (bufDone === view.length) {
        bufIndex++;
        bufDone = 0;
      }
    }
    let pointed = translatable && pieces <= LIST_ENTRIES && this.pointPrp(cid, at, pieces, bytes);
    if (!pointed && translatable && this.geometry.sgl && pieces <= LIST_ENTRIES) pointed = this.pointSgl(cid, at, pieces);
    if (!pointed && !this.pointBounce(request, cid, at, bytes)) return false;
    request.bufIndex = bufIndex;
    request.bufDone = bufDone;
    const lba = offset / this.blockSize;
    setU64(sq32, at + 10, lba);
    sq32[at + 12] = ((bytes / this.blockSize - 1) | (request.fua ? 1 << 30 : 0)) >>> 0;
    this.advanceRange(request, bytes);
    return true;
  }

  /** PRP form: every interior piece boundary on a page boundary. */
  private pointPrp(cid: number, at: number, pieces: number, bytes: number): boolean {
    const iova = this.pieceIova;
    const length = this.pieceLength;
    if ((iova[0]! >>> 0) & 3) return false;
    for (let i = 0; i < pieces; i++) {
      if (i > 0 && pageOffset(iova[i]!) !== 0) return false;
      if (i < pieces - 1 && pageOffset(iova[i]! + length[i]!) !== 0) return false;
    }
    const sq32 = this.queue.sq32;
    const first = iova[0]!;
    setU64(sq32, at + 6, first);
    const firstBytes = Math.min(bytes, DMA_PAGE_BYTES - pageOffset(first));
    if (bytes === firstBytes) return true;
    // Pages after the first, in order; two pages fit PRP2, more need the list.
    const listBase = cid * (DMA_PAGE_BYTES / 4);
    let pages = 0;
    for (let i = 0; i < pieces; i++) {
      let page = i === 0 ? first - pageOffset(first) + DMA_PAGE_BYTES : iova[i]!;
      const end = iova[i]! + length[i]!;
      for (; page < end; page += DMA_PAGE_BYTES) {
        if (pages >= LIST_ENTRIES) return false;
        setU64(this.list32, listBase + pages * 2, page);
        pages++;
      }
    }
    if (pages === 1) {
      setU64(sq32, at + 8, this.list32[listBase]! + this.list32[listBase + 1]! * 0x1_0000_0000);
    } else {
      setU64(sq32, at + 8, this.lists.iova + cid * DMA_PAGE_BYTES);
    }
    return true;
  }

  /** SGL form: one Data Block per piece (no alignment needed), in a Last Segment. */
  private pointSgl(cid: number, at: number, pieces: number): boolean {
    const sq32 = this.queue.sq32;
    // PSDT = 01b: SGL for data.
    sq32[at] = (sq32[at]! | (1 << 14)) >>> 0;
    if (pieces === 1) {
      setU64(sq32, at + 6, this.pieceIova[0]!);
      sq32[at + 8] = this.pieceLength[0]!;
      sq32[at + 9] = 0; // type 0h: Data Block
      return true;
    }
    const listBase = cid * (DMA_PAGE_BYTES / 4);
    for (let i = 0; i < pieces; i++) {
      const d = listBase + i * 4;
      setU64(this.list32, d, this.pieceIova[i]!);
      this.list32[d + 2] = this.pieceLength[i]!;
      this.list32[d + 3] = 0;
    }
    setU64(sq32, at + 6, this.lists.iova + cid * DMA_PAGE_BYTES);
    sq32[at + 8] = pieces * 16;
    sq32[at + 9] = 0x3 << 28; // type 3h: Last Segment
    return true;
  }

  /** Through a registered bounce buffer: copied in now (write) or out on completion (read). */
  private pointBounce(request: Request, cid: number, at: number, bytes: number): boolean {
    let bounce: DmaBuffer;
    try {
      bounce = this.region.alloc(bytes);
    } catch {
      return false;
    }
    this.cmdBounce[cid] = bounce;
    if (request.op === Op.Write) this.copyPieces(request, cid, bounce.bytes, true);
    const sq32 = this.queue.sq32;
    sq32[at] = (sq32[at]! & ~(3 << 14)) >>> 0; // PSDT 00b: PRPs
    this.pieceIova[0] = bounce.iova;
    this.pieceLength[0] = bytes;
    this.pointPrp(cid, at, 1, bytes);
    return true;
  }

  /** Copies between a command's bounce buffer and the request's memory views. */
  private copyPieces(request: Request, cid: number, bounce: Uint8Array, toBounce: boolean): void {
    let bufIndex = this.cmdBufIndex[cid]!;
    let bufDone = this.cmdBufDone[cid]!;
    let done = 0;
    while (done < bounce.length) {
      const view = request.bufs[bufIndex]!;
      const take = Math.min(bounce.length - done, view.length - bufDone);
      if (toBounce) bounce.set(view.subarray(bufDone, bufDone + take), done);
      else view.set(bounce.subarray(done, done + take), bufDone);
      done += take;
      bufDone += take;
      if (bufDone === view.length) {
        bufIndex++;
        bufDone = 0;
      }
    }
  }

  private emitWriteZeroes(request: Request, cid: number, at: number): void {
    const sq32 = this.queue.sq32;
    const offset = request.rangeOffset[request.rangeIndex]! + request.rangeDone;
    const bytes = Math.min(MAX_WRITE_ZEROES_BLOCKS * this.blockSize, request.rangeLength[request.rangeIndex]! - request.rangeDone);
    const lba = offset / this.blockSize;
    this.cmdOffset[cid] = offset;
    sq32[at] = (sq32[at]! | NvmOpcode.WRITE_ZEROES) >>> 0;
    setU64(sq32, at + 10, lba);
    sq32[at + 12] = ((bytes / this.blockSize - 1) | (request.fua ? 1 << 30 : 0)) >>> 0;
    this.advanceRange(request, bytes);
  }

  private emitTrim(request: Request, cid: number, at: number): void {
    const sq32 = this.queue.sq32;
    const listBase = cid * (DMA_PAGE_BYTES / 4);
    let ranges = 0;
    this.cmdOffset[cid] = request.rangeOffset[request.rangeIndex]! + request.rangeDone;
    while (!request.emitted && ranges < DSM_MAX_RANGES) {
      const offset = request.rangeOffset[request.rangeIndex]! + request.rangeDone;
      const bytes = Math.min(MAX_DSM_RANGE_BLOCKS * this.blockSize, request.rangeLength[request.rangeIndex]! - request.rangeDone);
      const d = listBase + ranges * 4;
      this.list32[d] = 0;
      this.list32[d + 1] = bytes / this.blockSize;
      setU64(this.list32, d + 2, offset / this.blockSize);
      ranges++;
      this.advanceRange(request, bytes);
    }
    sq32[at] = (sq32[at]! | NvmOpcode.DATASET_MANAGEMENT) >>> 0;
    setU64(sq32, at + 6, this.lists.iova + cid * DMA_PAGE_BYTES);
    sq32[at + 10] = ranges - 1;
    sq32[at + 11] = 1 << 2; // AD: deallocate
  }

  // --- completions ----------------------------------------------------------

  private readonly complete = (cid: number, status16: number): void => {
    const request = this.cmdRequest[cid];
    if (request === undefined) return;
    this.cmdRequest[cid] = undefined;
    const bounce = this.cmdBounce[cid];
    if (bounce !== undefined) {
      this.cmdBounce[cid] = undefined;
      if (status16 === 0 && request.op === Op.Read) this.copyPieces(request, cid, bounce.bytes, false);
      this.region.release(bounce);
    }
    if (status16 !== 0 && request.status16 === 0 && request.error === null) {
      request.status16 = status16;
      request.failedOffset = this.cmdOffset[cid]!;
    }
    request.pending--;
    if (request.pending === 0 && request.emitted) this.finish(request);
  };

  private finish(request: Request): void {
    let error = request.error;
    if (error === null && request.status16 !== 0) {
      error = this.failure ?? statusError(request.status16, OP_NAMES[request.op], this.name);
      if (error.command === undefined) error.command = OP_NAMES[request.op];
    }
    const { callback, resolve, reject } = request;
    this.pool.give(request);
    if (callback !== undefined) callback(error);
    else if (error === null) resolve!();
    else reject!(error);
  }

  /** Moves waiting requests into free slots (after completions freed some). */
  private admitWaiting(): void {
    for (let request = this.waiting.head; request !== null; request = this.waiting.head) {
      if (!this.emit(request)) return;
      this.waiting.shift();
    }
  }

  /** Polls once now; returns completions delivered. */
  poll(): number {
    const reaped = this.queue.reap();
    if (reaped > 0 && this.waiting.length > 0) {
      this.admitWaiting();
      this.queue.ring();
    }
    if (this.outstanding === 0) this.settleDrain();
    return reaped;
  }

  private schedulePoll(): void {
    if (this.pollScheduled || this.failure) return;
    this.pollScheduled = true;
    this.idlePolls = 0;
    setImmediate(this.pollTick);
  }

  private readonly pollTick = (): void => {
    this.pollScheduled = false;
    if (this.failure) return;
    const reaped = this.poll();
    if (this.outstanding === 0) return;
    if (reaped > 0 || this.idlePolls === 0) this.lastProgressMs = performance.now();
    this.idlePolls = reaped > 0 ? 0 : this.idlePolls + 1;
    if (this.idlePolls >= EAGER_POLLS && !this.healthy()) return;
    if (this.idlePolls < EAGER_POLLS) {
      this.pollScheduled = true;
      setImmediate(this.pollTick);
      return;
    }
    if (this.interruptFd >= 0) {
      this.waitForInterrupt();
      return;
    }
    this.pollScheduled = true;
    if (performance.now() - this.lastProgressMs < POLL_ONLY_EAGER_MS) setImmediate(this.pollTick);
    else setTimeout(this.pollTick, Math.min(8, (this.idlePolls - EAGER_POLLS) >> 10));
  };

  /**
   * A controller that reports a fatal status (CSTS.CFS) will not complete
   * what it holds: fail it all now instead of waiting forever.
   */
  private healthy(): boolean {
    if ((Atomics.load(this.registers, CSTS_WORD) & CSTS_CFS) === 0) return true;
    this.fail(new StorageError('ECONTROLLERFATAL', `VSA ${this.name}: the controller reported a fatal status (CSTS.CFS)`));
    return false;
  }

  // Quiet queue with commands outstanding: sleep on the CQ's eventfd.
  private waitForInterrupt(): void {
    if (!this.interruptWatcher) {
      this.interruptWatcher = new native.FdWatcher(this.interruptFd, () => {
        native.eventfdRead(this.interruptFd);
        this.interruptWatcher!.stop();
        clearTimeout(this.healthTimer);
        this.pollScheduled = false;
        this.schedulePoll();
      });
    }
    this.pollScheduled = true;
    this.interruptWatcher.start(READABLE);
    this.healthTimer = setTimeout(this.recheck, HEALTH_CHECK_MS);
    // A completion that landed between the last poll and arming the watcher
    // has already bumped the eventfd, so the watcher fires at once.
  }

  // Still waiting after a while: look at the controller and the CQ again.
  private readonly recheck = (): void => {
    if (this.failure || !this.healthy()) return;
    this.interruptWatcher?.stop();
    this.pollScheduled = false;
    this.schedulePoll();
  };

  // --- failure and close ------------------------------------------------------

  /** The controller is gone: every outstanding and waiting request fails with `error`. */
  fail(error: StorageError): void {
    if (this.failure) return;
    this.failure = error;
    clearTimeout(this.healthTimer);
    this.interruptWatcher?.close();
    this.lifelineWatcher?.close();
    this.queue.failAll(0xfffe);
    for (let request = this.waiting.shift(); request !== null; request = this.waiting.shift()) {
      request.error = error;
      request.emitted = true;
      if (request.pending === 0) this.finish(request);
    }
    this.settleDrain();
  }

  get failed(): StorageError | undefined {
    return this.failure;
  }

  private settleDrain(): void {
    if (this.outstanding !== 0 || this.drainWaiters.length === 0) return;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  /** Resolves when nothing is outstanding. */
  drain(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Stops accepting I/O and waits for what is in flight (up to `timeoutMs`;
   * after that it fails with ECLOSED). Every Promise settles.
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.fail(new StorageError('ECLOSED', `VSA ${this.name} closed with I/O still outstanding after ${timeoutMs} ms`));
        resolve();
      }, timeoutMs);
    });
    await Promise.race([this.drain(), timedOut]);
    clearTimeout(timer);
    clearTimeout(this.healthTimer);
    this.interruptWatcher?.close();
    this.lifelineWatcher?.close();
    this.interruptWatcher = this.lifelineWatcher = undefined;
    for (const fd of this.ownedFds.splice(0)) native.closeFd(fd);
    this.release?.();
  }
}

export interface VsaRange {
  /** Byte offset in the VSA (a multiple of the block size). */
  offset: number;
  /** Bytes (a multiple of the block size). */
  length: number;
}

// IOVAs and LBAs exceed 2^31, so they live in doubles; `%` on doubles is an
// fmod call, while ToUint32 (`>>> 0`) takes the low 32 bits of any integer
// below 2^53 exactly and stays in registers.

/** Stores a non-negative integer below 2^53 as two little-endian u32 words. */
function setU64(words: Uint32Array, index: number, value: number): void {
  const low = value >>> 0;
  words[index] = low;
  words[index + 1] = (value - low) / 0x1_0000_0000;
}

/** value mod 4096 for a non-negative integer below 2^53 (4096 divides 2^32). */
function pageOffset(value: number): number {
  return (value >>> 0) & (DMA_PAGE_BYTES - 1);
}

/** Validates arguments and fills a request; throws before anything reaches the device. */
class RequestBuilder {
  request!: Request;
  constructor(private readonly owner: VsaQueue) {}

  begin(request: Request): this {
    this.request = request;
    return this;
  }

  private fail(error: Error): never {
    this.owner.recycle(this.request);
    throw error;
  }

  withBuffer(buffer: Uint8Array, offset: number, what: string): Request {
    if (!(buffer instanceof Uint8Array)) this.fail(new TypeError(`${what}: buffer must be a Uint8Array or Buffer`));
    try {
      this.owner.checkRange(offset, buffer.length, what);
    } catch (error) {
      this.fail(error as Error);
    }
    this.request.addBuffer(buffer);
    this.request.addRange(offset, buffer.length);
    return this.request;
  }

  withRange(offset: number, length: number, what: string): Request {
    try {
      this.owner.checkRange(offset, length, what);
    } catch (error) {
      this.fail(error as Error);
    }
    this.request.addRange(offset, length);
    return this.request;
  }

  withVectors(buffers: readonly Uint8Array[], ranges: readonly VsaRange[], what: string): Request {
    if (!Array.isArray(buffers) || buffers.length === 0) this.fail(new TypeError(`${what}: buffers must be a non-empty array`));
    if (!Array.isArray(ranges) || ranges.length === 0) this.fail(new TypeError(`${what}: ranges must be a non-empty array`));
    let memoryBytes = 0;
    for (const buffer of buffers) {
      if (!(buffer instanceof Uint8Array)) this.fail(new TypeError(`${what}: every buffer must be a Uint8Array or Buffer`));
      if (buffer.length === 0) continue;
      memoryBytes += buffer.length;
      this.request.addBuffer(buffer);
    }
    let vsaBytes = 0;
    for (const range of ranges) {
      if (typeof range !== 'object' || range === null) this.fail(new TypeError(`${what}: every range must be { offset, length }`));
      try {
        this.owner.checkRange(range.offset, range.length, what);
      } catch (error) {
        this.fail(error as Error);
      }
      vsaBytes += range.length;
      this.request.addRange(range.offset, range.length);
    }
    if (memoryBytes !== vsaBytes) this.fail(new RangeError(`${what}: buffers hold ${memoryBytes} bytes but the ranges cover ${vsaBytes}`));
    return this.request;
  }
}
