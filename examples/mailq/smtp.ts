/**
 * An SMTP receiver (RFC 5321) for one connection: EHLO/HELO, MAIL FROM,
 * RCPT TO, DATA (with dot-unstuffing), RSET, NOOP, QUIT, and the SIZE
 * (RFC 1870), PIPELINING (RFC 2920) and 8BITMIME extensions.
 *
 * The message data goes into a SinkMessage as it arrives — for the mail
 * queue, straight into the queue entry's memory — and the final reply to
 * DATA is sent only when the sink's commit() resolved (the message is
 * durable). Pipelined commands are answered in order, with replies batched
 * into one write per burst of input.
 */
import type { Socket } from 'node:net';
import type { Envelope } from './layout.js';

/** A message being received. */
export interface SinkMessage {
  append(bytes: Uint8Array, start: number, end: number): void;
  /** True once the message can no longer be stored (commit() will reject). */
  readonly failed: boolean;
  /** Durable: resolves with the queue id. */
  commit(): Promise<string>;
  abort(): void;
}

/** Where received messages go. */
export interface SmtpSink {
  /** A new message for `envelope` of about `sizeHint` bytes (0: unknown); null when nothing can be stored now. */
  begin(envelope: Envelope, sizeHint: number): SinkMessage | null;
}

export interface SmtpOptions {
  /** The name this server gives itself in replies. */
  hostname: string;
  /** Advertised with SIZE and enforced (bytes of message data). */
  maxMessageBytes: number;
  /** Recipients per message (RFC 5321 requires at least 100). */
  maxRecipients?: number;
  /** Closes a connection idle this long (default 5 minutes). */
  idleTimeoutMs?: number;
  /** Prepend a Received: trace header to each message (default true). */
  trace?: boolean;
  /** Errors after which the connection is closed (default 20). */
  maxErrors?: number;
  /** Called with (error) when a commit fails (for logs). */
  onError?: (error: unknown) => void;
}

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const MAX_LINE = 4096;
const CR_BYTE = new Uint8Array([CR]);

const enum Data {
  LineStart,
  Mid,
  Dot,
  DotCr,
}

/** What a failed commit tells the client. */
export function commitFailureReply(error: unknown): string {
  const code = (error as { code?: string })?.code;
  if (code === 'ETOOBIG') return '552 Message size exceeds fixed maximum message size';
  if (code === 'EFULL') return '452 Insufficient system storage';
  return '451 Requested action aborted: local error in processing';
}

/** `<addr>` or a bare address, then parameters; null when malformed. */
export function parsePath(text: string): { address: string; params: string[] } | null {
  const rest = text.trimStart();
  let address: string;
  let after: string;
  if (rest.startsWith('<')) {
    const close = rest.indexOf('>');
    if (close < 0) return null;
    address = rest.slice(1, close);
    after = rest.slice(close + 1);
    if (after.length > 0 && after[0] !== ' ') return null;
    // A source route (<@a,@b:user@c>) is accepted and ignored (RFC 5321 §4.1.2).
    if (address.startsWith('@')) {
      const colon = address.indexOf(':');
      if (colon < 0) return null;
      address = address.slice(colon + 1);
    }
  } else {
    const space = rest.indexOf(' ');
    address = space < 0 ? rest : rest.slice(0, space);
    after = space < 0 ? '' : rest.slice(space);
    if (address.length === 0) return null;
  }
  if (/[\s<>]/.test(address)) return null;
  return { address, params: after.split(' ').filter(Boolean) };
}

// Idle connections are found by one sweep over all sessions, not by a
// timer per session re-armed on every packet.
const liveSessions = new Set<SmtpSession>();
let sweeper: NodeJS.Timeout | null = null;

function track(session: SmtpSession): void {
  liveSessions.add(session);
  if (sweeper === null) {
    sweeper = setInterval(() => {
      const now = Date.now();
      for (const live of liveSessions) live.checkIdle(now);
    }, 250);
    sweeper.unref();
  }
}

function untrack(session: SmtpSession): void {
  liveSessions.delete(session);
  if (liveSessions.size === 0 && sweeper !== null) {
    clearInterval(sweeper);
    sweeper = null;
  }
}

let cachedDateSecond = -1;
let cachedDate = '';
/** RFC 5322 date-time, cached per second. */
function rfc5322Date(now: number): string {
  const second = Math.floor(now / 1000);
  if (second !== cachedDateSecond) {
    cachedDateSecond = second;
    cachedDate = new Date(second * 1000).toUTCString().replace('GMT', '+0000');
  }
  return cachedDate;
}

