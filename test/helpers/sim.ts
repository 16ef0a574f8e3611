// Runs the seeded power-loss simulation (test/sim/run.ts) as its own process,
// the way `npm run sim` does, and reads its summary line.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';

export const simRunner = join(dirname(fileURLToPath(import.meta.url)), '..', 'sim', 'run.ts');

export interface SimRun {
  status: number | null;
  lines: string[];
  last: string;
}

export function runSim(...args: string[]): SimRun {
  const child = spawnSync(process.execPath, ['--import', 'tsx', simRunner, ...args], { encoding: 'utf8', timeout: 300_000 });
  assert.is(child.stderr, '', 'the runner writes nothing to stderr');
  const lines = child.stdout.trimEnd().split('\n');
  return { status: child.status, lines, last: lines[lines.length - 1]! };
}

/** The totals of the last line, `cuts=N lost=L unrecoverable=U seed=S`. */
export function simSummary(last: string): { cuts: number; lost: number; unrecoverable: number; seed: number } {
  const match = /^cuts=(\d+) lost=(\d+) unrecoverable=(\d+) seed=(\d+)$/.exec(last);
  assert.ok(match, `the last line is the summary: ${JSON.stringify(last)}`);
  const [, cuts, lost, unrecoverable, seed] = match!.map(Number);
  return { cuts: cuts!, lost: lost!, unrecoverable: unrecoverable!, seed: seed! };
}

/** The seed of the first failing cut a run printed a replay command for. */
export function replaySeed(lines: string[]): number {
  const replay = lines.find((line) => line.trim().startsWith('replay:'));
  assert.ok(replay, 'a failing cut prints how to replay it');
  return Number(/--seed (\d+)/.exec(replay!)![1]);
}
