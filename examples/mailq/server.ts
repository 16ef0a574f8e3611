/**
 * The mail queue server: opens the VSA (by capability, or an emulator VF
 * socket), finds or formats the queue, recovers shard 0 on the main thread
 * and starts one worker thread per further shard, each with a queue pair of
 * its own. The main thread accepts SMTP connections and spreads them over
 * the shards (a worker gets the connection's file descriptor and runs the
 * session itself), so every message is written by the thread that owns the
 * entries it goes into.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { Worker } from 'node:worker_threads';
import { open, type Vsa, type VsaTarget } from '../../libstorage/index.js';
import { native } from '../../libstorage/native.js';
import { ShardHost, type HostOptions, type HostStats } from './host.js';
import type { Durability } from './io.js';
import type { LayoutOptions, Superblock } from './layout.js';
import { prepareQueue, type FormatPolicy } from './queue.js';
import { MailQueueShard, type ShardOptions } from './shard.js';
import type { WorkerData } from './worker.js';

export interface ServeOptions {
  target: VsaTarget;
  port?: number;
  host?: string;
  /** The name in SMTP replies (default: the machine's). */
  hostname?: string;
  /** Deliver to this Maildir (no delivery when absent). */
  maildir?: string;
  deliveryConcurrency?: number;
  /** Shards (threads) of a new queue; an existing queue keeps its own. */
  shards?: number;
  format?: FormatPolicy;
  layout?: Omit<LayoutOptions, 'shards'>;
  preallocate?: boolean;
  durability?: Durability;
  leaseMs?: number;
  backoff?: { baseMs?: number; maxMs?: number };
  /** Largest message data accepted (SIZE), default 10 MiB (capped by the extent space). */
  maxMessageBytes?: number;
  journal?: string;
  /** Registered memory per queue pair (default 32 MiB). */
  poolBytes?: number;
  log?: (event: Record<string, unknown>) => void;
}

interface WorkerShard {
  index: number;
  worker: Worker;
  stats: HostStats | null;
  pending: Array<(stats: HostStats) => void>;
  stopped: Promise<void>;
}

const DEFAULT_MAX_MESSAGE = 10 << 20;
/** Room for the envelope and the Received: header on top of the message data. */
const RECORD_OVERHEAD = 8192;

function workerModule(): URL {
  const here = new URL(import.meta.url);
  return new URL(here.pathname.endsWith('.ts') ? './worker.ts' : './worker.js', here);
}

