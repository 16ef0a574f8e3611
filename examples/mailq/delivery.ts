/**
 * The delivery worker of one shard: leases messages from the shard the
 * thread owns, writes each into the Maildir (durably), and only then
 * acknowledges it. A failed delivery is nacked and retried with backoff; a
 * delivery that hangs loses its lease and is retried too.
 *
 * The Maildir file name is derived from the queue id, so a message
 * delivered just before a crash (and not yet acknowledged) is found in new/
 * when it is delivered again after the restart, instead of being written a
 * second time.
 */
import { Maildir, maildirHost, toUnixLines } from './maildir.js';
import type { Lease, MailQueueShard } from './shard.js';

export interface DeliveryOptions {
  maildir: Maildir;
  /** Deliveries in flight per shard (default 4). */
  concurrency?: number;
  /** Distinguishes this queue's file names from another queue's (hex). */
  queueTag: string;
  /** One line per event: `D id` delivering, `E id` already in new/, `A id` acknowledged, `N id` nacked. */
  journal?: (line: string) => void;
  onError?: (error: unknown, lease: Lease) => void;
}

/** The Maildir name of a message: its enqueue time, the queue and the queue id. */
export function maildirName(lease: Lease, queueTag: string, host = maildirHost()): string {
  const seconds = Math.floor(lease.enqueuedAt / 1000);
  return `${seconds}.M${lease.enqueuedAt % 1000}Q${queueTag}_${lease.id.replace(/\./g, '_')}.${host}`;
}

export class DeliveryAgent {
  delivered = 0;
  duplicates = 0;
  failures = 0;
  private stopped = false;
  private loops: Array<Promise<void>> = [];
  private readonly host = maildirHost();

  constructor(
    private readonly shard: MailQueueShard,
    private readonly options: DeliveryOptions,
  ) {}

  start(): void {
    const concurrency = this.options.concurrency ?? 4;
    for (let i = 0; i < concurrency; i++) this.loops.push(this.loop());
  }

  private async loop(): Promise<void> {
    const journal = this.options.journal;
    while (!this.stopped) {
      let lease: Lease | null;
      try {
        lease = await this.shard.dequeue({ wait: true });
      } catch (error) {
        this.failures++;
        continue;
      }
      if (lease === null) return;
      journal?.(`D ${lease.id}`);
      try {
        const { envelope, data } = lease;
        const head = `Return-Path: <${envelope.from}>\n${envelope.to.map((to) => `Delivered-To: ${to}\n`).join('')}`;
        const result = await this.options.maildir.deliver(maildirName(lease, this.options.queueTag, this.host), [
          Buffer.from(head, 'latin1'),
          toUnixLines(data),
        ]);
        if (result.duplicate) {
          this.duplicates++;
          journal?.(`E ${lease.id}`);
        }
        await lease.ack();
        this.delivered++;
        journal?.(`A ${lease.id}`);
      } catch (error) {
        this.failures++;
        this.options.onError?.(error, lease);
        journal?.(`N ${lease.id}`);
        await lease.nack().catch(() => {});
      }
    }
  }

  /** Stops leasing; resolves when the deliveries in flight have finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.shard.interruptDequeue();
    await Promise.all(this.loops);
  }
}
