/**
 * Maildir (https://cr.yp.to/proto/maildir.html) writing, two ways:
 *
 * - Maildir.deliver(): what the delivery worker uses. The file is written
 *   in tmp/, fsynced, linked into new/ under a name derived from the queue
 *   id (so a redelivery after a crash finds it there: EEXIST, not a second
 *   copy), and new/ is fsynced (grouped across concurrent deliveries) before
 *   deliver() resolves. Only then is the queue entry acknowledged.
 * - MaildirSink: an SMTP sink that stores each message straight into a
 *   Maildir with an fsync per message — the conventional design the
 *   benchmark compares the queue with.
 */
import { randomBytes } from 'node:crypto';
import { constants, mkdirSync } from 'node:fs';
import { link, open, rename, unlink } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import type { Envelope } from './layout.js';
import type { SinkMessage, SmtpSink } from './smtp.js';

/** Which fsyncs make a Maildir delivery durable. */
export type MaildirSync = 'file+dir' | 'file' | 'none';

/** The host part of Maildir names, with '/' and ':' escaped as the format asks. */
export function maildirHost(name = osHostname()): string {
  return name.replace(/\//g, '\\057').replace(/:/g, '\\072');
}

/** CRLF line ends (SMTP) to LF (a local mailbox), in one pass. */
export function toUnixLines(data: Uint8Array): Uint8Array {
  let cr = data.indexOf(0x0d);
  if (cr < 0) return data;
  const out = new Uint8Array(data.length);
  let o = 0;
  let from = 0;
  while (cr >= 0) {
    if (data[cr + 1] === 0x0a) {
      out.set(data.subarray(from, cr), o);
      o += cr - from;
      from = cr + 1;
    }
    cr = data.indexOf(0x0d, cr + 1);
  }
  out.set(data.subarray(from), o);
  o += data.length - from;
  return out.subarray(0, o);
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Group commit for fsyncs of one directory: callers that arrive while one runs share the next. */
class DirSyncer {
  private running = false;
  private waiting: Array<(error: Error | null) => void> = [];
  syncs = 0;

  constructor(private readonly path: string) {}

  sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push((error) => (error ? reject(error) : resolve()));
      if (!this.running) this.start();
    });
  }

  private start(): void {
    const batch = this.waiting;
    this.waiting = [];
    this.running = true;
    this.syncs++;
    fsyncPath(this.path).then(
      () => this.done(batch, null),
      (error: Error) => this.done(batch, error),
    );
  }

  private done(batch: Array<(error: Error | null) => void>, error: Error | null): void {
    this.running = false;
    for (const settle of batch) settle(error);
    if (this.waiting.length > 0) this.start();
  }
}

export class Maildir {
  readonly root: string;
  private readonly newSync: DirSyncer;

  constructor(root: string) {
    this.root = root;
    for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(root, sub), { recursive: true, mode: 0o700 });
    this.newSync = new DirSyncer(join(root, 'new'));
  }

  /**
   * Delivers `parts` (concatenated) as new/`name`; resolves once the file and
   * its directory entry are durable. `duplicate` when new/`name` already
   * existed (an earlier delivery of the same message).
   */
  async deliver(name: string, parts: Uint8Array[]): Promise<{ duplicate: boolean }> {
    const tmp = join(this.root, 'tmp', `${name}.${randomBytes(4).toString('hex')}`);
    const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await handle.writev(parts);
      await handle.sync();
    } finally {
      await handle.close();
    }
    let duplicate = false;
    try {
      await link(tmp, join(this.root, 'new', name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        await unlink(tmp).catch(() => {});
        throw error;
      }
      duplicate = true;
    }
    await unlink(tmp);
    await this.newSync.sync();
    return { duplicate };
  }

  get dirSyncs(): number {
    return this.newSync.syncs;
  }
}

let sinkCounter = 0;

/**
 * An SMTP sink that writes every message into a Maildir before the 250
 * reply: tmp/ file, fsync, rename into new/, fsync of new/ (`file+dir`, the
 * durable way), or without the directory fsync (`file`), or without any
 * (`none`). One message, one set of fsyncs: nothing is grouped.
 */
export class MaildirSink implements SmtpSink {
  private readonly host = maildirHost();
  readonly root: string;

  constructor(
    root: string,
    private readonly sync: MaildirSync = 'file+dir',
  ) {
    this.root = root;
    for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(root, sub), { recursive: true, mode: 0o700 });
  }

  begin(envelope: Envelope): SinkMessage {
    const chunks: Buffer[] = [];
    const head = Buffer.from(`Return-Path: <${envelope.from}>\n${envelope.to.map((to) => `Delivered-To: ${to}\n`).join('')}`, 'latin1');
    chunks.push(head);
    let done = false;
    const sink = this;
    return {
      failed: false,
      append(bytes: Uint8Array, start: number, end: number) {
        chunks.push(Buffer.from(bytes.subarray(start, end)));
      },
      abort() {
        done = true;
      },
      async commit() {
        if (done) throw new Error('message already finished');
        done = true;
        const now = Date.now();
        const name = `${Math.floor(now / 1000)}.M${now % 1000}P${process.pid}Q${++sinkCounter}.${sink.host}`;
        const content = [chunks[0]!, Buffer.from(toUnixLines(Buffer.concat(chunks.slice(1))))];
        const tmp = join(sink.root, 'tmp', name);
        const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
        try {
          await handle.writev(content);
          if (sink.sync !== 'none') await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(tmp, join(sink.root, 'new', name));
        if (sink.sync === 'file+dir') await fsyncPath(join(sink.root, 'new'));
        return name;
      },
    };
  }
}
