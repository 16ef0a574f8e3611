/**
 * The mail queue on a VSA: formatting, finding the layout again, and a
 * MailQueue that hosts one or more shards on the calling thread's queue
 * pair. A multi-threaded application opens one shard per thread instead
 * (MailQueueShard.open with that thread's queue), as the server does.
 */
import type { VsaQueue } from '../../libstorage/index.js';
import {
  CLASS_BYTES,
  decodeSuperblock,
  encodeSuperblock,
  isBlank,
  planLayout,
  shardControlOffset,
  type Envelope,
  type LayoutOptions,
  type Superblock,
} from './layout.js';
import { MailQueueShard, MailqError, type Lease, type PeekedMessage, type Reservation, type ShardOptions, type ShardStats } from './shard.js';

export type FormatPolicy = 'if-blank' | 'always' | 'never';

export interface OpenMailQueueOptions extends ShardOptions {
  /** 'if-blank' (default): format only a VSA whose first two blocks are zero; 'always': reformat (erases the queue); 'never'. */
  format?: FormatPolicy;
  /** Layout for a new queue (ignored when one exists). */
  layout?: LayoutOptions;
  /** Write zeroes over the entry regions at format, so every later write lands on allocated storage. */
  preallocate?: boolean;
  /** The shards this thread hosts (default: all). */
  shards?: number[];
}

/** The queue's superblock, 'blank' for an empty VSA, or null when the VSA holds something else. */
export async function readSuperblock(io: VsaQueue): Promise<Superblock | 'blank' | null> {
  const bs = io.blockSize;
  const blocks = new Uint8Array(2 * bs);
  await io.read(0, blocks);
  const first = blocks.subarray(0, bs);
  const second = blocks.subarray(bs);
  const sb = decodeSuperblock(first) ?? decodeSuperblock(second);
  if (sb) return sb;
  return isBlank(blocks) ? 'blank' : null;
}

/**
 * Formats a queue: clears the superblock, zeroes the shard control blocks
 * and entry regions, and writes the superblock last (both copies, FUA), so
 * an interrupted format leaves a VSA without a queue, never half of one.
 */
