// What the simulation runner (test/sim/run.ts) expects of a target module in
// test/sim/targets/: `export const target: SimTarget` (or the same fields as
// named exports). runCut runs one random workload to one power cut, recovers
// and checks; everything it needs comes from the seed, so a seed replays it.

export interface CutOutcome {
  /** Items acknowledged as durable that were missing or wrong after recovery (and data never written that appeared). */
  lost: number;
  /** Recoveries that failed, or left the target inconsistent. */
  unrecoverable: number;
  /** Why: one line per problem (printed with the seed). */
  problems?: string[];
  /** Extra power cuts that happened inside recoveries, beyond the one counted. */
  extraCuts?: number;
}

export interface CutOptions {
  /** Test only: Flush made a no-op, to prove the simulation catches it (targets may ignore it). */
  brokenFlush?: boolean;
}

export interface SimTarget {
  name: string;
  runCut(seed: number, options?: CutOptions): Promise<CutOutcome>;
}

/** The seed of cut `index` of a run seeded with `seed`: cut 0 uses the run's seed itself, so `--seed S --cuts 1` replays a cut. */
export function cutSeed(seed: number, index: number): number {
  if (index === 0) return seed >>> 0;
  let h = (seed ^ Math.imul(index, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
