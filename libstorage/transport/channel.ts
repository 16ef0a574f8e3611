/**
 * A message channel over a connected SOCK_SEQPACKET socket: one JSON document
 * per message, with file descriptors riding along (SCM_RIGHTS). Used by both
 * ends of every offpath control connection (emulator PF/VF sockets, the
 * control-plane daemon). Reads are driven by the event loop (no thread).
 */
import { StorageError } from '../errors.js';
import { native, READABLE, type FdWatcher } from '../native.js';

export interface Message {
  body: Record<string, unknown>;
  fds: number[];
}

export const MAX_MESSAGE_BYTES = 65536;

export class Channel {
  readonly fd: number;
  private readonly watcher: FdWatcher;
  private closed = false;
  private readonly waiters: Array<{ resolve: (m: Message) => void; reject: (e: Error) => void }> = [];
  private readonly inbox: Message[] = [];
  /** Set to receive messages as they arrive instead of through next(). */
  onMessage: ((message: Message) => void) | undefined;
  /** Called once when the peer closes or the channel is closed. */
  onClose: (() => void) | undefined;

  constructor(fd: number) {
    this.fd = fd;
    this.watcher = new native.FdWatcher(fd, (error) => (error ? this.shutdown() : this.drain()));
    this.watcher.start(READABLE);
  }

  static connect(path: string): Channel {
    return new Channel(native.seqpacketConnect(path));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Lets the process exit while this channel is open (e.g. an idle client). */
  unref(): void {
    this.watcher.unref();
  }

  ref(): void {
    this.watcher.ref();
  }

  send(body: Record<string, unknown>, fds: number[] = []): void {
    if (this.closed) throw new StorageError('ECLOSED', 'the connection is closed');
    const bytes = Buffer.from(JSON.stringify(body));
    if (bytes.length > MAX_MESSAGE_BYTES) throw new RangeError('message larger than 64 KiB');
    // Control messages are small; a full socket buffer means the peer has
    // stopped reading, which is an error for a request/response protocol.
    if (native.seqpacketSend(this.fd, bytes, fds) === null) {
      throw new StorageError('EAGAIN', 'the peer is not reading its connection');
    }
  }

  /** The next message (in order), or rejects with ECONNRESET when the peer closes. */
  next(): Promise<Message> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closed) return Promise.reject(new StorageError('ECONNRESET', 'the connection was closed by the peer'));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Sends a request and waits for the reply; replies with ok: false reject. */
  async request(body: Record<string, unknown>, fds: number[] = []): Promise<Message> {
    this.send(body, fds);
    const reply = await this.next();
    if (reply.body.ok === false) {
      for (const fd of reply.fds) native.closeFd(fd);
      // Emulator replies carry code/message at the top; daemon replies in `error`.
      const error = (typeof reply.body.error === 'object' && reply.body.error !== null ? reply.body.error : reply.body) as Record<string, unknown>;
      throw new StorageError(String(error.code ?? 'EPROTO'), String(error.message ?? 'request failed'));
    }
    return reply;
  }

  private drain(): void {
    for (;;) {
      let received;
      try {
        received = native.seqpacketRecv(this.fd, MAX_MESSAGE_BYTES);
      } catch {
        this.shutdown();
        return;
      }
      if (received === null) return;
      if (received.data.length === 0) {
        this.shutdown();
        return;
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(received.data.toString('utf8'));
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('not an object');
      } catch {
        // A peer that sends garbage gets no second chance.
        for (const fd of received.fds) native.closeFd(fd);
        this.shutdown();
        return;
      }
      const message = { body, fds: received.fds };
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(message);
      else if (this.onMessage) this.onMessage(message);
      else this.inbox.push(message);
    }
  }

  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher.close();
    native.closeFd(this.fd);
    for (const message of this.inbox.splice(0)) for (const fd of message.fds) native.closeFd(fd);
    const error = new StorageError('ECONNRESET', 'the connection was closed by the peer');
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
    this.onClose?.();
  }

  close(): void {
    this.shutdown();
  }
}
