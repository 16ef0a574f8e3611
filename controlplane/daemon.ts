/**
 * The offpath daemon: owns the devices, keeps VSAs and capabilities as files
 * in its state directory, and answers local clients on a SOCK_SEQPACKET
 * socket. It is on the path of control operations only: once an application
 * has redeemed a capability it drives its VSIC directly.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { StorageError } from '../libstorage/errors.js';
import { native, READABLE, type FdWatcher } from '../libstorage/native.js';
import { Channel, type Message } from '../libstorage/transport/channel.js';
import { ADMIN_METHODS, ErrorCode, PROTOCOL_VERSION, PUBLIC_METHODS } from '../libstorage/control-protocol.js';
import { Capabilities, CapabilityError, type CapabilityRecord, type Rights } from './capabilities.js';
import { EmuDevice } from './pf/emu-device.js';
import { LinuxNvmeDevice } from './pf/linux-device.js';
import type { PfDriver } from './pf/pf-driver.js';
import { StateFolder } from './state-files.js';
import { parseSizeBytes } from './units.js';

export interface DaemonOptions {
  stateDir: string;
  socketPath?: string;
  /** `emu:file:PATH[:SIZE]` or `emu:memory:SIZE`. */
  devices: string[];
  vfsPerDevice?: number;
  log?: (event: Record<string, unknown>) => void;
}

export interface VsaRecord {
  name: string;
  device: string;
  nsid: number;
  sizeBytes: number;
  blockBytes: 512 | 4096;
  createdAt: number;
}

interface Session {
  vsa: string;
  capability: string;
  device: string;
  cntlid: number;
  nsid: number;
  pid: number;
  uid: number;
  rights: Rights;
  channel: Channel;
  /** Ends the session when the capability expires. */
  expiryTimer?: NodeJS.Timeout;
}

/** What a VSIC gets when it is handed out: 7 I/O queue pairs, 4 interrupt vectors. */
const VSIC_QUEUES = 8;
const VSIC_INTERRUPTS = 4;
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const MAX_QUEUED_PER_CONNECTION = 32;

class RequestError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export type DeviceSpec =
  | { kind: 'emu'; name: string; store: string; size?: string }
  | { kind: 'nvme'; name: string; pf: string; vfs?: number };

/**
 * `emu:memory:SIZE`, `emu:file:PATH[:SIZE]` (an emulated device), or a
 * hardware SR-IOV NVMe PF (docs/hardware.md) by PCI address or kernel
 * controller name: `pci:DDDD:BB:DD.F[:VFS]` (also `nvme:DDDD:BB:DD.F[:VFS]`)
 * or `nvmeN[:VFS]`.
 */
export function parseDeviceSpec(spec: string, index: number): DeviceSpec {
  const pci = /^(?:pci|nvme):([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])(?::(\d+))?$/i.exec(spec) ?? /^(nvme\d+)(?::(\d+))?$/.exec(spec);
  if (pci) return { kind: 'nvme', name: `nvme${index}`, pf: pci[1]!.toLowerCase(), ...(pci[2] ? { vfs: Number(pci[2]) } : {}) };
  const match = /^emu:(memory:[0-9]+[KMGT]?|file:[^:]+(?::[0-9]+[KMGT]?)?)$/i.exec(spec);
  if (!match) throw new RangeError(`--device must be emu:memory:SIZE, emu:file:PATH[:SIZE], pci:PCI-ADDRESS[:VFS] or nvmeN[:VFS], not ${JSON.stringify(spec)}`);
  const name = `emu${index}`;
  const body = match[1]!;
  if (body.startsWith('memory:')) return { kind: 'emu', name, store: body };
  const [, path, size] = /^file:([^:]+)(?::(.+))?$/.exec(body)!;
  return { kind: 'emu', name, store: `file:${resolve(path!)}`, size: size ?? '4G' };
}

export class Daemon {
  readonly socketPath: string;
  private readonly stateDir: string;
  private readonly vsas: StateFolder;
  private readonly capabilities: Capabilities;
  private readonly devices = new Map<string, PfDriver>();
  private readonly sessions = new Map<string, Session>();
  private readonly log: (event: Record<string, unknown>) => void;
  private listenFd = -1;
  private watcher: FdWatcher | undefined;
  private readonly clients = new Set<Channel>();
  private serial: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(private readonly options: DaemonOptions) {
    this.stateDir = resolve(options.stateDir);
    mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    this.socketPath = resolve(options.socketPath ?? join(this.stateDir, 'daemon.sock'));
    this.vsas = new StateFolder(join(this.stateDir, 'vsas'));
    this.capabilities = new Capabilities(join(this.stateDir, 'caps'));
    this.log = options.log ?? (() => {});
  }

