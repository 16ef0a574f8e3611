// Revoking a capability while its application is busy: the VSIC goes away at
// once, every I/O in flight and every later one fails with CAP_REVOKED within
// a second, nothing hangs, and every write acknowledged before the revocation
// is on the VSA when it is read back through a new capability.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, grant, openApp, reported, startDaemon, tempDir, tryOpen, type DaemonProcess } from './helpers/daemon.js';

let daemon: DaemonProcess;

test.before(
  reported(async () => {
    daemon = await startDaemon();
  }),
);

test.after(cleanup);

async function revokeDuringWorkload(vsaName: string, qd: number) {
  await daemon.json(['vsa', 'create', vsaName, '--size', '16M']);
  const capability = await grant(daemon, vsaName);
  const { app } = await openApp(daemon, capability.token);
  const log = join(tempDir(), 'workload.json');
  await app.call({ op: 'workload', qd, tag: 0x7e5, log, runningAfter: 2000 });
  const running = await app.event('workload-running');
  assert.ok(running.acked >= 2000);

  const revoked = await daemon.cli(['cap', 'revoke', capability.id]);
  assert.is(revoked.code, 0, revoked.stderr);
  const stopped = await app.event('workload-stopped', 5000);
  return { app, capability, log, revoked, stopped };
}

test('revoke during a QD 16 write workload: I/O fails promptly with CAP_REVOKED, acknowledged writes survive', async () => {
  const { app, capability, log, revoked, stopped } = await revokeDuringWorkload('busy', 16);
  assert.ok(stopped.acked > 2000, 'the workload was running when the capability was revoked');

  // The application learns it from the error code, on every request it had.
  assert.ok(stopped.error, 'the workload failed');
  assert.is(stopped.error.storageError, true);
  assert.is(stopped.error.code, 'CAP_REVOKED', `first error: ${JSON.stringify(stopped.error)}`);
  assert.match(stopped.error.message, /revoked/);
  assert.equal(Object.keys(stopped.codes), ['CAP_REVOKED'], `every failed request says why: ${JSON.stringify(stopped.codes)}`);
  assert.is(stopped.codes.CAP_REVOKED, 16, 'all 16 loops saw their request fail');

  // Promptly: the first failure came no earlier than the revoke command and
  // within a second of it finishing; every request settled soon after.
  assert.ok(stopped.failedAt >= revoked.startedAt, 'it failed because of the revocation');
  assert.ok(stopped.failedAt - revoked.endedAt < 1000, `I/O failed ${stopped.failedAt - revoked.endedAt} ms after revoke returned`);
  assert.ok(stopped.settledAt - stopped.failedAt < 1000, `requests took ${stopped.settledAt - stopped.failedAt} ms to settle`);

  // Later I/O is refused at once with the same reason; close does not hang.
  assert.is(stopped.later.thrown, true, 'later I/O throws synchronously');
  assert.is(stopped.later.error.code, 'CAP_REVOKED');
  const closed = await app.call({ op: 'close' }, 5000);
  assert.ok(closed.ms < 1000, `close took ${closed.ms} ms`);
  const exited = await app.exit();
  assert.is(exited.code, 0);

  // The daemon took the VSIC offline and detached the VSA.
  const status = await daemon.json(['status']);
  assert.is(status.sessions, 0);
  assert.ok(status.devices[0].vsics.every((v: any) => !v.online), 'the VSIC is offline');
  assert.is((await daemon.json(['vsa', 'show', 'busy'])).attached, null);
  const released = daemon.events().find((e) => e.event === 'vsa-released' && e.vsa === 'busy');
  assert.is(released?.reason, 'revoked');
  // The revoked token opens nothing any more.
  assert.is((await tryOpen(daemon, capability.token)).error?.code, 'CAP_REVOKED');

  // Through a new capability: every acknowledged write is there.
  const reader = await openApp(daemon, (await grant(daemon, 'busy', ['--rights', 'r'])).token);
  const verified = await reader.app.call({ op: 'verify-log', log }, 30_000);
  assert.is(verified.badCount, 0, `acknowledged writes lost or damaged: ${JSON.stringify(verified.bad)}`);
  // Each block counts once (the workload wraps over the 4096 blocks).
  assert.ok(verified.checked >= Math.min(stopped.acked, 4096) - 16, `checked ${verified.checked} blocks`);
  assert.ok(verified.inFlightAtRevoke <= 16, `${verified.inFlightAtRevoke} writes were in flight`);
  await reader.app.exit();
});

test('revoke with one request at a time: the waiting request fails too, nothing hangs', async () => {
  const { app, stopped } = await revokeDuringWorkload('serial', 1);
  assert.is(stopped.error?.code, 'CAP_REVOKED', JSON.stringify(stopped.error));
  assert.equal(stopped.codes, { CAP_REVOKED: 1 });
  const closed = await app.call({ op: 'close' }, 5000);
  assert.ok(closed.ms < 1000, `close took ${closed.ms} ms`);
  await app.exit();
});

test('revoking one capability leaves other applications alone', async () => {
  await daemon.json(['vsa', 'create', 'left', '--size', '8M']);
  await daemon.json(['vsa', 'create', 'right', '--size', '8M']);
  const left = await grant(daemon, 'left');
  const right = await grant(daemon, 'right');
  const a = await openApp(daemon, left.token);
  const b = await openApp(daemon, right.token);
  await a.app.call({ op: 'write', block: 0, blocks: 8, tag: 1 });
  await b.app.call({ op: 'write', block: 0, blocks: 8, tag: 2 });
  assert.is((await daemon.cli(['cap', 'revoke', left.id])).code, 0);
  const refused = await a.app.request({ op: 'io', kind: 'read', block: 0, blocks: 1 });
  assert.is(refused.error?.code, 'CAP_REVOKED');
  assert.is((await b.app.call({ op: 'check', block: 0, blocks: 8, tag: 2 })).match, 8, 'the other application carries on');
  await b.app.call({ op: 'write', block: 8, blocks: 8, tag: 2 });
  const status = await daemon.json(['status']);
  assert.equal(status.devices[0].vsics.filter((v: any) => v.online).map((v: any) => v.vsa), ['right']);
  await a.app.exit();
  await b.app.exit();
});

test.run();
