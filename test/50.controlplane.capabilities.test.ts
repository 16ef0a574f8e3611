// Capabilities are the only door to a VSA. Forged, tampered, expired, revoked
// and other users' tokens are refused with a StorageError saying exactly why,
// and nothing is attached. A read-only capability reads; the controller
// itself refuses every write with NS_WRITE_PROTECTED.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, grant, openApp, reported, sleep, startDaemon, tryOpen, type AppReply, type DaemonProcess } from './helpers/daemon.js';

let daemon: DaemonProcess;

test.before(
  reported(async () => {
    daemon = await startDaemon();
    await daemon.json(['vsa', 'create', 'vault', '--size', '8M']);
  }),
);

test.after(cleanup);

function refusedWith(reply: AppReply, code: string, message: RegExp): void {
  assert.is(reply.ok, false, `the open was refused (${JSON.stringify(reply)})`);
  assert.is(reply.error!.storageError, true, `a StorageError, not ${reply.error!.name}`);
  assert.is(reply.error!.code, code);
  assert.match(reply.error!.message, message);
}

async function nothingAttached(): Promise<void> {
  const status = await daemon.json(['status']);
  assert.is(status.sessions, 0, 'no VSA was handed out');
  assert.ok(status.devices[0].vsics.every((v: any) => !v.online), 'no VSIC went online');
}

/** One character of `text` at `index` replaced by another of the same alphabet. */
function tamper(text: string, index: number): string {
  const alphabet = /[0-9a-f]/.test(text[index]!) && index < 19 ? '0123456789abcdef' : 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const replacement = alphabet[(alphabet.indexOf(text[index]!) + 1) % alphabet.length]!;
  return text.slice(0, index) + replacement + text.slice(index + 1);
}

test('the real token opens the VSA (the control for everything below)', async () => {
  const capability = await grant(daemon, 'vault');
  const { app, vsa } = await openApp(daemon, capability.token);
  assert.is(vsa.name, 'vault');
  await app.call({ op: 'write', block: 0, blocks: 16, tag: 7 });
  await app.call({ op: 'close' });
  await app.exit();
});

test('forged tokens are refused as CAP_UNKNOWN', async () => {
  const real = await grant(daemon, 'vault');
  const forged = [
    'hello',
    '',
    `opcap_${real.id}_${'A'.repeat(32)}`, // a real id with a made-up secret
    'opcap_000000000000_' + 'x'.repeat(32),
    real.token + 'x',
    real.token.slice(0, -1),
  ];
  for (const token of forged) refusedWith(await tryOpen(daemon, token), 'CAP_UNKNOWN', /capability not recognised/);
  await nothingAttached();
  const refusals = daemon.events().filter((e) => e.event === 'capability-refused' && e.code === 'CAP_UNKNOWN');
  assert.ok(refusals.length >= forged.length, 'the daemon logs each refusal');
});

test('a token with one character changed is refused as CAP_UNKNOWN', async () => {
  const real = await grant(daemon, 'vault');
  // In the public id, in the middle of the secret, and the very last character.
  for (const index of [8, 30, real.token.length - 1]) {
    const tampered = tamper(real.token, index);
    assert.is.not(tampered, real.token);
    refusedWith(await tryOpen(daemon, tampered), 'CAP_UNKNOWN', /not recognised/);
  }
  await nothingAttached();
  // The real one still works: refusals do not burn it.
  const { app } = await openApp(daemon, real.token);
  await app.exit();
});

test('an expired capability is refused as CAP_EXPIRED', async () => {
  const capability = await grant(daemon, 'vault', ['--expires', '1s']);
  assert.ok(capability.expiresAt > Date.now() - 1000 && capability.expiresAt <= Date.now() + 1000, 'expires in one second');
  const expiresAt = capability.expiresAt as number;
  await sleep(Math.max(0, expiresAt - Date.now()) + 100);
  refusedWith(await tryOpen(daemon, capability.token), 'CAP_EXPIRED', new RegExp(`${capability.id} expired at ${new Date(expiresAt).toISOString()}`));
  const listed = await daemon.cli(['cap', 'list']);
  assert.match(listed.stdout, new RegExp(`${capability.id}.*expired`));
  // An ISO date in the past can only ever give a capability that is refused.
  const past = await daemon.cli(['--json', 'grant', 'vault', '--expires', '2001-02-03T04:05:06Z']);
  if (past.code === 0) {
    refusedWith(await tryOpen(daemon, JSON.parse(past.stdout).token), 'CAP_EXPIRED', /expired at 2001-02-03T04:05:06.000Z/);
  } else {
    assert.is(past.code, 64, 'a grant that is already expired is a usage error');
  }
  await nothingAttached();
});

