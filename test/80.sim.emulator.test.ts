// The seeded power-loss simulation of the emulator's store (test/sim/): a
// batch of cuts must lose nothing and always recover; with Flush broken on
// purpose the same simulation must notice; a failing seed replays alone; an
// absent target is reported, not counted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { replaySeed, runSim as run, simRunner as runner, simSummary as summary } from './helpers/sim.js';
import { runEmulatorCut } from './sim/emulator-sim.js';

test('100 power cuts at random points: nothing durable is lost, every recovery succeeds', () => {
  const { status, lines, last } = run('--cuts', '100', '--seed', '8021', '--target', 'emulator', '--quiet');
  const totals = summary(last);
  assert.equal(totals, { cuts: 100, lost: 0, unrecoverable: 0, seed: 8021 }, lines.join('\n'));
  assert.is(status, 0);
});

test('with Flush broken on purpose the simulation reports lost data, and a failing seed replays alone', () => {
  const { status, lines, last } = run('--cuts', '40', '--seed', '8021', '--target', 'emulator', '--broken-flush', '--quiet');
  const totals = summary(last);
  assert.is(totals.cuts, 40);
  assert.ok(totals.lost > 0, `a broken flush went unnoticed: ${last}`);
  assert.is(status, 1, 'lost data fails the run');
  const seed = String(replaySeed(lines));
  assert.ok(lines.some((line) => line.includes(`--seed ${seed} --broken-flush`)), 'the replay command keeps --broken-flush');
  const again = run('--cuts', '1', '--seed', seed, '--target', 'emulator', '--broken-flush', '--quiet');
  const one = summary(again.last);
  assert.ok(one.cuts === 1 && one.lost > 0, `replaying seed ${seed}: ${again.last}`);
  const failure = lines.find((line) => line.startsWith('FAIL') && line.includes(`seed=${seed} `));
  assert.ok(failure?.includes(`lost=${one.lost} `), `the replay loses the same: ${failure} / ${again.lines[0]}`);
});

test('a seed replays exactly in process', () => {
  for (const seed of [1, 77, 4000000000]) {
    const first = runEmulatorCut(seed);
    const second = runEmulatorCut(seed);
    assert.equal(second, first, `seed ${seed}`);
    assert.is(first.lost + first.unrecoverable, 0, `seed ${seed}: ${first.problems.join('; ')}`);
  }
});

test('a target whose module does not exist is reported and counts nothing', () => {
  const { status, lines, last } = run('--cuts', '5', '--seed', '3', '--target', 'no-such-target');
  assert.ok(lines.includes('no-such-target: target not available yet'), lines.join('\n'));
  assert.equal(summary(last), { cuts: 0, lost: 0, unrecoverable: 0, seed: 3 });
  assert.is(status, 0);
  const bad = spawnSync(process.execPath, ['--import', 'tsx', runner, '--cuts', 'many'], { encoding: 'utf8' });
  assert.is(bad.status, 2, 'a usage error');
});

test.run();