  async start(): Promise<void> {
    const specs = this.options.devices.map((spec, i) => parseDeviceSpec(spec, i));
    for (const spec of specs) {
      const vfs = this.options.vfsPerDevice ?? 8;
      const device: PfDriver =
        spec.kind === 'emu'
          ? new EmuDevice({ name: spec.name, store: spec.store, ...(spec.size ? { size: spec.size } : {}), vfs, socketDir: join(this.stateDir, 'devices', spec.name), log: this.log })
          : new LinuxNvmeDevice({ name: spec.name, pf: spec.pf, vfs: spec.vfs ?? vfs, log: this.log });
      device.onFailure = (error) => this.deviceFailed(device, error);
      await device.start();
      this.devices.set(device.name, device);
    }
    rmSync(this.socketPath, { force: true });
    // Anyone local may connect (to redeem a capability); every request is
    // authorised by peer credentials or by the capability it carries.
    this.listenFd = native.seqpacketListen(this.socketPath, { mode: 0o666 });
    this.watcher = new native.FdWatcher(this.listenFd, () => this.accept());
    this.watcher.start(READABLE);
    this.log({ event: 'daemon-started', socket: this.socketPath, devices: [...this.devices.keys()], vsas: this.vsas.list().length });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.watcher?.close();
    if (this.listenFd >= 0) native.closeFd(this.listenFd);
    rmSync(this.socketPath, { force: true });
    for (const client of this.clients) client.close();
    await this.serial.catch(() => {});
    for (const device of this.devices.values()) await device.stop();
    this.log({ event: 'daemon-stopped' });
  }

  private deviceFailed(device: PfDriver, error: Error): void {
    if (this.stopped) return;
    for (const [name, session] of this.sessions) {
      if (session.device === device.name) {
        this.sessions.delete(name);
        session.channel.close();
      }
    }
    this.log({ event: 'device-restart', device: device.name, reason: error.message });
    setTimeout(() => {
      if (!this.stopped) device.start().catch((e: Error) => this.log({ event: 'device-restart-failed', device: device.name, reason: e.message }));
    }, 500);
  }

  private accept(): void {
    for (;;) {
      const fd = native.seqpacketAccept(this.listenFd);
      if (fd === null) return;
      const peer = native.peerCredentials(fd);
      const channel = new Channel(fd);
      this.clients.add(channel);
      let queued = 0;
      channel.onMessage = (message) => {
        // Clients never send descriptors: close them on arrival, not when
        // the request's turn comes (a flood would otherwise pin thousands).
        for (const fd of message.fds.splice(0)) native.closeFd(fd);
        // A client may have a few requests waiting, not an unbounded queue.
        if (++queued > MAX_QUEUED_PER_CONNECTION) {
          this.log({ event: 'client-dropped', pid: peer.pid, uid: peer.uid, reason: 'too many queued requests' });
          channel.close();
          return;
        }
        // One request at a time, daemon-wide: PF admin commands and state
        // files are never touched concurrently.
        this.serial = this.serial
          .then(() => this.handle(channel, message, peer))
          .catch(() => {})
          .finally(() => queued--);
      };
      channel.onClose = () => {
        this.clients.delete(channel);
        this.endSessionOf(channel);
      };
    }
  }

