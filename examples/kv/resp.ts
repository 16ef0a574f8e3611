/**
 * RESP2, the Redis protocol, as redis-cli and redis-benchmark speak it:
 * requests are arrays of bulk strings (or inline lines, as typed into
 * telnet), replies are simple strings, errors, integers, bulk strings and
 * arrays. The parser works in place on the bytes received: a command's
 * arguments are offsets into the chunk, nothing is copied or allocated per
 * argument. Error texts follow Redis 7.
 */

const CR = 13;
const LF = 10;
/** Redis's proto-max-bulk-len default. */
export const MAX_BULK_BYTES = 512 * 1024 * 1024;
const MAX_MULTIBULK = 1024 * 1024;
const MAX_INLINE_BYTES = 64 * 1024;

export class ProtocolError extends Error {}

/** One parsed command: argument i is buffer[start[i], end[i]). */
export class Command {
  buffer: Buffer = Buffer.alloc(0);
  argc = 0;
  start = new Int32Array(16);
  end = new Int32Array(16);

  push(start: number, end: number): void {
    if (this.argc === this.start.length) {
      const s = new Int32Array(this.start.length * 2);
      s.set(this.start);
      this.start = s;
      const e = new Int32Array(this.end.length * 2);
      e.set(this.end);
      this.end = e;
    }
    this.start[this.argc] = start;
    this.end[this.argc] = end;
    this.argc++;
  }

  arg(i: number): Buffer {
    return this.buffer.subarray(this.start[i], this.end[i]);
  }

  /** Argument i as a latin1 string: binary-safe, one byte per character (index keys). */
  key(i: number): string {
    return this.buffer.toString('latin1', this.start[i], this.end[i]);
  }

  length(i: number): number {
    return this.end[i]! - this.start[i]!;
  }

  /** Case-insensitive comparison of argument i with an upper-case ASCII word. */
  is(i: number, upper: string): boolean {
    const s = this.start[i]!;
    if (this.end[i]! - s !== upper.length) return false;
    for (let j = 0; j < upper.length; j++) {
      const c = this.buffer[s + j]!;
      if ((c >= 97 && c <= 122 ? c - 32 : c) !== upper.charCodeAt(j)) return false;
    }
    return true;
  }
}

/**
 * Incremental request parser. feed() hands every complete command to
 * `onCommand` (which may return false to stop: QUIT, or a command that
 * must finish before the next); the rest waits for more bytes.
 */
export class RespParser {
  private pending: Buffer | null = null;
  /** Chunks of one large command still arriving, and the bytes it needs in all. */
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private need = 0;
  private readonly command = new Command();
  // Inline arguments are unescaped into buffers of their own.
  private inlineArgs: Buffer | null = null;

  constructor(private readonly onCommand: (command: Command) => boolean) {}

  /** Parses as much as possible; returns false when a command asked to stop. Throws ProtocolError. */
  feed(chunk: Buffer): boolean {
    let buffer = chunk;
    if (this.pending !== null) {
      // A large bulk arriving in pieces: collect until it is whole (no quadratic copying).
      if (this.need > 0 && this.pending.length + this.partsBytes + chunk.length < this.need) {
        this.parts.push(chunk);
        this.partsBytes += chunk.length;
        return true;
      }
      buffer = Buffer.concat([this.pending, ...this.parts, chunk]);
      this.pending = null;
      this.parts = [];
      this.partsBytes = 0;
    }
    this.need = 0;
    let pos = 0;
    const length = buffer.length;
    while (pos < length) {
      const next = buffer[pos] === 0x2a /* * */ ? this.parseMultibulk(buffer, pos) : this.parseInline(buffer, pos);
      if (next < 0) break; // incomplete
      pos = next;
      if (this.command.argc === 0) continue; // empty request
      if (!this.onCommand(this.command)) {
        this.pending = null;
        return false;
      }
    }
    if (pos < length) this.pending = Buffer.from(buffer.subarray(pos));
    return true;
  }