test('a revoked capability is refused as CAP_REVOKED', async () => {
  const capability = await grant(daemon, 'vault');
  const revoked = await daemon.cli(['cap', 'revoke', capability.id]);
  assert.is(revoked.code, 0, revoked.stderr);
  assert.is(revoked.stdout, `revoked ${capability.id} (VSA vault)\n`);
  refusedWith(await tryOpen(daemon, capability.token), 'CAP_REVOKED', new RegExp(`${capability.id} was revoked`));
  const listed = await daemon.json(['cap', 'list']);
  assert.ok(listed.capabilities.find((c: any) => c.id === capability.id).revokedAt > 0);
  // Revoking twice is harmless.
  assert.is((await daemon.cli(['cap', 'revoke', capability.id])).code, 0);
  await nothingAttached();
});

test("another user's capability is refused as CAP_WRONG_USER", async () => {
  const otherUid = process.getuid!() === 4242 ? 4243 : 4242;
  const capability = await grant(daemon, 'vault', ['--uid', String(otherUid)]);
  assert.is(capability.uid, otherUid);
  refusedWith(await tryOpen(daemon, capability.token), 'CAP_WRONG_USER', new RegExp(`for uid ${otherUid}, not ${process.getuid!()}`));
  // The same grant for our own uid opens.
  const mine = await grant(daemon, 'vault', ['--uid', String(process.getuid!())]);
  const { app } = await openApp(daemon, mine.token);
  await app.exit();
});

test('a read-only capability reads; the controller refuses every write with NS_WRITE_PROTECTED', async () => {
  const writer = await openApp(daemon, (await grant(daemon, 'vault')).token);
  await writer.app.call({ op: 'write', block: 100, blocks: 32, tag: 0x5eed });
  await writer.app.call({ op: 'close' });
  await writer.app.exit();

  const readOnly = await grant(daemon, 'vault', ['--rights', 'r']);
  assert.is(readOnly.rights, 'r');
  const { app } = await openApp(daemon, readOnly.token);
  const shown = await daemon.json(['vsa', 'show', 'vault']);
  assert.is(shown.attached.rights, 'r');
  assert.is((await app.call({ op: 'check', block: 100, blocks: 32, tag: 0x5eed })).match, 32, 'it reads');
  for (const kind of ['write', 'writev', 'writeZeroes', 'trim']) {
    const reply = await app.request({ op: 'io', kind, block: 100, blocks: 8 });
    assert.is(reply.ok, false, `${kind} through a read-only capability must fail`);
    assert.is(reply.error!.storageError, true);
    assert.is(reply.error!.code, 'NS_WRITE_PROTECTED', `${kind}: ${JSON.stringify(reply.error)}`);
    // The controller said so (generic status 20h), not the library.
    assert.equal({ sct: reply.error!.status?.sct, sc: reply.error!.status?.sc }, { sct: 0, sc: 0x20 });
    assert.is(reply.error!.command, kind === 'writeZeroes' ? 'Write Zeroes' : kind === 'trim' ? 'Dataset Management (deallocate)' : 'Write');
  }
  // Refused writes do not break the queue: reads still work, and nothing changed.
  assert.is((await app.call({ op: 'check', block: 100, blocks: 32, tag: 0x5eed })).match, 32, 'the data is unchanged');
  await app.call({ op: 'close' });
  await app.exit();
});

test('a read-only capability stays read-only however often it is redeemed', async () => {
  const readOnly = await grant(daemon, 'vault', ['--rights', 'r']);
  for (let round = 0; round < 2; round++) {
    const { app } = await openApp(daemon, readOnly.token);
    const reply = await app.request({ op: 'io', kind: 'write', block: 0, blocks: 1 });
    assert.is(reply.error?.code, 'NS_WRITE_PROTECTED');
    await app.exit();
  }
});

test.run();
