/**
 * How the NVMe host driver reaches one controller. Everything above this
 * interface — bring-up, queue pairs, commands, the Vsa API — is the same for
 * every transport; only these operations differ between the software VSIC
 * (`emu`) and a hardware VF through VFIO (`vfio`).
 */
import type { StorageError } from '../errors.js';
import type { DmaAllocation } from '../native.js';

export interface Transport {
  /** 'emu' or 'vfio'. */
  readonly kind: string;
  /** BAR0: registers at 0, doorbells from 0x1000. */
  readonly bar: ArrayBuffer;
  /** Makes a DMA allocation addressable by the controller; returns its IOVA. */
  mapDma(region: DmaAllocation): Promise<number>;
  unmapDma(iova: number): Promise<void>;
  /** An eventfd signalled when a CQ created with this interrupt vector gets entries. */
  interruptFd(vector: number): Promise<number>;
  /**
   * Called after a doorbell or register store: lets the controller know there
   * is work if it cannot see the store by itself (a sleeping emulator poller).
   * Must be cheap when there is nothing to do: it runs once per batch.
   */
  notify(): void;
  close(): void;
  /** Set by the driver: called once if the controller goes away underneath it (with why, when the transport knows). */
  onLost?: ((error?: StorageError) => void) | undefined;
}
