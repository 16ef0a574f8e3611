// The application targets of the seeded power-loss simulation: the KV store
// (test/sim/kv-sim.ts, both durability modes) and the mail queue
// (test/sim/mailq-sim.ts, grouped Flush and FUA) on a VSA whose emulator
// loses power. A batch of cuts of each must lose nothing acknowledged and
// always recover; with the device lying about durability (--broken-flush:
// Flush and FUA succeed, nothing becomes durable) each must notice, and a
// failing seed must fail again when replayed alone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { replaySeed, runSim, simSummary } from './helpers/sim.js';

for (const target of ['kv', 'mailq']) {
  test(`${target}: 20 power cuts at random points lose nothing acknowledged, every recovery succeeds`, () => {
    const { status, lines, last } = runSim('--cuts', '20', '--seed', '8101', '--target', target, '--quiet');
    assert.equal(simSummary(last), { cuts: 20, lost: 0, unrecoverable: 0, seed: 8101 }, lines.join('\n'));
    assert.is(status, 0);
  });

  test(`${target}: a device that lies about durability is caught, and a failing seed fails again alone`, () => {
    const { status, lines, last } = runSim('--cuts', '10', '--seed', '8101', '--target', target, '--broken-flush', '--quiet');
    const totals = simSummary(last);
    assert.is(totals.cuts, 10);
    assert.ok(totals.lost > 0, `a lying device went unnoticed: ${last}`);
    assert.is(status, 1, 'lost data fails the run');
    const seed = replaySeed(lines);
    const again = runSim('--cuts', '1', '--seed', String(seed), '--target', target, '--broken-flush', '--quiet');
    const one = simSummary(again.last);
    assert.ok(one.cuts === 1 && one.lost > 0, `replaying seed ${seed}: ${again.lines.join('\n')}`);
  });
}

test.run();
