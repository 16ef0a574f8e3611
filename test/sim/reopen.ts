// Reopening what a power cut left: the store's own recovery, sometimes with
// the power cut again while it runs (each such cut counts as an extra cut and
// is recovered from in turn). Shared by every simulation target.
import type { Problems } from './problems.js';
import { PowerStore, imageOfFailedOpen, type PowerLossOptions, type StoreImage } from './power-store.js';

const ATTEMPTS = 3;

export interface Reopened {
  /** The recovered store (its power on, no cut armed); undefined when recovery failed (noted in problems). */
  store: PowerStore | undefined;
  extraCuts: number;
}

/**
 * Opens `image` in power-loss mode with `powerLoss`; when `cutAfterWrites`
 * is given the first attempt loses power after that many member writes.
 */
export function reopenImage(image: StoreImage, powerLoss: PowerLossOptions, cutAfterWrites: number | undefined, problems: Problems): Reopened {
  let current = image;
  let extraCuts = 0;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const extra = cutAfterWrites !== undefined && attempt === 0 ? { cutAfterWrites } : {};
    try {
      const store = new PowerStore({ image: current, powerLoss: { ...powerLoss, ...extra } });
      if (store.powerLost) {
        extraCuts++;
        current = store.cut();
        continue;
      }
      store.armCut(0); // the recovery finished before the armed cut
      return { store, extraCuts };
    } catch (error) {
      const left = imageOfFailedOpen(error);
      if (left === undefined) {
        problems.note('unrecoverable', `reopening the store failed: ${String(error)}`);
        return { store: undefined, extraCuts };
      }
      extraCuts++;
      current = left;
    }
  }
  problems.note('unrecoverable', 'the store\'s recovery kept losing power');
  return { store: undefined, extraCuts };
}
