// What the application simulations (kv-sim.ts, mailq-sim.ts) share: one cut's
// life on a PoweredVsa. Power on a fresh pool and open the application on it
// (its format; now and then the power fails right there), run a seeded
// workload until the power fails — between two steps, or a few member writes
// into one — then reopen the image (the store's recovery, then the
// application's own, either of which may lose power again) and let the
// subclass check what it finds. Everything is drawn from the seed, in order.
import { Dice } from './dice.js';
import { PoweredVsa, newPool, powerLossFor, type CutKind } from './powered-vsa.js';
import type { PowerLossOptions, StoreImage } from './power-store.js';
import { Problems } from './problems.js';
import { reopenImage } from './reopen.js';
import type { CutOptions, CutOutcome } from './target.js';

const RECOVERY_ATTEMPTS = 3;

export abstract class AppSimulation extends Dice {
  readonly problems = new Problems();
  extraCuts = 0;
  readonly cutKind: CutKind;
  readonly blockBytes: 512 | 4096;
  readonly powerLoss: PowerLossOptions;
  /** Where the cut struck: during the format, between two steps, or inside one. */
  cutPoint: 'format' | 'between' | 'during' = 'between';
  /** Acknowledgements still to come: awaited before a clean shutdown, moot after a cut. */
  pending: Array<Promise<void>> = [];
  private powered: PoweredVsa | undefined;

  constructor(
    seed: number,
    readonly options: CutOptions,
    killChance: number,
  ) {
    super(seed);
    this.cutKind = this.chance(killChance) ? 'kill' : 'power';
    this.blockBytes = this.chance(0.2) ? 512 : 4096;
    this.powerLoss = powerLossFor(this, this.cutKind, this.blockBytes);
  }

  get pv(): PoweredVsa {
    if (this.powered === undefined) throw new Error('no VSA is powered');
    return this.powered;
  }

  /** Opens the application on pv.vsa: formats a blank VSA, recovers anything else. */
  protected abstract openApp(): Promise<void>;

  /** One cut from power on to the last check: powerOn, runUntilCut, cut, recover and the checks. */
  protected abstract phases(): Promise<void>;

  /** One line of settings, printed with the problems of a failing cut. */
  protected abstract settings(): string;

  /** One step of the seeded workload; what it leaves to be acknowledged joins `pending`. */
  protected abstract step(): Promise<void>;

  async run(): Promise<CutOutcome> {
    try {
      await this.phases();
    } finally {
      await this.powered?.discard();
    }
    const { lost, unrecoverable, lines } = this.problems;
    const problems = lost + unrecoverable > 0 ? [...lines, `settings: ${this.settings()}, cut ${this.cutKind} ${this.cutPoint}`] : lines;
    return { lost, unrecoverable, problems, extraCuts: this.extraCuts };
  }

  /** Powers on a fresh pool and opens the application; false when the power failed during the format. */
  protected async powerOn(blocks: number): Promise<boolean> {
    this.powered = await PoweredVsa.start(newPool(this, blocks, this.blockBytes, this.powerLoss), { brokenFlush: this.options.brokenFlush });
    if (this.chance(0.05)) {
      this.cutPoint = 'format';
      this.pv.armCut(1 + this.int(6));
    }
    try {
      await this.openApp();
    } catch (error) {
      if (!this.pv.powerLost) throw error;
    }
    return !this.pv.powerLost;
  }

  /**
   * Runs `steps` steps, the power failing between two of them or, armed a
   * few member writes ahead, inside one (or whatever runs in the background
   * then); at the latest after the last.
   */
  protected async runUntilCut(steps: number): Promise<void> {
    const cutAt = this.int(steps);
    const during = this.chance(0.6);
    for (let index = 0; index < steps && !this.pv.powerLost; index++) {
      if (index === cutAt) {
        if (!during) return;
        this.cutPoint = 'during';
        this.pv.armCut(1 + this.int(8));
      }
      await this.step();
    }
  }

  /** Ends a burst: mostly waits until what it started is acknowledged, otherwise lets that run on into the next step. */
  protected async endBurst(waitChance: number): Promise<void> {
    if (this.chance(waitChance)) await Promise.all(this.pending.splice(0));
    else await new Promise((resolve) => setImmediate(resolve));
  }

  /** After a recovery: a few more steps, and everything they started acknowledged. */
  protected async moreSteps(): Promise<void> {
    const more = 3 + this.int(10);
    for (let step = 0; step < more; step++) await this.step();
    await Promise.all(this.pending.splice(0));
  }

  /**
   * A rejection handler for an operation on the VSA powered now: its failure
   * is a problem unless that VSA lost power (the failure may come once that
   * VSA is gone and another is powered in its place).
   */
  protected unlessCut(what: string): (error: Error) => void {
    const pv = this.pv;
    return (error) => {
      if (!pv.powerLost) this.problems.note('unrecoverable', `${what} failed without a power cut: ${error.message}`);
    };
  }

  /** Power failure now (or the armed one that already struck): the image that survived. */
  protected async cut(): Promise<StoreImage> {
    const image = await this.pv.cut();
    this.powered = undefined;
    this.pending = [];
    return image;
  }

  /** A clean shutdown of the application's VSA and emulator: the image (nothing pending, unless the device lies). */
  protected async shutdown(): Promise<StoreImage> {
    const image = await this.pv.shutdown();
    this.powered = undefined;
    return image;
  }

  /**
   * Reopens an image: the store's recovery, a new emulator, the
   * application's open. With `allowCut` the power sometimes fails again
   * during either recovery, and the image that leaves is recovered in turn.
   * False (noted) when a recovery failed.
   */
  protected async recover(image: StoreImage, allowCut: boolean): Promise<boolean> {
    let current = image;
    for (let attempt = 0; attempt < RECOVERY_ATTEMPTS; attempt++) {
      // The last attempt runs to the end.
      allowCut &&= attempt < RECOVERY_ATTEMPTS - 1;
      const storeCut = allowCut && this.chance(0.1) ? 1 + this.int(4) : undefined;
      const reopened = reopenImage(current, this.powerLoss, storeCut, this.problems);
      this.extraCuts += reopened.extraCuts;
      if (reopened.store === undefined) return false;
      this.powered = await PoweredVsa.start(reopened.store, { brokenFlush: this.options.brokenFlush });
      if (allowCut && this.chance(0.1)) this.pv.armCut(1 + this.int(3));
      try {
        await this.openApp();
        this.pv.armCut(0);
        if (!this.pv.powerLost) return true;
      } catch (error) {
        if (!this.pv.powerLost) {
          this.problems.note('unrecoverable', `recovery failed: ${error instanceof Error ? error.message : String(error)}`);
          return false;
        }
      }
      this.extraCuts++;
      current = await this.cut();
    }
    this.problems.note('unrecoverable', 'recovery kept losing power without being cut');
    return false;
  }
}
