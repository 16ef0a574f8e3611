/**
 * The RESP front end: many clients on one event loop, one KvStore behind
 * them. Commands change the in-memory index at once; a reply that depends on
 * a change (its own write, or a value another client wrote that is not yet
 * acknowledged) is held until the frame holding that change is acknowledged
 * by the device — so a client never sees a write that could be lost. Writes
 * of every client that arrive in the same event-loop turn go to the device
 * as one batch (see store.ts). Replies keep each connection's order; values
 * not in memory are read from the VSA without holding up other clients.
 */
import * as net from 'node:net';
import { KvError, type Entry, type KvStore } from './store.js';
import { recordBytes } from './format.js';
import {
  Command,
  CRLF,
  EMPTY_ARRAY,
  NIL,
  OK,
  PONG,
  ProtocolError,
  RespParser,
  arrayHeader,
  bulkHeader,
  bulkReply,
  errorReply,
  integerReply,
} from './resp.js';

export const KV_VERSION = '0.1.0';
/** What INFO reports as redis_version: the protocol and command set we follow. */
const REDIS_COMPAT_VERSION = '7.0.0';

export interface KvServerOptions {
  port?: number;
  host?: string;
  /** One line per event (start, stop, errors); never per command. */
  log?: (message: string) => void;
}

/** A reply still to come (a value being read from the VSA). */
class Hole {
  data: Buffer | null = null;
}

const SCRATCH_BYTES = 16 * 1024;
const COPY_LIMIT = 2048;

class Connection {
  readonly parser: RespParser;
  /** Reply bytes not yet written: whole buffers and holes, then the scratch tail. */
  private chunks: Array<Buffer | Hole> = [];
  private scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  private scratchLength = 0;
  private holes = 0;
  /** Replies queued here may go out once the log acknowledged this seq. */
  waitSeq = 0;
  closing = false;
  closed = false;
  paused = false;

  constructor(
    readonly server: KvServer,
    readonly socket: net.Socket,
  ) {
    this.parser = new RespParser((command) => server.execute(this, command));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.server.resumeIfAble(this));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.server.forget(this);
    });
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    try {
      this.parser.feed(chunk);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.write(errorReply(`ERR ${error.message}`));
      this.closing = true;
    }
    this.flush();
    if (!this.closing) this.server.throttle(this);
  }

  /**
   * Appends a reply: copied when small or when `stable` is false; a large
   * stable buffer (a cached value, never changed in place) is queued as it is.
   */
  write(bytes: Buffer, stable = true): void {
    if (bytes.length <= COPY_LIMIT || !stable) {
      if (bytes.length > this.scratch.length) {
        this.spill();
        this.chunks.push(Buffer.from(bytes));
        return;
      }
      if (this.scratchLength + bytes.length > this.scratch.length) this.spill();
      bytes.copy(this.scratch, this.scratchLength);
      this.scratchLength += bytes.length;
    } else {
      this.spill();
      this.chunks.push(bytes);
    }
  }

  /** A bulk reply: header, value, CRLF. `stable`: see write(). */
  writeBulk(value: Buffer, stable = false): void {
    this.write(bulkHeader(value.length));
    this.write(value, stable);
    this.write(CRLF);
  }

  hole(): Hole {
    this.spill();
    const hole = new Hole();
    this.chunks.push(hole);
    this.holes++;
    return hole;
  }

  fill(hole: Hole, data: Buffer): void {
    hole.data = data;
    this.holes--;
    this.flush();
  }

  needs(seq: number): void {
    if (seq > this.waitSeq) this.waitSeq = seq;
  }

  private spill(): void {
    if (this.scratchLength === 0) return;
    const copy = Buffer.allocUnsafe(this.scratchLength);
    this.scratch.copy(copy, 0, 0, this.scratchLength);
    this.chunks.push(copy);
    this.scratchLength = 0;
  }

  /** Writes what may go out: everything acknowledged, up to the first reply still being read. */
  flush(): void {
    if (this.closed) return;
    const store = this.server.store;
    if (this.waitSeq > store.durableSeq) {
      this.server.blocked.add(this);
      return;
    }
    if (this.chunks.length === 0) {
      if (this.scratchLength > 0) {
        const copy = Buffer.allocUnsafe(this.scratchLength);
        this.scratch.copy(copy, 0, 0, this.scratchLength);
        this.scratchLength = 0;
        if (!this.socket.write(copy)) this.server.pause(this);
      }
    } else {
      this.socket.cork();
      let sent = 0;
      for (; sent < this.chunks.length; sent++) {
        const chunk = this.chunks[sent]!;
        if (chunk instanceof Hole) {
          if (chunk.data === null) break;
          this.socket.write(chunk.data);
        } else this.socket.write(chunk);
      }
      this.chunks = sent === this.chunks.length ? [] : this.chunks.slice(sent);
      if (this.chunks.length === 0 && this.scratchLength > 0) {
        const copy = Buffer.allocUnsafe(this.scratchLength);
        this.scratch.copy(copy, 0, 0, this.scratchLength);
        this.scratchLength = 0;
        this.socket.write(copy);
      }
      this.socket.uncork();
      if (this.socket.writableNeedDrain) this.server.pause(this);
    }
    if (this.chunks.length === 0 && this.scratchLength === 0) {
      this.server.blocked.delete(this);
      if (this.closing) this.socket.end();
    }
  }
}