export async function formatQueue(io: VsaQueue, layout: LayoutOptions = {}, options: { preallocate?: boolean } = {}): Promise<Superblock> {
  const sb = planLayout(io.size, io.blockSize, layout);
  const bs = sb.blockBytes;
  await io.write(0, new Uint8Array(2 * bs), { fua: true });
  await io.writeZeroes(shardControlOffset(sb, 0, 0), sb.shards * 2 * bs);
  const chunk = 1 << 20;
  const zeroes = options.preallocate ? io.alloc(chunk) : null;
  for (const c of sb.classes) {
    const length = sb.shards * c.slotsPerShard * c.slotBytes;
    if (!zeroes) {
      await io.writeZeroes(c.offset, length);
      continue;
    }
    const writes: Array<Promise<void>> = [];
    for (let at = 0; at < length; at += chunk) {
      writes.push(io.write(c.offset + at, zeroes.subarray(0, Math.min(chunk, length - at))));
      if (writes.length >= 8) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
  }
  if (zeroes) io.free(zeroes);
  await io.flush();
  const block = encodeSuperblock(sb);
  await io.write(0, block, { fua: true });
  await io.write(bs, block, { fua: true });
  return sb;
}

/** Finds the queue on the VSA, formatting it according to `format`. */
export async function prepareQueue(io: VsaQueue, options: { format?: FormatPolicy; layout?: LayoutOptions; preallocate?: boolean } = {}): Promise<Superblock> {
  const policy = options.format ?? 'if-blank';
  if (policy === 'always') return formatQueue(io, options.layout, options);
  const found = await readSuperblock(io);
  if (found === 'blank') {
    if (policy === 'never') throw new MailqError('ECORRUPT', 'the VSA holds no mail queue (blank)');
    return formatQueue(io, options.layout, options);
  }
  if (found === null) throw new MailqError('ECORRUPT', 'the VSA holds something other than a mail queue (use format: always to erase it)');
  if (found.blockBytes !== io.blockSize) throw new MailqError('ECORRUPT', `the queue was formatted with ${found.blockBytes}-byte blocks; the VSA has ${io.blockSize}`);
  const end = Math.max(found.extentOffset + found.shards * found.extentBytesPerShard, ...found.classes.map((c) => c.offset + found.shards * c.slotsPerShard * c.slotBytes));
  if (end > io.size) throw new MailqError('ECORRUPT', `the queue reaches ${end} bytes; the VSA has only ${io.size}`);
  return found;
}

export interface MailQueueStats {
  shards: ShardStats[];
  queued: number;
  ready: number;
  leased: number;
  enqueued: number;
  acked: number;
  flushes: number;
  syncedCommits: number;
}

/** Shards hosted on one thread behind one API (round-robin enqueue, dequeue from any). */
export class MailQueue {
  private next = 0;
  private readonly readyWaiters: Array<() => void> = [];

  private constructor(
    readonly superblock: Superblock,
    readonly shards: MailQueueShard[],
  ) {
    for (const shard of shards) {
      shard.onReady = () => {
        const waiters = this.readyWaiters.splice(0);
        for (const wake of waiters) wake();
      };
    }
  }

  /** Opens (formatting if allowed) the queue on `io` and recovers the shards this thread hosts. */
  static async open(io: VsaQueue, options: OpenMailQueueOptions = {}): Promise<MailQueue> {
    const sb = await prepareQueue(io, options);
    const indices = options.shards ?? Array.from({ length: sb.shards }, (_, i) => i);
    const shards: MailQueueShard[] = [];
    for (const index of indices) shards.push(await MailQueueShard.open(io, sb, index, options));
    return new MailQueue(sb, shards);
  }

  static get classBytes(): readonly number[] {
    return CLASS_BYTES;
  }

  private pick(): MailQueueShard {
    const shard = this.shards[this.next % this.shards.length]!;
    this.next++;
    return shard;
  }

  reserve(envelope: Envelope, sizeHint = 0): Reservation {
    return this.pick().reserve(envelope, sizeHint);
  }

  enqueue(envelope: Envelope, data: Uint8Array): Promise<string> {
    return this.pick().enqueue(envelope, data);
  }

  /** Leases the oldest ready message of the next shard that has one; with `wait`, waits for one. */
  async dequeue(options: { wait?: boolean } = {}): Promise<Lease | null> {
    for (;;) {
      for (let i = 0; i < this.shards.length; i++) {
        const shard = this.shards[(this.next + i) % this.shards.length]!;
        if (shard.readyCount > 0) {
          this.next++;
          const lease = await shard.dequeue();
          if (lease) return lease;
        }
      }
      if (!options.wait || this.closed) return null;
      await new Promise<void>((resolve) => this.readyWaiters.push(resolve));
    }
  }

  private closed = false;

  stats(): MailQueueStats {
    const shards = this.shards.map((s) => s.stats());
    const sum = (key: keyof ShardStats) => shards.reduce((total, s) => total + (s[key] as number), 0);
    return {
      shards,
      queued: sum('queued'),
      ready: sum('ready'),
      leased: sum('leased'),
      enqueued: sum('enqueued'),
      acked: sum('acked'),
      flushes: sum('flushes'),
      syncedCommits: sum('syncedCommits'),
    };
  }

  async peek(): Promise<PeekedMessage[]> {
    const all: PeekedMessage[] = [];
    for (const shard of this.shards) all.push(...(await shard.peek()));
    return all;
  }

  ids(): string[] {
    return this.shards.flatMap((s) => s.ids());
  }

  async close(timeoutMs = 5000): Promise<void> {
    this.closed = true;
    for (const wake of this.readyWaiters.splice(0)) wake();
    await Promise.all(this.shards.map((s) => s.close(timeoutMs)));
  }
}
