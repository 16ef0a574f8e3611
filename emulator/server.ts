/**
 * The emulator process's socket side: one listening SOCK_SEQPACKET socket per
 * controller — `pf.sock` for the physical function (the control plane only)
 * and `vf-<n>.sock` for secondary controller n — all owner-only (0600). One
 * host per controller at a time; when its connection closes (the host died)
 * the controller is reset and its DMA mappings and interrupts are dropped.
 *
 * Protocol (docs/emulator.md), one JSON document per message:
 *   hello {version}           -> {ok, cntlid, version, barBytes}  + fds [bar memfd, wake eventfd]
 *   map {iova, lengthBytes}   + fd [sealed memfd]                  -> {ok}
 *   unmap {iova}              -> {ok}
 *   irq {vector}              + fd [eventfd]                       -> {ok}
 * Errors: {ok: false, code, message}.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError } from '../libstorage/errors.js';
import { native, READABLE, type FdWatcher } from '../libstorage/native.js';
import { Channel, type Message } from '../libstorage/transport/channel.js';
import { EMU_BAR_BYTES, EMU_PROTOCOL_VERSION } from '../libstorage/transport/emu/bar.js';

export interface StoreOptions {
  kind: 'memory' | 'file' | 'block';
  paths?: string[];
  sizeBytes?: number;
  chunkBytes?: number;
  create?: boolean;
  /** Test only (docs/emulator-store.md, "Power-loss simulation and fault injection"). */
  powerLoss?: boolean | Record<string, number | boolean>;
  faults?: Record<string, unknown>;
}

/** An open `native.EmuStore` object: the emulator serves it as it is (tests cut its power while it runs). */
export interface SharedStore {
  readonly capacityBytes: number;
  readonly closed: boolean;
}

export interface EmulatorOptions {
  socketDir: string;
  store: StoreOptions | SharedStore;
  secondaryControllers?: number;
  pollers?: number;
  spinUs?: number;
  /** Structured log lines (NDJSON) go here; never one per I/O. */
  log?: (event: Record<string, unknown>) => void;
}

export interface EmuSubsystem {
  readonly controllerCount: number;
  barFd(cntlid: number): number;
  wakeFd(cntlid: number): number;
  mapDma(cntlid: number, fd: number, iova: number, lengthBytes: number): void;
  unmapDma(cntlid: number, iova: number): void;
  setInterruptFd(cntlid: number, vector: number, fd: number): void;
  detachHost(cntlid: number): void;
  stats(cntlid: number): Record<string, unknown>;
  namespaces(): Array<Record<string, unknown>>;
  close(): void;
}

export function controllerSocketName(cntlid: number): string {
  return cntlid === 0 ? 'pf.sock' : `vf-${cntlid}.sock`;
}

class Endpoint {
  private readonly listenFd: number;
  private readonly watcher: FdWatcher;
  private host: Channel | undefined;

  constructor(
    private readonly server: EmulatorServer,
    readonly cntlid: number,
    readonly path: string,
  ) {
    rmSync(path, { force: true });
    this.listenFd = native.seqpacketListen(path, { mode: 0o600 });
    this.watcher = new native.FdWatcher(this.listenFd, () => this.accept());
    this.watcher.start(READABLE);
  }

  private accept(): void {
    for (;;) {
      const fd = native.seqpacketAccept(this.listenFd);
      if (fd === null) return;
      const peer = native.peerCredentials(fd);
      if (this.host) {
        // One host per controller, like one driver per PCI function. The
        // refusal answers the peer's first request, then the line closes.
        const refused = new Channel(fd);
        const timer = setTimeout(() => refused.close(), 5000);
        refused.onMessage = (message) => {
          for (const received of message.fds) native.closeFd(received);
          try {
            refused.send({ ok: false, code: 'EBUSY', message: `controller ${this.cntlid} already has a host` });
          } catch {
            // the peer is gone already
          }
          clearTimeout(timer);
          refused.close();
        };
        refused.onClose = () => clearTimeout(timer);
        this.server.log({ event: 'host-refused', cntlid: this.cntlid, pid: peer.pid });
        continue;
      }
      const channel = new Channel(fd);
      this.host = channel;
      this.server.log({ event: 'host-attached', cntlid: this.cntlid, pid: peer.pid, uid: peer.uid });
      channel.onMessage = (message) => this.handle(channel, message);
      channel.onClose = () => {
        if (this.host !== channel) return;
        this.host = undefined;
        this.server.subsystem.detachHost(this.cntlid);
        this.server.log({ event: 'host-detached', cntlid: this.cntlid, pid: peer.pid });
      };
    }
  }