type Handler = (conn: Connection, cmd: Command) => void;

interface CommandSpec {
  name: string;
  /** Redis convention: n > 0 exactly n arguments (with the name), n < 0 at least -n. */
  arity: number;
  run: Handler;
}

const OOM = errorReply("OOM command not allowed when used memory > 'maxmemory'.");
const TOO_BIG = errorReply('ERR string exceeds maximum allowed size (proto-max-bulk-len)');
const NOT_INTEGER = errorReply('ERR value is not an integer or out of range');
const SYNTAX = errorReply('ERR syntax error');
const OVERFLOW = errorReply('ERR increment or decrement would overflow');

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

/** Redis's string2ll: an int64 written canonically ("-0", "+1", "01", " 1" are not). */
export function parseInt64(bytes: Buffer): bigint | null {
  const n = bytes.length;
  if (n === 0 || n > 20) return null;
  let i = 0;
  if (bytes[0] === 0x2d) {
    if (n === 1) return null;
    i = 1;
  }
  if (bytes[i] === 0x30) return n === 1 ? 0n : null;
  for (let j = i; j < n; j++) if (bytes[j]! < 0x30 || bytes[j]! > 0x39) return null;
  const value = BigInt(bytes.toString('latin1', 0, n));
  return value > INT64_MAX || value < INT64_MIN ? null : value;
}

export class KvServer {
  readonly store: KvStore;
  readonly blocked = new Set<Connection>();
  private readonly connections = new Set<Connection>();
  private readonly paused = new Set<Connection>();
  private readonly server: net.Server;
  private readonly commands = new Map<string, CommandSpec>();
  private readonly options: KvServerOptions;
  private readonly started = Date.now();
  private totalConnections = 0;
  private totalCommands = 0;
  private stopping = false;
  port = 0;