export class MailqServer {
  private readonly connectionsPerShard: number[];
  private nextShard = 0;
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly vsa: Vsa,
    readonly superblock: Superblock,
    private readonly host0: ShardHost,
    private readonly workers: WorkerShard[],
    private readonly server: Server,
    private readonly log: (event: Record<string, unknown>) => void,
  ) {
    this.connectionsPerShard = new Array(superblock.shards).fill(0);
    server.on('connection', (socket) => this.dispatch(socket));
  }

  static async start(options: ServeOptions): Promise<MailqServer> {
    const log = options.log ?? (() => {});
    const poolBytes = options.poolBytes ?? 32 << 20;
    const vsa = await open(options.target, { poolBytes });
    const cleanups: Array<() => Promise<void>> = [() => vsa.close()];
    try {
      const sb = await prepareQueue(vsa, {
        format: options.format,
        layout: { ...options.layout, shards: options.shards ?? 1 },
        preallocate: options.preallocate,
      });
      const maxMessageBytes = Math.min(
        options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE,
        Math.max(sb.extentBytesPerShard, sb.classes[sb.classes.length - 1]!.slotBytes) - RECORD_OVERHEAD,
      );
      const shardOptions: ShardOptions = {
        durability: options.durability,
        leaseMs: options.leaseMs,
        backoff: options.backoff,
        maxRecordBytes: maxMessageBytes + RECORD_OVERHEAD,
      };
      const queueTag = Buffer.from(sb.uuid.subarray(0, 4)).toString('hex');
      const hostOptions: Omit<HostOptions, 'log'> = {
        smtp: { hostname: options.hostname ?? osHostname(), maxMessageBytes },
        maildir: options.maildir,
        deliveryConcurrency: options.deliveryConcurrency,
        journal: options.journal,
        queueTag,
      };
      // Worker queue pairs first (the VSA's controller makes them), then recovery everywhere at once.
      const handles = [];
      for (let index = 1; index < sb.shards; index++) handles.push(await vsa.queueHandle({ poolBytes, queueEntries: 256 }));
      const workers = handles.map((handle, i) => startWorker(i + 1, { handle, superblock: sb, index: i + 1, shardOptions, hostOptions }, log));
      cleanups.push(async () => {
        for (const w of workers) await w.shard.worker.terminate();
      });
      const [shard0] = await Promise.all([MailQueueShard.open(vsa, sb, 0, shardOptions), ...workers.map((w) => w.ready)]);
      const host0 = new ShardHost(shard0, { ...hostOptions, log });
      cleanups.push(() => host0.stop());
      const server = createServer({ pauseOnConnect: true });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port ?? 2525, options.host ?? '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
      const started = new MailqServer(
        vsa,
        sb,
        host0,
        workers.map((w) => w.shard),
        server,
        log,
      );
      log({ event: 'listening', address: started.address, shards: sb.shards, recovered: [shard0.stats().recovered, ...workers.map((w) => w.shard.stats?.recovered ?? 0)] });
      return started;
    } catch (error) {
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
      throw error;
    }
  }

  get address(): { host: string; port: number } {
    const info = this.server.address() as AddressInfo;
    return { host: info.address, port: info.port };
  }

  /** Connections go to the shards in turn. */
  private dispatch(socket: Socket): void {
    const shards = this.superblock.shards;
    const index = this.nextShard++ % shards;
    this.connectionsPerShard[index]!++;
    if (index === 0) {
      this.host0.addSocket(socket);
      socket.resume();
      return;
    }
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) {
      // Not a plain TCP handle: keep it on this thread.
      this.host0.addSocket(socket);
      socket.resume();
      return;
    }
    // The worker takes its own descriptor; this thread lets go of its copy.
    const dup = native.dupFd(fd);
    socket.destroy();
    this.workers[index - 1]!.worker.postMessage({ type: 'socket', fd: dup });
  }

  async stats(): Promise<HostStats[]> {
    const mine = this.host0.stats();
    const theirs = await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<HostStats>((resolve) => {
            w.pending.push(resolve);
            w.worker.postMessage({ type: 'stats' });
          }),
      ),
    );
    return [mine, ...theirs];
  }

  /** Stops accepting, ends sessions (after commits in flight), stops delivery, closes the queue and the VSA. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.server.close();
      await Promise.all([
        this.host0.stop(),
        ...this.workers.map((w) => {
          w.worker.postMessage({ type: 'stop' });
          return w.stopped;
        }),
      ]);
      await this.vsa.close();
      this.log({ event: 'stopped' });
    })();
    return this.stopping;
  }
}

function startWorker(
  index: number,
  data: WorkerData,
  log: (event: Record<string, unknown>) => void,
): { shard: WorkerShard; ready: Promise<void> } {
  const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url), {
    workerData: { entry: workerModule().href, data },
  });
  let markReady!: () => void;
  let fail!: (error: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    fail = reject;
  });
  let markStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (markStopped = resolve));
  const shard: WorkerShard = { index, worker, stats: null, pending: [], stopped };
  worker.on('message', (message: { type: string; stats?: HostStats; event?: Record<string, unknown>; message?: string }) => {
    switch (message.type) {
      case 'ready':
        shard.stats = message.stats!;
        markReady();
        break;
      case 'stats':
        shard.stats = message.stats!;
        for (const resolve of shard.pending.splice(0)) resolve(message.stats!);
        break;
      case 'stopped':
        shard.stats = message.stats!;
        markStopped();
        break;
      case 'log':
        log(message.event!);
        break;
      case 'error':
        fail(new Error(`shard ${index}: ${message.message}`));
        break;
    }
  });
  worker.on('error', (error) => {
    log({ event: 'worker-error', shard: index, error: String(error) });
    fail(error);
    markStopped();
  });
  worker.on('exit', () => {
    fail(new Error(`shard ${index}: worker exited`));
    markStopped();
  });
  return { shard, ready };
}