export class SmtpSession {
  private readonly hostname: string;
  private readonly maxMessageBytes: number;
  private readonly maxRecipients: number;
  private readonly trace: boolean;
  private readonly maxErrors: number;
  private helo: string | null = null;
  private esmtp = false;
  private from: string | null = null;
  private to: string[] = [];
  private sizeHint = 0;
  private bodyType = '';
  private message: SinkMessage | null = null;
  private dataBytes = 0;
  private dataTooBig = false;
  private dataState = Data.LineStart;
  private prevCr = false;
  private inData = false;
  private discardingLine = false;
  private partial: Buffer | null = null;
  private queued: Buffer[] = [];
  private busy = false;
  private out = '';
  private errors = 0;
  private closed = false;
  private lastActivity = Date.now();
  private readonly idleTimeoutMs: number;
  /** Resolves when the session has ended. */
  readonly done: Promise<void>;
  private finish!: () => void;

  constructor(
    private readonly socket: Socket,
    private readonly sink: SmtpSink,
    private readonly options: SmtpOptions,
  ) {
    this.hostname = options.hostname;
    this.maxMessageBytes = options.maxMessageBytes;
    this.maxRecipients = options.maxRecipients ?? 100;
    this.trace = options.trace ?? true;
    this.maxErrors = options.maxErrors ?? 20;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 300_000;
    this.done = new Promise((resolve) => (this.finish = resolve));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.teardown());
    socket.on('close', () => this.teardown());
    socket.on('end', () => socket.end());
    track(this);
    this.send(`220 ${this.hostname} ESMTP offpath-mailq`);
    this.flushOut();
  }

  /** Ends the session: 421 to the client (unless it is mid-commit, which finishes first). */
  shutdown(): void {
    if (this.closed) return;
    if (this.busy) {
      this.closeAfterCommit = true;
      return;
    }
    this.send(`421 ${this.hostname} Service not available, closing transmission channel`);
    this.flushOut();
    this.close();
  }

  private closeAfterCommit = false;

  /** @internal Closes the session when it has been idle too long (not while a commit runs). */
  checkIdle(now: number): void {
    if (this.closed || this.busy || now - this.lastActivity < this.idleTimeoutMs) return;
    this.send(`421 ${this.hostname} Error: timeout exceeded`);
    this.flushOut();
    this.close();
  }

  private send(line: string): void {
    this.out += `${line}\r\n`;
  }

  private flushOut(): void {
    if (this.out.length === 0 || this.closed) return;
    this.socket.write(this.out);
    this.out = '';
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end();
    this.teardown();
  }

  private teardown(): void {
    this.closed = true;
    untrack(this);
    if (this.message && !this.busy) {
      this.message.abort();
      this.message = null;
    }
    if (!this.socket.destroyed) setTimeout(() => this.socket.destroy(), 2000).unref();
    this.finish();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastActivity = Date.now();
    if (this.busy) {
      this.queued.push(chunk);
      if (this.queued.length > 64) this.socket.pause();
      return;
    }
    this.pump(chunk);
  }

  /** Processes input until it is used up or a commit must be waited for. */
  private pump(chunk: Buffer): void {
    let buf = chunk;
    let at = 0;
    for (;;) {
      if (this.closed) return;
      if (at >= buf.length) {
        const next = this.queued.shift();
        if (next === undefined) break;
        buf = next;
        at = 0;
        continue;
      }
      if (this.inData) {
        at = this.dataBytesIn(buf, at);
        if (!this.inData) {
          // End of data: reply once the message is durable, then go on with the rest.
          const rest = at < buf.length ? buf.subarray(at) : null;
          if (rest) this.queued.unshift(rest);
          this.endData();
          return;
        }
        continue;
      }
      // Command mode: one line at a time.
      const lf = buf.indexOf(LF, at);
      if (lf < 0) {
        const tail = buf.subarray(at);
        this.partial = this.partial ? Buffer.concat([this.partial, tail]) : Buffer.from(tail);
        if (this.partial.length > MAX_LINE) {
          this.partial = null;
          this.discardingLine = true;
        }
        break;
      }
      let line: Buffer;
      if (this.partial) {
        line = Buffer.concat([this.partial, buf.subarray(at, lf)]);
        this.partial = null;
      } else {
        line = buf.subarray(at, lf);
      }
      at = lf + 1;
      if (this.discardingLine) {
        this.discardingLine = false;
        this.error('500 Error: line too long');
        continue;
      }
      if (line.length > MAX_LINE) {
        this.error('500 Error: line too long');
        continue;
      }
      const end = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
      this.command(line.toString('latin1', 0, end));
    }
    this.flushOut();
    if (this.socket.isPaused() && !this.closed) this.socket.resume();
  }

  private error(reply: string): void {
    this.send(reply);
    if (++this.errors >= this.maxErrors) {
      this.send(`421 ${this.hostname} Error: too many errors`);
      this.flushOut();
      this.close();
    }
  }

  private resetTransaction(): void {
    if (this.message) this.message.abort();
    this.message = null;
    this.from = null;
    this.to = [];
    this.sizeHint = 0;
    this.bodyType = '';
  }

  private command(line: string): void {
    const space = line.indexOf(' ');
    const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const arg = space < 0 ? '' : line.slice(space + 1).trim();
    switch (verb) {
      case 'EHLO':
      case 'HELO': {
        if (arg.length === 0 || /\s/.test(arg)) {
          this.error(`501 Syntax: ${verb} hostname`);
          return;
        }
        this.resetTransaction();
        this.helo = arg;
        this.esmtp = verb === 'EHLO';
        if (this.esmtp) {
          this.send(`250-${this.hostname}`);
          this.send('250-PIPELINING');
          this.send(`250-SIZE ${this.maxMessageBytes}`);
          this.send('250 8BITMIME');
        } else {
          this.send(`250 ${this.hostname}`);
        }
        return;
      }
      case 'MAIL':
        return this.mail(arg);
      case 'RCPT':
        return this.rcpt(arg);
      case 'DATA':
        return this.data(arg);
      case 'RSET':
        if (arg.length > 0) return this.error('501 Syntax: RSET');
        this.resetTransaction();
        this.send('250 OK');
        return;
      case 'NOOP':
        this.send('250 OK');
        return;
      case 'QUIT':
        this.send(`221 ${this.hostname} closing connection`);
        this.flushOut();
        this.close();
        return;
      case 'VRFY':
      case 'EXPN':
      case 'HELP':
      case 'TURN':
      case 'ETRN':
        this.error('502 Error: command not implemented');
        return;
      case '':
        this.error('500 Error: bad syntax');
        return;
      default:
        this.error('500 Error: command not recognized');
    }
  }

  private mail(arg: string): void {
    if (this.helo === null) return this.error('503 Error: send HELO/EHLO first');
    if (this.from !== null) return this.error('503 Error: nested MAIL command');
    if (!/^FROM:/i.test(arg)) return this.error('501 Syntax: MAIL FROM:<address>');
    const path = parsePath(arg.slice(5));
    if (path === null) return this.error('501 Syntax: MAIL FROM:<address>');
    let size = 0;
    let body = '';
    for (const param of path.params) {
      const eq = param.indexOf('=');
      const key = (eq < 0 ? param : param.slice(0, eq)).toUpperCase();
      const value = eq < 0 ? '' : param.slice(eq + 1);
      if (this.esmtp && key === 'SIZE' && /^[0-9]{1,20}$/.test(value)) {
        size = Number(value);
        if (size > this.maxMessageBytes) return this.error('552 Message size exceeds fixed maximum message size');
      } else if (this.esmtp && key === 'BODY' && /^(7BIT|8BITMIME)$/i.test(value)) {
        body = value.toUpperCase();
      } else {
        return this.error(`555 Unsupported option: ${param}`);
      }
    }
    this.from = path.address;
    this.sizeHint = size;
    this.bodyType = body;
    this.send('250 OK');
  }

  private rcpt(arg: string): void {
    if (this.from === null) return this.error('503 Error: need MAIL command');
    if (!/^TO:/i.test(arg)) return this.error('501 Syntax: RCPT TO:<address>');
    const path = parsePath(arg.slice(3));
    if (path === null || path.address.length === 0) return this.error('501 Syntax: RCPT TO:<address>');
    if (path.params.length > 0) return this.error(`555 Unsupported option: ${path.params[0]}`);
    if (this.to.length >= this.maxRecipients) {
      this.send('452 Too many recipients');
      return;
    }
    this.to.push(path.address);
    this.send('250 OK');
  }

  private data(arg: string): void {
    if (arg.length > 0) return this.error('501 Syntax: DATA');
    if (this.from === null) return this.error('503 Error: need MAIL command');
    if (this.to.length === 0) return this.error('503 Error: need RCPT command');
    const now = Date.now();
    const envelope: Envelope = { from: this.from, to: this.to, helo: this.helo, client: this.socket.remoteAddress ?? '', at: now };
    if (this.bodyType) envelope.body = this.bodyType;
    // The hint (SIZE) picks the entry class; the Received: line comes on top.
    const message = this.sink.begin(envelope, this.sizeHint > 0 ? this.sizeHint + 256 : 0);
    if (message === null || message.failed) {
      message?.abort();
      this.send('452 Insufficient system storage');
      return;
    }
    this.message = message;
    this.inData = true;
    this.dataState = Data.LineStart;
    this.prevCr = false;
    this.dataBytes = 0;
    this.dataTooBig = false;
    this.send('354 End data with <CR><LF>.<CR><LF>');
    if (this.trace) {
      const trace = Buffer.from(
        `Received: from ${this.helo} (${this.socket.remoteAddress ?? 'unknown'})\r\n` +
          `\tby ${this.hostname} (offpath-mailq) with ${this.esmtp ? 'ESMTP' : 'SMTP'};\r\n` +
          `\t${rfc5322Date(now)}\r\n`,
        'latin1',
      );
      message.append(trace, 0, trace.length);
    }
  }

  private emit(buf: Uint8Array, start: number, end: number): void {
    if (end <= start) return;
    this.dataBytes += end - start;
    if (this.dataBytes > this.maxMessageBytes) {
      this.dataTooBig = true;
      return;
    }
    this.message!.append(buf, start, end);
  }

  /** Consumes message data from buf[at...]; returns where it stopped (after the final ".\r\n" if found). */
  private dataBytesIn(buf: Buffer, at: number): number {
    const n = buf.length;
    let p = at;
    while (p < n) {
      switch (this.dataState) {
        case Data.LineStart:
          if (buf[p] === DOT) {
            this.dataState = Data.Dot;
            p++;
            continue;
          }
          this.dataState = Data.Mid;
          this.prevCr = false;
          continue;
        case Data.Mid: {
          const lf = buf.indexOf(LF, p);
          if (lf < 0) {
            this.emit(buf, p, n);
            this.prevCr = buf[n - 1] === CR;
            return n;
          }
          this.emit(buf, p, lf + 1);
          const before = lf > p ? buf[lf - 1] === CR : this.prevCr;
          // Only CRLF ends a line: a bare LF never starts the end-of-data sequence.
          this.dataState = before ? Data.LineStart : Data.Mid;
          this.prevCr = false;
          p = lf + 1;
          continue;
        }
        case Data.Dot:
          if (buf[p] === CR) {
            this.dataState = Data.DotCr;
            p++;
            continue;
          }
          // A stuffed line: the leading dot is dropped, the rest is data.
          this.dataState = Data.Mid;
          this.prevCr = false;
          continue;
        case Data.DotCr:
          if (buf[p] === LF) {
            this.inData = false;
            return p + 1;
          }
          // ".\r" then something else: the dot was stuffing, the CR is data.
          this.emit(CR_BYTE, 0, 1);
          this.dataState = Data.Mid;
          this.prevCr = true;
          continue;
      }
    }
    return p;
  }

  private endData(): void {
    const message = this.message!;
    this.message = null;
    const tooBig = this.dataTooBig;
    this.from = null;
    this.to = [];
    this.sizeHint = 0;
    this.bodyType = '';
    if (tooBig) {
      message.abort();
      this.send('552 Message size exceeds fixed maximum message size');
      this.resume();
      return;
    }
    this.busy = true;
    this.flushOut();
    message.commit().then(
      (id) => {
        this.send(`250 OK: queued as ${id}`);
        this.afterCommit();
      },
      (error: unknown) => {
        this.options.onError?.(error);
        this.send(commitFailureReply(error));
        this.afterCommit();
      },
    );
  }

  private afterCommit(): void {
    this.busy = false;
    this.lastActivity = Date.now();
    if (this.closed) return;
    if (this.closeAfterCommit) {
      this.send(`421 ${this.hostname} Service not available, closing transmission channel`);
      this.flushOut();
      this.close();
      return;
    }
    this.resume();
  }

  private resume(): void {
    const next = this.queued.shift();
    if (next) this.pump(next);
    else {
      this.flushOut();
      if (this.socket.isPaused() && !this.closed) this.socket.resume();
    }
  }
}
