/**
 * The host half of the emulator's wake-up protocol (docs/emulator.md): after
 * a doorbell store, signal the poller's eventfd only if it said it sleeps.
 * A busy poller costs the host one load per batch and no syscall.
 */
import { native } from '../../native.js';
import { EMU_POLLER_SLEEPING_OFFSET } from './bar.js';

export function emuNotifier(bar: ArrayBuffer, wakeFd: number): () => void {
  const words = new Int32Array(bar);
  const sleeping = EMU_POLLER_SLEEPING_OFFSET / 4;
  return () => {
    // The doorbell store before this (Atomics.store, a full barrier) is
    // ordered before this load; the poller sets the flag, fences, then
    // re-reads the doorbells. One of the two sees the other.
    if (Atomics.load(words, sleeping) !== 0) native.eventfdSignal(wakeFd);
  };
}
