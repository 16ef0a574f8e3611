/**
 * A small SMTP client: enough to script conversations byte for byte (tests)
 * and to send mail with or without PIPELINING (the load generator).
 */
import { connect, type Socket } from 'node:net';

export interface Reply {
  code: number;
  /** The text of every line, without the code and separator. */
  lines: string[];
  /** The reply exactly as received, CRLFs included. */
  raw: string;
}

/** Dot-stuffs message data and appends the end-of-data line; data should use CRLF line ends. */
export function dotStuff(data: string | Buffer): Buffer {
  const text = Buffer.isBuffer(data) ? data.toString('latin1') : data;
  let stuffed = text.replace(/(^|\r\n)\./g, '$1..');
  if (stuffed.length > 0 && !stuffed.endsWith('\r\n')) stuffed += '\r\n';
  return Buffer.from(`${stuffed}.\r\n`, 'latin1');
}

export class SmtpClient {
  private buffered = '';
  private waiters: Array<() => void> = [];
  private ended = false;
  /** Everything received, as received. */
  transcript = '';
  greeting!: Reply;

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      this.buffered += text;
      this.transcript += text;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<SmtpClient> {
    const socket = connect(port, host);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new SmtpClient(socket);
    client.greeting = await client.reply();
    return client;
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Writes raw bytes. */
  write(data: string | Uint8Array): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** The next complete reply (multi-line replies joined). Rejects if the connection closes first. */
  async reply(timeoutMs = 10_000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = this.takeReply();
      if (parsed) return parsed;
      if (this.ended) throw new Error(`connection closed; unparsed: ${JSON.stringify(this.buffered)}`);
      if (Date.now() > deadline) throw new Error(`no reply within ${timeoutMs} ms; buffered: ${JSON.stringify(this.buffered)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Exactly the bytes of the next `count` replies. */
  async replies(count: number, timeoutMs = 10_000): Promise<string> {
    let raw = '';
    for (let i = 0; i < count; i++) raw += (await this.reply(timeoutMs)).raw;
    return raw;
  }

  private takeReply(): Reply | null {
    const lines: string[] = [];
    let at = 0;
    for (;;) {
      const end = this.buffered.indexOf('\r\n', at);
      if (end < 0) return null;
      const line = this.buffered.slice(at, end);
      at = end + 2;
      lines.push(line.slice(4));
      if (line.length < 4 || line[3] !== '-') {
        const raw = this.buffered.slice(0, at);
        this.buffered = this.buffered.slice(at);
        return { code: Number(line.slice(0, 3)), lines, raw };
      }
    }
  }

  /** Sends one command line and waits for its reply. */
  async command(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /**
   * Sends one message; returns the final reply to the data. With
   * `pipelining`, MAIL, RCPT and DATA go out in one write.
   */
  async send(from: string, to: string[], data: string | Buffer, options: { pipelining?: boolean; size?: number } = {}): Promise<Reply> {
    const mail = `MAIL FROM:<${from}>${options.size !== undefined ? ` SIZE=${options.size}` : ''}\r\n`;
    const rcpts = to.map((address) => `RCPT TO:<${address}>\r\n`);
    const replies: Reply[] = [];
    if (options.pipelining) {
      this.write(mail + rcpts.join('') + 'DATA\r\n');
      for (let i = 0; i < 2 + to.length; i++) replies.push(await this.reply());
    } else {
      replies.push(await this.command(mail.slice(0, -2)));
      if (replies[0]!.code !== 250) return replies[0]!;
      for (const rcpt of rcpts) replies.push(await this.command(rcpt.slice(0, -2)));
      replies.push(await this.command('DATA'));
    }
    const last = replies[replies.length - 1]!;
    const failed = replies.find((r) => r.code >= 400 && r !== last);
    if (last.code !== 354) return failed ?? last;
    this.write(dotStuff(data));
    return this.reply(60_000);
  }

  async quit(): Promise<void> {
    if (this.ended) return;
    try {
      await this.command('QUIT');
    } catch {
      // closed already
    }
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
