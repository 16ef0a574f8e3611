// Admin commands belong to root and the daemon's own user: anyone else gets
// exit 77 and nothing changes. Capabilities are what other users get: one
// granted to a uid opens only for that uid. These tests run processes as
// "nobody" (setpriv), and skip with the reason where that is not possible.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { App, cannotRunAs, cleanup, grant, reported, runCli, sharedSocketDir, startDaemon, tryOpen, type CliResult, type DaemonProcess } from './helpers/daemon.js';

const NOBODY = 65534;
const cannot = cannotRunAs(NOBODY);

let daemon: DaemonProcess;

function oneLineError(result: CliResult, code: number, pattern: RegExp): void {
  assert.is(result.code, code, `exit code (stderr: ${result.stderr.trim()})`);
  assert.is(result.stdout, '', 'nothing on stdout');
  const lines = result.stderr.split('\n');
  assert.is(lines.length, 2, `one line on stderr: ${JSON.stringify(result.stderr)}`);
  assert.is(lines[1], '');
  assert.match(lines[0]!, pattern);
}

if (cannot) {
  console.log(`skipping the permission tests: ${cannot}`);
  test.skip('admin commands from another uid exit 77');
} else {
  test.before(
    reported(async () => {
      // The socket in a directory other users may enter; the state stays owner-only.
      daemon = await startDaemon({ socket: join(sharedSocketDir(), 'd.sock') });
      await daemon.json(['vsa', 'create', 'main', '--size', '8M']);
    }),
  );

  test.after(cleanup);

  test('another user: admin commands exit 77 with one line; nothing changes', async () => {
    const before = await daemon.json(['cap', 'list']);
    const attempts = [['status'], ['vsa', 'list'], ['vsa', 'create', 'theirs', '--size', '1M'], ['grant', 'main'], ['cap', 'list'], ['vsa', 'delete', 'main', '--force']];
    const results = await Promise.all(attempts.map((args) => daemon.cli(args, { uid: NOBODY })));
    for (const result of results) oneLineError(result, 77, new RegExp(`^offpath: EPERM: [a-z.]+ needs root or uid ${process.getuid!()}$`));
    assert.ok(await daemon.json(['vsa', 'show', 'main']));
    assert.not.ok((await daemon.json(['vsa', 'list'])).vsas.some((v: any) => v.name === 'theirs'));
    assert.equal((await daemon.json(['cap', 'list'])).capabilities, before.capabilities);
    const refused = daemon.events().filter((e) => e.event === 'request' && e.ok === false && e.uid === NOBODY && e.code === 'EPERM');
    assert.is(refused.length, attempts.length, 'the daemon logs each refusal with the uid');
  });

  test('another user opens a VSA with a capability granted to it; our own process cannot', async () => {
    const capability = await grant(daemon, 'main', ['--uid', String(NOBODY)]);
    const theirs = new App({ uid: NOBODY });
    const opened = await theirs.request({ op: 'open', capability: capability.token, daemon: daemon.socket });
    assert.is(opened.ok, true, JSON.stringify(opened.error));
    await theirs.call({ op: 'write', block: 0, blocks: 16, tag: 0x6b0d });
    assert.is((await theirs.call({ op: 'check', block: 0, blocks: 16, tag: 0x6b0d })).match, 16);
    const shown = await daemon.json(['vsa', 'show', 'main']);
    assert.is(shown.attached.uid, NOBODY);
    await theirs.call({ op: 'close' });
    await theirs.exit();
    const ours = await tryOpen(daemon, capability.token);
    assert.is(ours.error?.code, 'CAP_WRONG_USER');
    // A capability without a uid is the user's to pass on: another user may redeem it.
    const open = await grant(daemon, 'main', ['--rights', 'r']);
    const passed = new App({ uid: NOBODY });
    assert.is((await passed.request({ op: 'open', capability: open.token, daemon: daemon.socket })).ok, true);
    assert.is((await passed.call({ op: 'check', block: 0, blocks: 16, tag: 0x6b0d })).match, 16);
    await passed.exit();
  });

  test('a daemon socket the user may not reach: exit 77, not "unreachable"', async () => {
    // The state directory is owner-only: another user cannot even look in it.
    const result = await runCli(['--socket', join(daemon.stateDir, 'd.sock'), 'status'], { uid: NOBODY });
    oneLineError(result, 77, /EACCES/);
  });
}

test.run();
