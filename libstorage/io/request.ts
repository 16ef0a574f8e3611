/**
 * One logical I/O request (a read, a write, a flush, ...) as it moves through
 * a queue: its memory segments and VSA ranges, the cursors of what has been
 * turned into commands, and how to report back. Requests are pooled and
 * reused, so steady-state I/O allocates none.
 */
import type { StorageError } from '../errors.js';

export const enum Op {
  Read = 0,
  Write = 1,
  Flush = 2,
  WriteZeroes = 3,
  Trim = 4,
}

export const OP_NAMES = ['Read', 'Write', 'Flush', 'Write Zeroes', 'Dataset Management (deallocate)'] as const;

export type IoCallback = (error: StorageError | null) => void;

export class Request {
  op: Op = Op.Read;
  fua = false;
  // Memory: bufCount views (DMA memory or ordinary buffers).
  bufs: Uint8Array[] = [];
  bufCount = 0;
  // VSA ranges in bytes.
  rangeOffset = new Float64Array(4);
  rangeLength = new Float64Array(4);
  rangeCount = 0;
  // Cursors: the next byte of the current range / memory view to emit.
  rangeIndex = 0;
  rangeDone = 0;
  bufIndex = 0;
  bufDone = 0;
  // Commands emitted and still outstanding; the first failure.
  pending = 0;
  emitted = false;
  status16 = 0;
  failedOffset = 0;
  error: StorageError | null = null;
  callback: IoCallback | undefined = undefined;
  resolve: (() => void) | undefined = undefined;
  reject: ((error: StorageError) => void) | undefined = undefined;
  next: Request | null = null;

  addRange(offset: number, length: number): void {
    if (this.rangeCount === this.rangeOffset.length) {
      const offsets = new Float64Array(this.rangeCount * 2);
      const lengths = new Float64Array(this.rangeCount * 2);
      offsets.set(this.rangeOffset);
      lengths.set(this.rangeLength);
      this.rangeOffset = offsets;
      this.rangeLength = lengths;
    }
    this.rangeOffset[this.rangeCount] = offset;
    this.rangeLength[this.rangeCount] = length;
    this.rangeCount++;
  }

  addBuffer(view: Uint8Array): void {
    // Slots are overwritten, never truncated, so the array keeps its storage.
    if (this.bufCount < this.bufs.length) this.bufs[this.bufCount] = view;
    else this.bufs.push(view);
    this.bufCount++;
  }

  reset(): void {
    for (let i = 0; i < this.bufCount; i++) this.bufs[i] = EMPTY;
    this.bufCount = 0;
    this.rangeCount = 0;
    this.rangeIndex = this.rangeDone = this.bufIndex = this.bufDone = 0;
    this.pending = 0;
    this.emitted = false;
    this.status16 = 0;
    this.failedOffset = 0;
    this.error = null;
    this.callback = this.resolve = this.reject = undefined;
    this.next = null;
    this.fua = false;
  }
}

const EMPTY = new Uint8Array(0);

/** A free list of requests plus a FIFO of requests waiting for queue slots. */
export class RequestPool {
  private free: Request | null = null;

  take(): Request {
    const request = this.free;
    if (request === null) return new Request();
    this.free = request.next;
    request.next = null;
    return request;
  }

  give(request: Request): void {
    request.reset();
    request.next = this.free;
    this.free = request;
  }
}

export class RequestFifo {
  head: Request | null = null;
  tail: Request | null = null;
  length = 0;

  push(request: Request): void {
    request.next = null;
    if (this.tail) this.tail.next = request;
    else this.head = request;
    this.tail = request;
    this.length++;
  }

  shift(): Request | null {
    const request = this.head;
    if (request === null) return null;
    this.head = request.next;
    if (this.head === null) this.tail = null;
    request.next = null;
    this.length--;
    return request;
  }
}