  constructor(store: KvStore, options: KvServerOptions = {}) {
    this.store = store;
    this.options = options;
    this.server = net.createServer((socket) => this.accept(socket));
    this.server.on('error', (error) => this.options.log?.(`server error: ${error.message}`));
    store.onDurable = () => this.onDurable();
    this.registerCommands();
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 6379, this.options.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        this.port = (this.server.address() as net.AddressInfo).port;
        resolve(this.port);
      });
    });
  }

  /** Stops accepting, waits for acknowledged replies to go out, closes every connection. */
  async close(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.store.sync().catch(() => {});
    for (const conn of this.connections) conn.flush();
    for (const conn of this.connections) conn.socket.end();
    const deadline = setTimeout(() => {
      for (const conn of this.connections) conn.socket.destroy();
    }, 1000);
    await closed;
    clearTimeout(deadline);
  }

  get clients(): number {
    return this.connections.size;
  }

  private accept(socket: net.Socket): void {
    if (this.stopping || this.store.failed) {
      socket.destroy();
      return;
    }
    this.totalConnections++;
    this.connections.add(new Connection(this, socket));
  }

  /** @internal */
  forget(conn: Connection): void {
    this.connections.delete(conn);
    this.blocked.delete(conn);
    this.paused.delete(conn);
  }

  /** @internal Stop reading from a client whose replies pile up or while the device is behind. */
  pause(conn: Connection): void {
    if (conn.paused) return;
    conn.paused = true;
    conn.socket.pause();
    this.paused.add(conn);
  }

  /** @internal */
  throttle(conn: Connection): void {
    if (this.store.congested) this.pause(conn);
  }

  /** @internal */
  resumeIfAble(conn: Connection): void {
    if (!conn.paused || this.store.congested || conn.socket.writableNeedDrain) return;
    conn.paused = false;
    this.paused.delete(conn);
    conn.socket.resume();
  }

  private onDurable(): void {
    const failure = this.store.failed;
    if (failure) {
      // Acknowledged writes are safe; nothing more can be promised: drop every client.
      this.options.log?.(`the log failed (${failure.message}); closing every connection`);
      for (const conn of this.connections) conn.socket.destroy();
      this.server.close();
      return;
    }
    if (this.blocked.size > 0) {
      const durable = this.store.durableSeq;
      for (const conn of this.blocked) if (conn.waitSeq <= durable) conn.flush();
    }
    if (this.paused.size > 0 && !this.store.congested) for (const conn of this.paused) this.resumeIfAble(conn);
  }

  /** @internal Runs one command; false stops the connection's parser (QUIT). */
  execute(conn: Connection, cmd: Command): boolean {
    this.totalCommands++;
    const name = cmd.key(0);
    const spec = this.commands.get(name) ?? this.commands.get(name.toUpperCase());
    if (spec === undefined) {
      let args = '';
      for (let i = 1; i < cmd.argc && args.length < 128; i++) args += `'${cmd.key(i).slice(0, 128 - args.length)}' `;
      conn.write(errorReply(`ERR unknown command '${name.slice(0, 128)}', with args beginning with: ${args}`));
      return true;
    }
    if ((spec.arity > 0 && cmd.argc !== spec.arity) || cmd.argc < -spec.arity) {
      conn.write(errorReply(`ERR wrong number of arguments for '${spec.name}' command`));
      return true;
    }
    try {
      spec.run(conn, cmd);
    } catch (error) {
      if (error instanceof KvError) {
        conn.write(error.code === 'FULL' ? OOM : error.code === 'TOOBIG' ? TOO_BIG : errorReply(`ERR ${error.message}`));
      } else throw error;
    }
    return !conn.closing;
  }

  // --- commands ----------------------------------------------------------------

  private register(name: string, arity: number, run: Handler): void {
    const spec = { name, arity, run };
    this.commands.set(name.toUpperCase(), spec);
    this.commands.set(name, spec);
  }

  /** The value of a live entry into the reply: now, or through a hole once read. */
  private replyValue(conn: Connection, entry: Entry): void {
    let hole: Hole | null = null;
    const value = this.store.readValue(entry, (error, data) => {
      if (error || data === null) conn.fill(hole!, errorReply(`ERR reading the value failed: ${error?.message}`));
      else conn.fill(hole!, bulkReply(data));
    });
    if (value !== null) conn.writeBulk(value, true);
    else hole = conn.hole();
  }

  private observe(conn: Connection, key: string, entry: Entry | undefined): void {
    const seq = this.store.observedSeq(key, entry);
    if (seq > this.store.durableSeq) conn.needs(seq);
  }

  private registerCommands(): void {
    const store = this.store;

    this.register('ping', -1, (conn, cmd) => {
      if (cmd.argc > 2) return conn.write(errorReply("ERR wrong number of arguments for 'ping' command"));
      if (cmd.argc === 2) conn.writeBulk(cmd.arg(1));
      else conn.write(PONG);
    });
    this.register('echo', 2, (conn, cmd) => conn.writeBulk(cmd.arg(1)));
    this.register('quit', -1, (conn) => {
      conn.write(OK);
      conn.closing = true;
    });
    this.register('select', 2, (conn, cmd) => {
      const index = parseInt64(cmd.arg(1));
      if (index === null) return conn.write(NOT_INTEGER);
      conn.write(index === 0n ? OK : errorReply('ERR DB index is out of range'));
    });

    this.register('get', 2, (conn, cmd) => {
      const key = cmd.key(1);
      const entry = store.lookup(key);
      this.observe(conn, key, entry);
      if (entry === undefined) conn.write(NIL);
      else this.replyValue(conn, entry);
    });

    this.register('mget', -2, (conn, cmd) => {
      conn.write(arrayHeader(cmd.argc - 1));
      for (let i = 1; i < cmd.argc; i++) {
        const key = cmd.key(i);
        const entry = store.lookup(key);
        this.observe(conn, key, entry);
        if (entry === undefined) conn.write(NIL);
        else this.replyValue(conn, entry);
      }
    });

    this.register('set', -3, (conn, cmd) => this.set(conn, cmd));

    this.register('mset', -3, (conn, cmd) => {
      if ((cmd.argc - 1) % 2 !== 0) return conn.write(errorReply("ERR wrong number of arguments for 'mset' command"));
      let bytes = 0;
      for (let i = 1; i < cmd.argc; i += 2) bytes += recordBytes(cmd.length(i), cmd.length(i + 1));
      const seq = store.atomic(bytes, () => {
        let last = 0;
        for (let i = 1; i < cmd.argc; i += 2) last = store.put(cmd.key(i), cmd.arg(i), cmd.arg(i + 1), 0);
        return last;
      });
      conn.needs(seq);
      conn.write(OK);
    });

    this.register('del', -2, (conn, cmd) => {
      let bytes = 0;
      for (let i = 1; i < cmd.argc; i++) bytes += recordBytes(cmd.length(i), 0);
      const deleted = store.atomic(bytes, () => {
        let count = 0;
        for (let i = 1; i < cmd.argc; i++) {
          const key = cmd.key(i);
          const seq = store.remove(key, cmd.arg(i));
          if (seq > 0) {
            count++;
            conn.needs(seq);
          } else this.observe(conn, key, undefined);
        }
        return count;
      }, true);
      conn.write(integerReply(deleted));
    });

    this.register('exists', -2, (conn, cmd) => {
      let count = 0;
      for (let i = 1; i < cmd.argc; i++) {
        const key = cmd.key(i);
        const entry = store.lookup(key);
        this.observe(conn, key, entry);
        if (entry !== undefined) count++;
      }
      conn.write(integerReply(count));
    });

    const incr = (conn: Connection, cmd: Command, by: bigint, decrementError = false) => {
      const key = cmd.key(1);
      const entry = store.lookup(key);
      this.observe(conn, key, entry);
      let current = 0n;
      if (entry !== undefined) {
        // Values up to PINNED_VALUE_BYTES are always in memory; an integer has at most 20 bytes.
        const parsed = entry.value !== null ? parseInt64(entry.value) : null;
        if (parsed === null) return conn.write(NOT_INTEGER);
        current = parsed;
      }
      const next = current + by;
      if (next > INT64_MAX || next < INT64_MIN) return conn.write(decrementError ? errorReply('ERR decrement would overflow') : OVERFLOW);
      const text = Buffer.from(next.toString());
      conn.needs(store.put(key, cmd.arg(1), text, entry?.expireAt ?? 0));
      conn.write(integerReply(next));
    };
    this.register('incr', 2, (conn, cmd) => incr(conn, cmd, 1n));
    this.register('decr', 2, (conn, cmd) => incr(conn, cmd, -1n));
    this.register('incrby', 3, (conn, cmd) => {
      const by = parseInt64(cmd.arg(2));
      if (by === null) return conn.write(NOT_INTEGER);
      incr(conn, cmd, by);
    });
    this.register('decrby', 3, (conn, cmd) => {
      const by = parseInt64(cmd.arg(2));
      if (by === null) return conn.write(NOT_INTEGER);
      if (by === INT64_MIN) return conn.write(errorReply('ERR decrement would overflow'));
      incr(conn, cmd, -by);
    });

    const expire = (name: string, unitMs: bigint, absolute: boolean) =>
      this.register(name, -3, (conn, cmd) => {
        let nx = false;
        let xx = false;
        let gt = false;
        let lt = false;
        for (let i = 3; i < cmd.argc; i++) {
          if (cmd.is(i, 'NX')) nx = true;
          else if (cmd.is(i, 'XX')) xx = true;
          else if (cmd.is(i, 'GT')) gt = true;
          else if (cmd.is(i, 'LT')) lt = true;
          else return conn.write(errorReply(`ERR Unsupported option ${cmd.key(i)}`));
        }
        if (nx && (xx || gt || lt)) return conn.write(errorReply('ERR NX and XX, GT or LT options at the same time are not compatible'));
        if (gt && lt) return conn.write(errorReply('ERR GT and LT options at the same time are not compatible'));
        let when = parseInt64(cmd.arg(2));
        if (when === null) return conn.write(NOT_INTEGER);
        const invalid = errorReply(`ERR invalid expire time in '${name}' command`);
        if (unitMs === 1000n) {
          if (when > INT64_MAX / 1000n || when < INT64_MIN / 1000n) return conn.write(invalid);
          when *= 1000n;
        }
        const base = absolute ? 0n : BigInt(Date.now());
        if (when > INT64_MAX - base) return conn.write(invalid);
        when += base;
        const key = cmd.key(1);
        const entry = store.lookup(key);
        this.observe(conn, key, entry);
        if (entry === undefined) return conn.write(integerReply(0));
        const current = entry.expireAt === 0 ? -1n : BigInt(entry.expireAt);
        if ((nx && current !== -1n) || (xx && current === -1n) || (gt && (current === -1n || when <= current)) || (lt && current !== -1n && when >= current)) {
          return conn.write(integerReply(0));
        }
        // A time in the past deletes the key; 1 is our floor for "now or earlier".
        const at = when <= 0n ? 1 : Number(when);
        conn.needs(store.setExpiry(key, cmd.arg(1), entry, at));
        conn.write(integerReply(1));
      });
    expire('expire', 1000n, false);
    expire('pexpire', 1n, false);
    expire('expireat', 1000n, true);
    expire('pexpireat', 1n, true);

    this.register('persist', 2, (conn, cmd) => {
      const key = cmd.key(1);
      const entry = store.lookup(key);
      this.observe(conn, key, entry);
      if (entry === undefined || entry.expireAt === 0) return conn.write(integerReply(0));
      conn.needs(store.setExpiry(key, cmd.arg(1), entry, 0));
      conn.write(integerReply(1));
    });

    const ttl = (name: string, ms: boolean) =>
      this.register(name, 2, (conn, cmd) => {
        const key = cmd.key(1);
        const entry = store.lookup(key);
        this.observe(conn, key, entry);
        const left = store.ttlMs(entry);
        conn.write(integerReply(left < 0 || ms ? left : Math.floor((left + 500) / 1000)));
      });
    ttl('ttl', false);
    ttl('pttl', true);

    this.register('dbsize', 1, (conn) => {
      conn.needs(store.stagedSeq);
      conn.write(integerReply(store.size));
    });

    const flush = (name: string) =>
      this.register(name, -1, (conn, cmd) => {
        if (cmd.argc > 2 || (cmd.argc === 2 && !cmd.is(1, 'ASYNC') && !cmd.is(1, 'SYNC'))) return conn.write(SYNTAX);
        conn.needs(store.clear());
        conn.write(OK);
      });
    flush('flushdb');
    flush('flushall');

    this.register('info', -1, (conn, cmd) => {
      const sections = [];
      for (let i = 1; i < cmd.argc; i++) sections.push(cmd.key(i).toLowerCase());
      conn.writeBulk(Buffer.from(this.info(sections)));
    });

    this.register('config', -2, (conn, cmd) => {
      if (!cmd.is(1, 'GET') || cmd.argc < 3) {
        if (cmd.is(1, 'GET')) return conn.write(errorReply("ERR wrong number of arguments for 'config|get' command"));
        return conn.write(errorReply(`ERR unknown subcommand '${cmd.key(1).slice(0, 128)}'. Try CONFIG HELP.`));
      }
      const values: Record<string, string> = {
        save: '',
        appendonly: 'yes',
        appendfsync: store.durability === 'power' ? 'always' : 'no',
        databases: '1',
        port: String(this.port),
      };
      const pairs: string[] = [];
      for (let i = 2; i < cmd.argc; i++) {
        const pattern = cmd.key(i).toLowerCase();
        for (const [key, value] of Object.entries(values)) {
          if (globMatch(pattern, key) && !pairs.includes(key)) pairs.push(key, value);
        }
      }
      conn.write(arrayHeader(pairs.length));
      for (const text of pairs) conn.writeBulk(Buffer.from(text));
    });

    this.register('command', -1, (conn, cmd) => {
      if (cmd.argc >= 2 && cmd.is(1, 'COUNT')) return conn.write(integerReply(new Set(this.commands.values()).size));
      conn.write(EMPTY_ARRAY);
    });
  }

  private set(conn: Connection, cmd: Command): void {
    const store = this.store;
    let nx = false;
    let xx = false;
    let get = false;
    let keepTtl = false;
    let unit: 'EX' | 'PX' | 'EXAT' | 'PXAT' | null = null;
    let amount: Buffer | null = null;
    for (let i = 3; i < cmd.argc; i++) {
      const hasNext = i + 1 < cmd.argc;
      if (cmd.is(i, 'NX') && !xx) nx = true;
      else if (cmd.is(i, 'XX') && !nx) xx = true;
      else if (cmd.is(i, 'GET')) get = true;
      else if (cmd.is(i, 'KEEPTTL') && unit === null) keepTtl = true;
      else if (hasNext && !keepTtl && (cmd.is(i, 'EX') || cmd.is(i, 'PX') || cmd.is(i, 'EXAT') || cmd.is(i, 'PXAT'))) {
        // Like Redis: the same option may repeat (the last wins), two different ones may not.
        const named = cmd.key(i).toUpperCase() as 'EX';
        if (unit !== null && unit !== named) return conn.write(SYNTAX);
        unit = named;
        amount = cmd.arg(++i);
      } else return conn.write(SYNTAX);
    }
    let expireAt = 0;
    if (unit !== null) {
      const value = parseInt64(amount!);
      if (value === null) return conn.write(NOT_INTEGER);
      const invalid = errorReply("ERR invalid expire time in 'set' command");
      const seconds = unit === 'EX' || unit === 'EXAT';
      if (value <= 0n || (seconds && value > INT64_MAX / 1000n)) return conn.write(invalid);
      let ms = seconds ? value * 1000n : value;
      if (unit === 'EX' || unit === 'PX') {
        const now = BigInt(Date.now());
        if (ms > INT64_MAX - now) return conn.write(invalid);
        ms += now;
      }
      expireAt = Number(ms);
    }
    const key = cmd.key(1);
    const entry = store.lookup(key);
    if (get) {
      this.observe(conn, key, entry);
      if (entry === undefined) conn.write(NIL);
      else this.replyValue(conn, entry);
    }
    if ((nx && entry !== undefined) || (xx && entry === undefined)) {
      if (!get) {
        this.observe(conn, key, entry);
        conn.write(NIL);
      }
      return;
    }
    if (keepTtl && entry !== undefined) expireAt = entry.expireAt;
    conn.needs(store.put(key, cmd.arg(1), cmd.arg(2), expireAt));
    if (!get) conn.write(OK);
  }

  private info(sections: string[]): string {
    const stats = this.store.stats();
    const memory = process.memoryUsage();
    const all: Record<string, Array<[string, string | number]>> = {
      server: [
        ['redis_version', REDIS_COMPAT_VERSION],
        ['offpath_kv_version', KV_VERSION],
        ['redis_mode', 'standalone'],
        ['os', `${process.platform} ${process.arch}`],
        ['process_id', process.pid],
        ['tcp_port', this.port],
        ['uptime_in_seconds', Math.floor((Date.now() - this.started) / 1000)],
        ['executable', 'offpath-kv'],
      ],
      clients: [['connected_clients', this.connections.size]],
      memory: [
        ['used_memory', memory.heapUsed + memory.external],
        ['used_memory_rss', memory.rss],
        ['kv_cached_value_bytes', stats.cachedBytes],
      ],
      persistence: [
        ['loading', 0],
        ['aof_enabled', 1],
        ['kv_durability', stats.durability],
        ['kv_vsa', this.store.vsa.name],
        ['kv_block_bytes', this.store.blockBytes],
        ['kv_log_bytes', stats.logBytes],
        ['kv_log_used_bytes', stats.usedBytes],
        ['kv_live_bytes', stats.liveBytes],
        ['kv_head_lsn', stats.head],
        ['kv_tail_lsn', stats.tail],
        ['kv_acknowledged_seq', stats.durableSeq],
        ['kv_generation', stats.generation],
        ['kv_recovered_frames', stats.recoveredFrames],
        ['kv_recovered_records', stats.recoveredRecords],
        ['kv_discarded_torn_tail', stats.discardedTail ? 1 : 0],
      ],
      stats: [
        ['total_connections_received', this.totalConnections],
        ['total_commands_processed', this.totalCommands],
        ['kv_batches_written', stats.batchesWritten],
        ['kv_records_written', stats.recordsWritten],
        ['kv_bytes_written', stats.bytesWritten],
        ['kv_value_reads', stats.valueReads],
        ['kv_compactions', stats.compactions],
        ['kv_relocated_records', stats.relocatedRecords],
        ['kv_trimmed_bytes', stats.trimmedBytes],
      ],
      keyspace: stats.keys > 0 ? [['db0', `keys=${stats.keys},expires=${stats.expires},avg_ttl=0`]] : [],
    };
    const wanted = sections.length === 0 || sections.some((s) => s === 'all' || s === 'default' || s === 'everything') ? Object.keys(all) : sections;
    const parts: string[] = [];
    for (const name of Object.keys(all)) {
      if (!wanted.includes(name)) continue;
      const title = name[0]!.toUpperCase() + name.slice(1);
      parts.push(`# ${title}\r\n${all[name]!.map(([k, v]) => `${k}:${v}\r\n`).join('')}`);
    }
    return parts.join('\r\n');
  }
}

/** Redis-style glob (only * and ?) for CONFIG GET. */
function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(text);
}