  /** Bytes received but not yet a whole command. */
  get buffered(): number {
    return (this.pending?.length ?? 0) + this.partsBytes;
  }

  private commandStart = 0;

  private parseMultibulk(buffer: Buffer, pos: number): number {
    this.commandStart = pos;
    const command = this.command;
    command.argc = 0;
    command.buffer = buffer;
    const eol = buffer.indexOf(CR, pos);
    if (eol < 0 || eol + 1 >= buffer.length) {
      if (buffer.length - pos > MAX_INLINE_BYTES) throw new ProtocolError('Protocol error: too big mbulk count string');
      return -1;
    }
    const count = parseInteger(buffer, pos + 1, eol);
    if (count === null || count > MAX_MULTIBULK) throw new ProtocolError('Protocol error: invalid multibulk length');
    let at = eol + 2;
    if (count <= 0) return at;
    for (let i = 0; i < count; i++) {
      if (at >= buffer.length) return -1;
      if (buffer[at] !== 0x24 /* $ */) {
        throw new ProtocolError(`Protocol error: expected '$', got '${String.fromCharCode(buffer[at]!)}'`);
      }
      const lineEnd = buffer.indexOf(CR, at);
      if (lineEnd < 0 || lineEnd + 1 >= buffer.length) {
        if (buffer.length - at > MAX_INLINE_BYTES) throw new ProtocolError('Protocol error: too big bulk count string');
        return -1;
      }
      const size = parseInteger(buffer, at + 1, lineEnd);
      if (size === null || size < 0 || size > MAX_BULK_BYTES) throw new ProtocolError('Protocol error: invalid bulk length');
      const dataStart = lineEnd + 2;
      // Like Redis, the two bytes after the data are skipped, not checked.
      if (dataStart + size + 2 > buffer.length) {
        this.need = dataStart + size + 2 - this.commandStart;
        return -1;
      }
      command.push(dataStart, dataStart + size);
      at = dataStart + size + 2;
    }
    return at;
  }

  private parseInline(buffer: Buffer, pos: number): number {
    const command = this.command;
    command.argc = 0;
    const eol = buffer.indexOf(LF, pos);
    if (eol < 0) {
      if (buffer.length - pos > MAX_INLINE_BYTES) throw new ProtocolError('Protocol error: too big inline request');
      return -1;
    }
    let lineEnd = eol;
    if (lineEnd > pos && buffer[lineEnd - 1] === CR) lineEnd--;
    const args = splitInline(buffer.subarray(pos, lineEnd));
    if (args === null) throw new ProtocolError('Protocol error: unbalanced quotes in request');
    // The unescaped arguments, laid end to end in one buffer.
    let total = 0;
    for (const arg of args) total += arg.length;
    const joined = this.inlineArgs && this.inlineArgs.length >= total ? this.inlineArgs : Buffer.allocUnsafe(Math.max(total, 256));
    this.inlineArgs = joined;
    command.buffer = joined;
    let at = 0;
    for (const arg of args) {
      arg.copy(joined, at);
      command.push(at, at + arg.length);
      at += arg.length;
    }
    return eol + 1;
  }
}

/** Integer of a protocol line (digits with an optional '-'), or null. */
function parseInteger(buffer: Buffer, start: number, end: number): number | null {
  if (start >= end || end - start > 18) return null;
  let negative = false;
  let i = start;
  if (buffer[i] === 0x2d) {
    negative = true;
    i++;
    if (i === end) return null;
  }
  let value = 0;
  for (; i < end; i++) {
    const c = buffer[i]! - 48;
    if (c < 0 || c > 9) return null;
    value = value * 10 + c;
  }
  return negative ? -value : value;
}

const HEX = /^[0-9a-fA-F]{2}$/;