  private async handle(channel: Channel, message: Message, peer: { pid: number; uid: number }): Promise<void> {
    if (channel.isClosed) return;
    const { body } = message;
    const id = body.id ?? null;
    let result: unknown;
    let replyFds: number[] = [];
    try {
      if (body.v !== PROTOCOL_VERSION) throw new RequestError(ErrorCode.PROTOCOL, `protocol version ${String(body.v)} is not ${PROTOCOL_VERSION}`);
      const method = String(body.method);
      const params = (typeof body.params === 'object' && body.params !== null ? body.params : {}) as Record<string, unknown>;
      if (!PUBLIC_METHODS.has(method) && !ADMIN_METHODS.has(method)) throw new RequestError(ErrorCode.BAD_REQUEST, `unknown method ${method}`);
      if (ADMIN_METHODS.has(method) && peer.uid !== 0 && peer.uid !== process.getuid!()) {
        throw new RequestError(ErrorCode.PERMISSION, `${method} needs root or uid ${process.getuid!()}`);
      }
      if (method === 'open') {
        const opened = await this.open(channel, params, peer);
        result = opened.result;
        replyFds = [opened.fd];
      } else {
        result = await this.call(method, params);
      }
      this.log({ event: 'request', method, uid: peer.uid, pid: peer.pid, ok: true });
    } catch (error) {
      const code = error instanceof RequestError || error instanceof CapabilityError || error instanceof StorageError ? error.code : 'EIO';
      const text = error instanceof Error ? error.message : String(error);
      this.log({ event: 'request', method: body.method, uid: peer.uid, pid: peer.pid, ok: false, code });
      this.reply(channel, { v: PROTOCOL_VERSION, id, ok: false, error: { code, message: text } });
      return;
    }
    this.reply(channel, { v: PROTOCOL_VERSION, id, ok: true, result }, replyFds);
    for (const fd of replyFds) native.closeFd(fd);
  }

  private reply(channel: Channel, body: Record<string, unknown>, fds: number[] = []): void {
    try {
      channel.send(body, fds);
    } catch {
      channel.close();
    }
  }

  private device(name: unknown): PfDriver {
    const device = name === undefined ? this.devices.values().next().value : this.devices.get(String(name));
    if (!device) throw new RequestError(ErrorCode.DEVICE_NOT_FOUND, `no device ${String(name ?? '')}`);
    return device;
  }

  private vsa(name: unknown): VsaRecord {
    const record = typeof name === 'string' && NAME_PATTERN.test(name) ? this.vsas.read<VsaRecord>(name) : undefined;
    if (!record) throw new RequestError(ErrorCode.VSA_NOT_FOUND, `no VSA ${JSON.stringify(name)}`);
    return record;
  }

  private describeVsa(record: VsaRecord): Record<string, unknown> {
    const session = this.sessions.get(record.name);
    return {
      ...record,
      attached: session ? { vsic: session.cntlid, pid: session.pid, uid: session.uid, capability: session.capability, rights: session.rights } : null,
    };
  }

  private async call(method: string, params: Record<string, unknown>): Promise<unknown> {
    switch (method) {
      case 'hello':
        return { version: PROTOCOL_VERSION, pid: process.pid };
      case 'status':
      case 'device.list': {
        const devices = [];
        for (const device of this.devices.values()) {
          const status = await device.status();
          const vsics = [];
          for (const vsic of status.vsics) {
            const session = [...this.sessions.values()].find((s) => s.device === device.name && s.cntlid === vsic.cntlid);
            const limits = vsic.online ? await device.getLimits(vsic.cntlid) : { iops: 0, kibPerSecond: 0 };
            vsics.push({ ...vsic, vsa: session?.vsa ?? null, pid: session?.pid ?? null, rights: session?.rights ?? null, iopsLimit: limits.iops, bytesPerSecondLimit: limits.kibPerSecond * 1024 });
          }
          devices.push({ ...status, vsics });
        }
        if (method === 'device.list') return { devices };
        return { devices, vsas: this.vsas.list<VsaRecord>().map((r) => this.describeVsa(r)), capabilities: this.capabilities.list().length, sessions: this.sessions.size };
      }
      case 'vsa.create':
        return this.createVsa(params);
      case 'vsa.list':
        return { vsas: this.vsas.list<VsaRecord>().map((r) => this.describeVsa(r)) };
      case 'vsa.show':
        return this.describeVsa(this.vsa(params.name));
      case 'vsa.resize': {
        const record = this.vsa(params.name);
        const sizeBytes = this.sizeParam(params.sizeBytes, record.blockBytes);
        await this.device(record.device).resizeNamespace(record.nsid, sizeBytes / record.blockBytes);
        const updated = { ...record, sizeBytes };
        this.vsas.write(record.name, updated);
        return this.describeVsa(updated);
      }
      case 'vsa.delete': {
        const record = this.vsa(params.name);
        const session = this.sessions.get(record.name);
        if (session && params.force !== true) throw new RequestError(ErrorCode.VSA_BUSY, `VSA ${record.name} is attached (pid ${session.pid}); use --force`);
        if (session) await this.endSession(session, 'deleted');
        await this.device(record.device).deleteNamespace(record.nsid);
        this.vsas.remove(record.name);
        this.capabilities.forgetVsa(record.name);
        return { deleted: record.name };
      }
      case 'cap.grant':
        return this.grant(params);
      case 'cap.list':
        return { capabilities: this.capabilities.list().map(({ hash: _hash, ...rest }) => ({ ...rest, active: [...this.sessions.values()].some((s) => s.capability === rest.id) })) };
      case 'cap.revoke': {
        const record = this.capabilities.revoke(String(params.id ?? ''));
        for (const session of [...this.sessions.values()]) if (session.capability === record.id) await this.endSession(session, 'revoked');
        const { hash: _hash, ...rest } = record;
        return rest;
      }
      default:
        throw new RequestError(ErrorCode.BAD_REQUEST, `unknown method ${method}`);
    }
  }

