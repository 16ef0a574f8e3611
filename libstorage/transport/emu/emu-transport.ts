/**
 * Transport `emu`: a controller of offpath's software VSIC, reached over a
 * SOCK_SEQPACKET connection to the emulator (a VF socket, or the PF socket
 * for the control plane). The connection hands over the BAR memfd and the
 * poller's wake eventfd; DMA memory is registered by passing its memfd with
 * an IOVA chosen here (the emulator's IOMMU translates only those).
 */
import { StorageError } from '../../errors.js';
import { native, type DmaAllocation } from '../../native.js';
import { Channel } from '../channel.js';
import type { Transport } from '../transport.js';
import { EMU_BAR_BYTES, EMU_PROTOCOL_VERSION } from './bar.js';
import { emuNotifier } from './notify.js';

/** IOVAs handed out start above 0 so a zeroed pointer in a command is always a DMA fault. */
const IOVA_BASE = 0x1_0000_0000;

export class EmuTransport implements Transport {
  readonly kind = 'emu';
  readonly bar: ArrayBuffer;
  readonly cntlid: number;
  private readonly channel: Channel;
  private readonly barFd: number;
  /** The poller's wake eventfd, for native clients that ring doorbells themselves (bench/). */
  readonly wakeFd: number;
  /** Wakes the controller's poller if it sleeps; cheap when it is busy. */
  readonly notify: () => void;
  private nextIova = IOVA_BASE;
  private readonly interruptFds = new Map<number, number>();
  private closed = false;
  /** Called once if the emulator goes away (connection reset). */
  onLost: (() => void) | undefined;

  private constructor(channel: Channel, barFd: number, wakeFd: number, cntlid: number) {
    this.channel = channel;
    this.barFd = barFd;
    this.wakeFd = wakeFd;
    this.cntlid = cntlid;
    this.bar = native.mmap(barFd, EMU_BAR_BYTES);
    this.notify = emuNotifier(this.bar, wakeFd);
    channel.onClose = () => {
      if (!this.closed) this.onLost?.();
    };
  }

  /** Connects to an emulator controller socket, or adopts an already connected one (fd). */
  static async connect(endpoint: string | number): Promise<EmuTransport> {
    const channel = typeof endpoint === 'number' ? new Channel(endpoint) : Channel.connect(endpoint);
    try {
      const reply = await channel.request({ op: 'hello', version: EMU_PROTOCOL_VERSION });
      const [barFd, wakeFd] = reply.fds;
      if (barFd === undefined || wakeFd === undefined) throw new StorageError('EPROTO', 'the emulator sent no BAR');
      return new EmuTransport(channel, barFd, wakeFd, Number(reply.body.cntlid));
    } catch (error) {
      channel.close();
      throw error;
    }
  }

  async mapDma(region: DmaAllocation): Promise<number> {
    const iova = this.nextIova;
    // Leave a page unmapped between regions so an overrun faults.
    this.nextIova += region.lengthBytes + 4096;
    await this.channel.request({ op: 'map', iova, lengthBytes: region.lengthBytes }, [region.fd]);
    return iova;
  }

  async unmapDma(iova: number): Promise<void> {
    if (this.channel.isClosed) return;
    await this.channel.request({ op: 'unmap', iova });
  }

  async interruptFd(vector: number): Promise<number> {
    const existing = this.interruptFds.get(vector);
    if (existing !== undefined) return existing;
    const fd = native.eventfdCreate();
    try {
      await this.channel.request({ op: 'irq', vector }, [fd]);
    } catch (error) {
      native.closeFd(fd);
      throw error;
    }
    this.interruptFds.set(vector, fd);
    return fd;
  }

  /** What a worker thread needs to drive a queue of this controller itself. */
  get handles(): { barFd: number; wakeFd: number; connectionFd: number } {
    return { barFd: this.barFd, wakeFd: this.wakeFd, connectionFd: this.channel.fd };
  }

  /** Keeps the process alive only while I/O is outstanding. */
  setActive(active: boolean): void {
    if (active) this.channel.ref();
    else this.channel.unref();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.channel.close();
    native.munmap(this.bar);
    native.closeFd(this.barFd);
    native.closeFd(this.wakeFd);
    for (const fd of this.interruptFds.values()) native.closeFd(fd);
    this.interruptFds.clear();
  }
}
