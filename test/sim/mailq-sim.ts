// Seeded power-loss simulation of the mail queue (examples/mailq) on a real
// VSA (test/sim/powered-vsa.ts), driven through its library API (no SMTP):
// bursts of enqueues of every size class and extents (grouped into one
// Flush, or FUA each), leases, acks and nacks interleaved, some left in
// flight, on a queue of one or two shards small enough that slots and
// extents are reused; until the power fails, then recovery through
// MailQueue.open and the checks (docs/mailq.md, "States, write order and
// recovery"):
//   - every message whose enqueue was acknowledged is there, intact, under
//     the id it was given — unless its removal was acknowledged;
//   - no message whose removal was acknowledged reappears;
//   - nothing appears that was never enqueued (or whose enqueue was refused),
//     and nothing twice; a message whose enqueue or ack was in flight is
//     there whole or not at all;
//   - recovery never fails, and queue ids are never given out twice;
//   - the recovered queue works: more traffic, a clean shutdown and a reopen
//     find exactly the messages that were queued.
import { MailQueue, MailqError, planLayout, type Lease, type OpenMailQueueOptions } from '../../examples/mailq/index.js';
import { AppSimulation } from './app-sim.js';
import { PAYLOAD_HEADER_BYTES, decodePayload, encodePayload } from './payloads.js';
import type { CutOptions, CutOutcome } from './target.js';

const KiB = 1024;
/** The "place" every message's data names (payloads.ts). */
const MAIL = 0x6d61696c;
/** Room planLayout wants beyond its 64 KiB-aligned regions. */
const MIN_VSA_BYTES = 448 * KiB;

/**
 * A message's life as the client saw it: enqueue in flight, acknowledged
 * (queued or leased), removal in flight, removal acknowledged — or never
 * stored (refused, or found absent after its enqueue was cut short).
 */
type MailState = 'committing' | 'queued' | 'acking' | 'removed' | 'absent';

interface Mail {
  uid: number;
  length: number;
  state: MailState;
  /** The queue id its enqueue returned (or recovery found). */
  id: string | undefined;
}

function sender(uid: number): string {
  return `m${uid}@sim.invalid`;
}

class MailqSimulation extends AppSimulation {
  readonly openOptions: OpenMailQueueOptions;
  readonly vsaBytes: number;
  queue!: MailQueue;
  readonly mails = new Map<number, Mail>();
  /** Every queue id ever handed out or found: none may be handed out again. */
  readonly ids = new Set<string>();
  held: Lease[] = [];
  uids = 0;

  constructor(seed: number, options: CutOptions) {
    super(seed, options, 0.15);
    const shards = this.chance(0.3) ? 2 : 1;
    const layout = {
      shards,
      slots: [2 + this.int(14), 1 + this.int(6), 1 + this.int(3)],
      extentBytesPerShard: (1 + this.int(5)) * 16 * KiB,
    };
    const planned = planLayout(1 << 30, this.blockBytes, layout);
    this.vsaBytes = Math.max(MIN_VSA_BYTES, planned.extentOffset + shards * layout.extentBytesPerShard);
    this.openOptions = { layout, durability: (seed & 1) === 0 ? 'flush' : 'fua', leaseMs: 3_600_000 };
  }

  protected settings(): string {
    const { layout, durability } = this.openOptions;
    return `durability ${durability}, ${this.blockBytes}-byte blocks, ${layout!.shards} shards, slots ${layout!.slots!.join('/')}, extents ${layout!.extentBytesPerShard! / KiB} KiB`;
  }

  protected async openApp(): Promise<void> {
    this.queue = await MailQueue.open(this.pv.vsa, this.openOptions);
  }

  protected async phases(): Promise<void> {
    if (await this.powerOn(this.vsaBytes / this.blockBytes)) await this.runUntilCut(5 + this.int(40));
    if (!(await this.recover(await this.cut(), true))) return;
    await this.verify('after the cut');

    await this.moreSteps();
    await this.queue.close();
    if (!(await this.recover(await this.shutdown(), false))) return;
    await this.verify('after more traffic and a clean shutdown');
  }

  // ---- the workload ----------------------------------------------------------

  protected async step(): Promise<void> {
    const roll = this.random() * 100;
    if (roll < 45) {
      // A burst in one turn of the event loop: its commits share a Flush.
      const count = 1 + this.int(4);
      for (let i = 0; i < count && !this.pv.powerLost; i++) this.enqueue();
    } else if (roll < 70) {
      const count = 1 + this.int(3);
      for (let i = 0; i < count && !this.pv.powerLost; i++) await this.lease();
    } else {
      const count = 1 + this.int(3);
      for (let i = 0; i < count && this.held.length > 0; i++) this.settle(this.held.splice(this.int(this.held.length), 1)[0]!);
    }
    await this.endBurst(0.75);
  }

  dataLength(): number {
    const roll = this.random();
    const length = roll < 0.4 ? 16 + this.int(800) : roll < 0.7 ? 800 + this.int(3100) : roll < 0.9 ? 4000 + this.int(11000) : 16 * KiB + this.int(48 * KiB);
    return Math.max(PAYLOAD_HEADER_BYTES, length);
  }