/** Redis's sdssplitargs: whitespace-separated words, "double quotes" with escapes, 'single quotes'. */
export function splitInline(line: Buffer): Buffer[] | null {
  const args: Buffer[] = [];
  let i = 0;
  const n = line.length;
  const isSpace = (c: number | undefined) => c === 32 || c === 10 || c === 13 || c === 9 || c === 11 || c === 12 || c === 0;
  for (;;) {
    while (i < n && isSpace(line[i])) i++;
    if (i >= n) return args;
    const bytes: number[] = [];
    let inDouble = false;
    let inSingle = false;
    for (;;) {
      if (inDouble) {
        if (i >= n) return null;
        const c = line[i]!;
        if (c === 0x5c && i + 3 < n && line[i + 1] === 0x78 && HEX.test(line.toString('latin1', i + 2, i + 4))) {
          bytes.push(parseInt(line.toString('latin1', i + 2, i + 4), 16));
          i += 3;
        } else if (c === 0x5c && i + 1 < n) {
          i++;
          const e = line[i]!;
          bytes.push(e === 0x6e ? 10 : e === 0x72 ? 13 : e === 0x74 ? 9 : e === 0x62 ? 8 : e === 0x61 ? 7 : e);
        } else if (c === 0x22) {
          if (i + 1 < n && !isSpace(line[i + 1])) return null;
          inDouble = false;
          i++;
          break;
        } else bytes.push(c);
        i++;
      } else if (inSingle) {
        if (i >= n) return null;
        const c = line[i]!;
        if (c === 0x5c && i + 1 < n && line[i + 1] === 0x27) {
          i++;
          bytes.push(0x27);
        } else if (c === 0x27) {
          if (i + 1 < n && !isSpace(line[i + 1])) return null;
          inSingle = false;
          i++;
          break;
        } else bytes.push(c);
        i++;
      } else {
        if (i >= n) break;
        const c = line[i]!;
        if (isSpace(c)) break;
        if (c === 0x22) inDouble = true;
        else if (c === 0x27) inSingle = true;
        else bytes.push(c);
        i++;
      }
    }
    args.push(Buffer.from(bytes));
  }
}

// --- replies -----------------------------------------------------------------

export const OK = Buffer.from('+OK\r\n');
export const PONG = Buffer.from('+PONG\r\n');
export const NIL = Buffer.from('$-1\r\n');
export const EMPTY_ARRAY = Buffer.from('*0\r\n');
export const CRLF = Buffer.from('\r\n');
const SMALL_INTEGERS = Array.from({ length: 256 }, (_, i) => Buffer.from(`:${i}\r\n`));
const BULK_HEADERS = Array.from({ length: 1024 }, (_, i) => Buffer.from(`$${i}\r\n`));
const ARRAY_HEADERS = Array.from({ length: 256 }, (_, i) => Buffer.from(`*${i}\r\n`));

export function integerReply(value: number | bigint): Buffer {
  if (typeof value === 'number' && value >= 0 && value < 256 && Number.isInteger(value)) return SMALL_INTEGERS[value]!;
  return Buffer.from(`:${value}\r\n`);
}

export function bulkHeader(length: number): Buffer {
  return length < 1024 ? BULK_HEADERS[length]! : Buffer.from(`$${length}\r\n`);
}

export function arrayHeader(length: number): Buffer {
  return length < 256 ? ARRAY_HEADERS[length]! : Buffer.from(`*${length}\r\n`);
}

/** `-<text>\r\n`, with CR and LF in the text turned into spaces as Redis does. */
export function errorReply(text: string): Buffer {
  return Buffer.from(`-${text.replace(/[\r\n]/g, ' ')}\r\n`);
}

export function bulkReply(data: Uint8Array | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const header = bulkHeader(bytes.length);
  const out = Buffer.allocUnsafe(header.length + bytes.length + 2);
  header.copy(out, 0);
  out.set(bytes, header.length);
  out[out.length - 2] = CR;
  out[out.length - 1] = LF;
  return out;
}

export function simpleReply(text: string): Buffer {
  return Buffer.from(`+${text}\r\n`);
}

/** Encodes a command as redis-cli sends it (tests and benchmarks). */
export function encodeCommand(...args: Array<string | Uint8Array>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : Buffer.from(arg);
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, CRLF);
  }
  return Buffer.concat(parts);
}
