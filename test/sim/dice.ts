// The simulations' only source of randomness: a seeded generator, so that a
// seed replays a cut (test/sim/target.ts).
import { prng } from '../fixtures/store-pattern.js';

export class Dice {
  readonly random: () => number;

  constructor(readonly seed: number) {
    this.random = prng(seed);
  }

  /** An integer in [0, bound). */
  int(bound: number): number {
    return Math.floor(this.random() * bound);
  }

  chance(probability: number): boolean {
    return this.random() < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}