  enqueue(): void {
    const mail: Mail = { uid: ++this.uids, length: this.dataLength(), state: 'committing', id: undefined };
    this.mails.set(mail.uid, mail);
    let commit: Promise<string>;
    try {
      commit = this.queue.enqueue({ from: sender(mail.uid), to: [`r${mail.uid % 7}@sim.invalid`] }, encodePayload(mail.uid, MAIL, mail.length));
    } catch (error) {
      mail.state = 'absent';
      if (!this.pv.powerLost) throw error;
      return;
    }
    const failed = this.unlessCut('an enqueue');
    this.pending.push(
      commit.then(
        (id) => {
          mail.state = 'queued';
          mail.id = id;
          this.newId(id, `enqueue of message ${mail.uid}`);
        },
        (error: Error) => {
          // Refused before anything was written: it must never appear.
          if (error instanceof MailqError && (error.code === 'EFULL' || error.code === 'ETOOBIG')) mail.state = 'absent';
          else failed(error);
        },
      ),
    );
  }

  newId(id: string, what: string): void {
    if (this.ids.has(id)) this.problems.note('lost', `${what} was given the queue id ${id} again`);
    this.ids.add(id);
  }

  /** Leases the oldest ready message; what it hands out must be one acknowledged, intact. */
  async lease(): Promise<void> {
    let lease: Lease | null;
    try {
      lease = await this.queue.dequeue();
    } catch (error) {
      if (this.pv.powerLost) return;
      throw error;
    }
    if (lease === null) return;
    const mail = this.mailOf(lease.envelope.from, lease.data);
    if (mail === undefined || mail.state !== 'queued' || mail.id !== lease.id) {
      this.problems.note('lost', `before any cut: dequeue handed out ${lease.id} (${lease.envelope.from}), which is not a queued message${mail ? ` (${mail.state}, ${mail.id})` : ''}`);
      return;
    }
    this.held.push(lease);
  }

  /** The message a sender and data name, when they are intact. */
  mailOf(from: string, data: Uint8Array): Mail | undefined {
    const uid = decodePayload(data, MAIL);
    return uid > 0 && from === sender(uid) ? this.mails.get(uid) : undefined;
  }

  /** Acks (the removal is final once acknowledged) or nacks (now, or after a delay) a held lease. */
  settle(lease: Lease): void {
    const mail = this.mailOf(lease.envelope.from, lease.data)!;
    const failed = this.unlessCut(`settling ${lease.id}`);
    if (this.chance(0.7)) {
      mail.state = 'acking';
      this.pending.push(lease.ack().then(() => void (mail.state = 'removed'), failed));
    } else {
      this.pending.push(lease.nack({ delayMs: this.chance(0.5) ? 0 : 60_000 }).catch(failed));
    }
  }

  // ---- the checks ----------------------------------------------------------------

  /** What the recovered queue holds against what the client was told; then the model is what was found. */
  async verify(when: string): Promise<void> {
    let found;
    try {
      found = await this.queue.peek();
    } catch (error) {
      this.problems.note('unrecoverable', `${when}: reading the recovered queue failed: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    const seen = new Set<number>();
    for (const message of found) {
      const mail = message.valid ? this.mailOf(message.envelope.from, message.data) : undefined;
      if (mail === undefined) {
        this.problems.note('lost', `${when}: ${message.id} is no message that was enqueued (${message.valid ? message.envelope.from : 'fails its checksum'})`);
        continue;
      }
      if (seen.has(mail.uid)) this.problems.note('lost', `${when}: message ${mail.uid} is there twice (${message.id})`);
      seen.add(mail.uid);
      if (mail.state === 'removed' || mail.state === 'absent')
        this.problems.note('lost', `${when}: message ${mail.uid} (${message.id}) came back after its ${mail.state === 'removed' ? 'removal was acknowledged' : 'enqueue was refused or lost'}`);
      else if (mail.id !== undefined && mail.id !== message.id) this.problems.note('lost', `${when}: message ${mail.uid} was ${mail.id}, now ${message.id}`);
      else if (mail.id === undefined) this.newId(message.id, `recovered message ${mail.uid}`);
      mail.id = message.id;
    }
    for (const mail of this.mails.values()) {
      const present = seen.has(mail.uid);
      if (!present && mail.state === 'queued') this.problems.note('lost', `${when}: message ${mail.uid} (${mail.id}), acknowledged, is gone`);
      // What was found is the truth from now on: in flight is settled either way.
      if (present) mail.state = 'queued';
      else if (mail.state !== 'removed') mail.state = 'absent';
    }
    this.held = [];
  }
}

/** One seeded cut of the mail queue; `durability` alternates with the seed's parity (even: grouped Flush, odd: FUA). */
export function runMailqCut(seed: number, options: CutOptions = {}): Promise<CutOutcome> {
  return new MailqSimulation(seed >>> 0, options).run();
}
