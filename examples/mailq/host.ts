/**
 * Everything one thread runs for its shard: the SMTP sessions of the
 * connections handed to it (messages go into this shard's entries), and the
 * delivery worker draining this shard into the Maildir. The main thread
 * hosts shard 0, each worker thread one more.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { DeliveryAgent } from './delivery.js';
import { Maildir } from './maildir.js';
import type { MailQueueShard, ShardStats } from './shard.js';
import { SmtpSession, type SmtpOptions, type SmtpSink } from './smtp.js';

export interface HostOptions {
  smtp: SmtpOptions;
  /** Deliver into this Maildir; no delivery when absent. */
  maildir?: string;
  deliveryConcurrency?: number;
  /** Append delivery events (`D`/`E`/`A`/`N` + queue id) to this file. */
  journal?: string;
  /** Hex tag of the queue (from its uuid) for Maildir names. */
  queueTag: string;
  log?: (event: Record<string, unknown>) => void;
}

export interface HostStats extends ShardStats {
  sessions: number;
  connections: number;
  delivered: number;
  duplicates: number;
  deliveryFailures: number;
  commitFailures: number;
}

export class ShardHost {
  private readonly sessions = new Set<SmtpSession>();
  private readonly sink: SmtpSink;
  private readonly delivery: DeliveryAgent | null;
  private readonly journalFd: number;
  private connections = 0;
  private commitFailures = 0;
  private stopped = false;

  constructor(
    readonly shard: MailQueueShard,
    private readonly options: HostOptions,
  ) {
    this.sink = {
      begin: (envelope, sizeHint) => {
        if (this.stopped) return null;
        return shard.reserve(envelope, sizeHint);
      },
    };
    this.journalFd = options.journal ? openSync(options.journal, 'a') : -1;
    const journal = this.journalFd >= 0 ? (line: string) => writeSync(this.journalFd, `${line}\n`) : undefined;
    if (options.maildir) {
      this.delivery = new DeliveryAgent(shard, {
        maildir: new Maildir(options.maildir),
        concurrency: options.deliveryConcurrency,
        queueTag: options.queueTag,
        journal,
        onError: (error, lease) => options.log?.({ event: 'delivery-failed', id: lease.id, attempts: lease.attempts, error: String(error) }),
      });
      this.delivery.start();
    } else {
      this.delivery = null;
    }
  }

  /** Runs an SMTP session on a connection accepted for this shard. */
  addSocket(socket: Socket): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    this.connections++;
    const session = new SmtpSession(socket, this.sink, {
      ...this.options.smtp,
      onError: (error) => {
        this.commitFailures++;
        this.options.log?.({ event: 'commit-failed', shard: this.shard.index, error: String(error) });
      },
    });
    this.sessions.add(session);
    session.done.then(() => this.sessions.delete(session));
  }

  stats(): HostStats {
    return {
      ...this.shard.stats(),
      sessions: this.sessions.size,
      connections: this.connections,
      delivered: this.delivery?.delivered ?? 0,
      duplicates: this.delivery?.duplicates ?? 0,
      deliveryFailures: this.delivery?.failures ?? 0,
      commitFailures: this.commitFailures,
    };
  }

  /** 421 to every session (after any commit in flight), stops delivery, closes the shard. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const session of this.sessions) session.shutdown();
    await Promise.race([Promise.all([...this.sessions].map((s) => s.done)), new Promise((resolve) => setTimeout(resolve, 3000).unref())]);
    await this.delivery?.stop();
    await this.shard.close();
    if (this.journalFd >= 0) closeSync(this.journalFd);
  }
}
