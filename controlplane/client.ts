/** A connection to the offpath daemon, as the CLI and tools use it. */
import { StorageError } from '../libstorage/errors.js';
import { Channel } from '../libstorage/transport/channel.js';
import { PROTOCOL_VERSION } from '../libstorage/control-protocol.js';

export class DaemonClient {
  private nextId = 1;

  private constructor(private readonly channel: Channel) {}

  /** Throws StorageError ENOENT / ECONNREFUSED / EACCES when the daemon cannot be reached. */
  static connect(socketPath: string): DaemonClient {
    return new DaemonClient(Channel.connect(socketPath));
  }

  async call<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const reply = await this.channel.request({ v: PROTOCOL_VERSION, id: this.nextId++, method, params });
    if (reply.body.v !== PROTOCOL_VERSION) throw new StorageError('EPROTO', `daemon speaks protocol ${String(reply.body.v)}`);
    return reply.body.result as T;
  }

  close(): void {
    this.channel.close();
  }
}