  private handle(channel: Channel, message: Message): void {
    const { body, fds } = message;
    const subsystem = this.server.subsystem;
    let reply: Record<string, unknown> = { ok: true };
    let replyFds: number[] = [];
    const keep = new Set<number>();
    try {
      switch (body.op) {
        case 'hello':
          if (body.version !== EMU_PROTOCOL_VERSION) {
            throw new StorageError('EPROTO', `protocol version ${String(body.version)} is not ${EMU_PROTOCOL_VERSION}`);
          }
          reply = { ok: true, cntlid: this.cntlid, version: EMU_PROTOCOL_VERSION, barBytes: EMU_BAR_BYTES };
          replyFds = [subsystem.barFd(this.cntlid), subsystem.wakeFd(this.cntlid)];
          break;
        case 'map':
          if (fds.length !== 1) throw new StorageError('EINVAL', 'map needs exactly one memfd');
          subsystem.mapDma(this.cntlid, fds[0]!, body.iova as number, body.lengthBytes as number);
          break;
        case 'unmap':
          subsystem.unmapDma(this.cntlid, body.iova as number);
          break;
        case 'irq':
          if (fds.length !== 1) throw new StorageError('EINVAL', 'irq needs exactly one eventfd');
          subsystem.setInterruptFd(this.cntlid, body.vector as number, fds[0]!);
          keep.add(fds[0]!); // the controller owns it now
          break;
        default:
          throw new StorageError('EPROTO', `unknown request ${JSON.stringify(body.op)}`);
      }
    } catch (error) {
      const code = error instanceof StorageError ? error.code : error instanceof RangeError ? 'ERANGE' : 'EINVAL';
      reply = { ok: false, code, message: error instanceof Error ? error.message : String(error) };
      replyFds = [];
      keep.clear();
    } finally {
      for (const fd of fds) if (!keep.has(fd)) native.closeFd(fd);
    }
    try {
      channel.send(reply, replyFds);
    } catch {
      channel.close();
    }
  }

  close(): void {
    this.watcher.close();
    native.closeFd(this.listenFd);
    this.host?.close();
    rmSync(this.path, { force: true });
  }
}

export class EmulatorServer {
  readonly subsystem: EmuSubsystem;
  readonly socketDir: string;
  private readonly endpoints: Endpoint[] = [];
  private readonly logger: ((event: Record<string, unknown>) => void) | undefined;

  constructor(options: EmulatorOptions) {
    this.logger = options.log;
    this.socketDir = options.socketDir;
    mkdirSync(options.socketDir, { recursive: true, mode: 0o700 });
    const EmuSubsystemClass = native.EmuSubsystem as new (options: Record<string, unknown>) => EmuSubsystem;
    this.subsystem = new EmuSubsystemClass({
      store: options.store,
      secondaryControllers: options.secondaryControllers ?? 4,
      pollers: options.pollers ?? 1,
      spinUs: options.spinUs ?? 50,
    });
    for (let cntlid = 0; cntlid < this.subsystem.controllerCount; cntlid++) {
      this.endpoints.push(new Endpoint(this, cntlid, join(options.socketDir, controllerSocketName(cntlid))));
    }
    this.log({ event: 'started', controllers: this.subsystem.controllerCount, store: 'kind' in options.store ? options.store.kind : 'shared' });
  }

  log(event: Record<string, unknown>): void {
    this.logger?.({ time: new Date().toISOString(), ...event });
  }

  close(): void {
    for (const endpoint of this.endpoints.splice(0)) endpoint.close();
    this.subsystem.close();
    this.log({ event: 'stopped' });
  }
}