  private sizeParam(value: unknown, blockBytes: number): number {
    const sizeBytes = typeof value === 'string' ? parseSizeBytes(value) : Number(value);
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % blockBytes !== 0) {
      throw new RequestError(ErrorCode.BAD_REQUEST, `size must be a positive multiple of ${blockBytes} bytes`);
    }
    return sizeBytes;
  }

  private async createVsa(params: Record<string, unknown>): Promise<unknown> {
    const name = params.name;
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) throw new RequestError(ErrorCode.BAD_REQUEST, 'name must be 1-63 of [A-Za-z0-9._-], starting with a letter or digit');
    if (this.vsas.read(name)) throw new RequestError(ErrorCode.VSA_EXISTS, `VSA ${name} exists`);
    const blockBytes = params.blockBytes === undefined ? 4096 : Number(params.blockBytes);
    if (blockBytes !== 512 && blockBytes !== 4096) throw new RequestError(ErrorCode.BAD_REQUEST, 'block size must be 512 or 4096');
    const sizeBytes = this.sizeParam(params.sizeBytes, blockBytes);
    const device = this.device(params.device);
    const taken = new Set(this.vsas.list<VsaRecord>().filter((r) => r.device === device.name).map((r) => r.nsid));
    const created = await device.createNamespace(sizeBytes / blockBytes, blockBytes, taken);
    const record: VsaRecord = { name, device: device.name, nsid: created.nsid, sizeBytes: created.sizeBlocks * blockBytes, blockBytes, createdAt: Date.now() };
    this.vsas.write(name, record);
    this.log({ event: 'vsa-created', vsa: name, device: device.name, nsid: created.nsid, sizeBytes: record.sizeBytes });
    return this.describeVsa(record);
  }

  private grant(params: Record<string, unknown>): unknown {
    const record = this.vsa(params.vsa);
    const rights = params.rights === undefined ? 'rw' : params.rights;
    if (rights !== 'r' && rights !== 'rw') throw new RequestError(ErrorCode.BAD_REQUEST, "rights must be 'r' or 'rw'");
    const optional = (key: string) => {
      const value = params[key];
      if (value === undefined || value === null) return undefined;
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new RequestError(ErrorCode.BAD_REQUEST, `${key} must be a non-negative integer`);
      return value;
    };
    const grant: Parameters<Capabilities['grant']>[0] = { vsa: record.name, rights };
    const uid = optional('uid');
    const expiresAt = optional('expiresAt');
    const iops = optional('iops');
    const bytesPerSecond = optional('bytesPerSecond');
    if (uid !== undefined) grant.uid = uid;
    if (expiresAt !== undefined) grant.expiresAt = expiresAt;
    if (iops !== undefined) grant.iops = iops;
    if (bytesPerSecond !== undefined) grant.bytesPerSecond = bytesPerSecond;
    const { token, record: capability } = this.capabilities.grant(grant);
    this.log({ event: 'capability-granted', id: capability.id, vsa: record.name, rights });
    const { hash: _hash, ...shown } = capability;
    return { token, ...shown };
  }

  private async open(channel: Channel, params: Record<string, unknown>, peer: { pid: number; uid: number }): Promise<{ result: unknown; fd: number }> {
    if ([...this.sessions.values()].some((s) => s.channel === channel)) throw new RequestError(ErrorCode.BAD_REQUEST, 'this connection already holds a VSA');
    let capability: CapabilityRecord;
    try {
      capability = this.capabilities.redeem(params.capability, peer.uid);
    } catch (error) {
      this.log({ event: 'capability-refused', uid: peer.uid, pid: peer.pid, code: (error as CapabilityError).code });
      throw error;
    }
    const record = this.vsa(capability.vsa);
    const busy = this.sessions.get(record.name);
    if (busy) throw new RequestError(ErrorCode.VSA_BUSY, `VSA ${record.name} is in use by pid ${busy.pid}`);
    const device = this.device(record.device);
    const taken = new Set([...this.sessions.values()].filter((s) => s.device === device.name).map((s) => s.cntlid));
    const grant = {
      queues: VSIC_QUEUES,
      interrupts: VSIC_INTERRUPTS,
      iops: capability.iops ?? 0,
      kibPerSecond: Math.ceil((capability.bytesPerSecond ?? 0) / 1024),
      readOnly: capability.rights === 'r',
    };
    // A hardware VSIC stays busy after its session ends for as long as the
    // process it was handed to keeps its VFIO descriptors (a revoked
    // application that has not exited): connectVsic says EBUSY and the next
    // one is tried. Connect before bind, so that a VSIC is never brought
    // online with a namespace while such a process still holds it.
    let cntlid: number | undefined;
    let fd = -1;
    for (const candidate of device.vsicIds().filter((id) => !taken.has(id))) {
      try {
        fd = device.connectVsic(candidate);
      } catch (error) {
        if ((error as StorageError).code !== 'EBUSY') throw error;
        this.log({ event: 'vsic-busy', device: device.name, vsic: candidate });
        continue;
      }
      try {
        await device.bindVsic(record.nsid, candidate, grant);
      } catch (error) {
        native.closeFd(fd);
        throw error;
      }
      cntlid = candidate;
      break;
    }
    if (cntlid === undefined) throw new RequestError(ErrorCode.NO_VSIC, `every VSIC of device ${device.name} is in use`);
    const session: Session = { vsa: record.name, capability: capability.id, device: device.name, cntlid, nsid: record.nsid, pid: peer.pid, uid: peer.uid, rights: capability.rights, channel };
    this.sessions.set(record.name, session);
    if (capability.expiresAt !== undefined) {
      // An expiring capability expires for the application holding it too.
      const delayMs = Math.min(Math.max(0, capability.expiresAt - Date.now()), 2 ** 31 - 1);
      session.expiryTimer = setTimeout(() => {
        this.serial = this.serial.then(() => this.endSession(session, 'expired')).catch(() => {});
      }, delayMs);
      session.expiryTimer.unref();
    }
    this.log({ event: 'vsa-opened', vsa: record.name, capability: capability.id, vsic: cntlid, pid: peer.pid, uid: peer.uid });
    return {
      result: {
        vsa: record.name,
        nsid: record.nsid,
        blockBytes: record.blockBytes,
        sizeBytes: record.sizeBytes,
        rights: capability.rights,
        capability: capability.id,
        vsic: cntlid,
        // How the application reaches the VSIC: an emulator VF socket, or a socket holding VFIO descriptors.
        transport: device.kind === 'emu' ? 'emu' : 'vfio',
      },
      fd,
    };
  }

  private endSessionOf(channel: Channel): void {
    for (const session of this.sessions.values()) {
      if (session.channel === channel) {
        this.serial = this.serial.then(() => this.endSession(session, 'closed')).catch(() => {});
      }
    }
  }

  /** Takes the VSIC offline at once (its commands stop) and detaches the VSA. */
  private async endSession(session: Session, reason: 'closed' | 'revoked' | 'deleted' | 'expired'): Promise<void> {
    if (this.sessions.get(session.vsa) !== session) return;
    this.sessions.delete(session.vsa);
    clearTimeout(session.expiryTimer);
    if (reason !== 'closed') {
      // Tell the application first, so it fails its I/O with the reason
      // rather than a bare controller error.
      this.reply(session.channel, { v: PROTOCOL_VERSION, event: reason, vsa: session.vsa, capability: session.capability });
    }
    await this.device(session.device)
      .unbindVsic(session.nsid, session.cntlid)
      .catch((error: Error) => this.log({ event: 'vsic-release-failed', vsic: session.cntlid, reason: error.message }));
    this.log({ event: 'vsa-released', vsa: session.vsa, vsic: session.cntlid, reason });
  }
}
