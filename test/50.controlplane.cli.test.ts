// The `offpath` CLI as an operator meets it: exit codes (0 ok, 1 failure,
// 64 usage, 69 daemon unreachable), errors as one line on stderr, and the
// VSA lifecycle commands. (77, permission denied: 50.controlplane.permissions.)
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, grant, openApp, reported, runCli, startDaemon, tempDir, tryOpen, type CliResult, type DaemonProcess } from './helpers/daemon.js';

let daemon: DaemonProcess;

test.before(
  reported(async () => {
    daemon = await startDaemon();
    await daemon.json(['vsa', 'create', 'main', '--size', '8M']);
  }),
);

test.after(cleanup);

function oneLineError(result: CliResult, code: number, pattern: RegExp): void {
  assert.is(result.code, code, `exit code (stderr: ${result.stderr.trim()})`);
  assert.is(result.stdout, '', 'nothing on stdout');
  const lines = result.stderr.split('\n');
  assert.is(lines.length, 2, `one line on stderr: ${JSON.stringify(result.stderr)}`);
  assert.is(lines[1], '');
  assert.match(lines[0]!, pattern);
}

test('daemon unreachable: exit 69 and one line saying where it looked', async () => {
  const missing = join(tempDir(), 'no-daemon.sock');
  const results = await Promise.all([['status'], ['--json', 'status'], ['vsa', 'list'], ['grant', 'main']].map((args) => runCli(['--socket', missing, ...args])));
  for (const result of results) {
    oneLineError(result, 69, new RegExp(`^offpath: cannot reach the offpath daemon at ${missing.replace(/[.]/g, '\\.')} \\(ENOENT\\)`));
  }
});

test('OFFPATH_SOCKET names the daemon when --socket is not given', async () => {
  const result = await runCli(['--json', 'vsa', 'list'], { env: { OFFPATH_SOCKET: daemon.socket } });
  assert.is(result.code, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout).vsas.map((v: any) => v.name), ['main']);
});

test('usage errors: exit 64 with a message on stderr, nothing on stdout', async () => {
  const cases: string[][] = [
    ['frobnicate'],
    ['vsa', 'create', 'x'], // --size missing
    ['vsa', 'create', 'x', '--size', 'banana'],
    ['vsa', 'create', 'x', '--size', '1M', '--block-size', '1024'],
    ['vsa', 'resize', 'main', '--size', '-1'],
    ['grant', 'main', '--rights', 'x'],
    ['grant', 'main', '--expires', 'someday'],
    ['grant', 'main', '--uid', 'root'],
    ['grant', 'main', '--iops', '1.5'],
    ['grant', 'main', '--bandwidth', 'fast'],
    ['vsa', 'create', 'bad name!', '--size', '1M'],
  ];
  const results = await Promise.all(cases.map((args) => daemon.cli(args)));
  results.forEach((result, i) => {
    assert.is(result.code, 64, `offpath ${cases[i]!.join(' ')} exits 64 (stderr: ${result.stderr.trim()})`);
    assert.is(result.stdout, '', `offpath ${cases[i]!.join(' ')} prints nothing on stdout`);
    assert.ok(result.stderr.trim().length > 0, `offpath ${cases[i]!.join(' ')} says what is wrong`);
  });
  // None of them changed anything.
  const vsas = await daemon.json(['vsa', 'list']);
  assert.equal(vsas.vsas.map((v: any) => v.name), ['main']);
  assert.is((await daemon.json(['cap', 'list'])).capabilities.length, 0);
  // The daemon command has usage errors of its own.
  const [noState, noDevice] = await Promise.all([runCli(['daemon', '--device', 'emu:memory:16M']), runCli(['daemon', '--state', tempDir()])]);
  assert.is(noState.code, 64, noState.stderr);
  assert.is(noDevice.code, 64, noDevice.stderr);
  assert.match(noDevice.stderr, /--device/);
});

test('--help and --version exit 0', async () => {
  const [help, version] = await Promise.all([runCli(['--help']), runCli(['--version'])]);
  assert.is(help.code, 0);
  assert.match(help.stdout, /Usage: offpath/);
  assert.is(version.code, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
});

test('failures: exit 1 with the error code in one line', async () => {
  const [show, create, grantMissing, remove] = await Promise.all([
    daemon.cli(['vsa', 'show', 'nosuch']),
    daemon.cli(['vsa', 'create', 'main', '--size', '1M']),
    daemon.cli(['--json', 'grant', 'nosuch']),
    daemon.cli(['vsa', 'delete', 'nosuch']),
  ]);
  oneLineError(show, 1, /VSA_NOT_FOUND/);
  oneLineError(create, 1, /VSA_EXISTS/);
  oneLineError(grantMissing, 1, /VSA_NOT_FOUND/);
  oneLineError(remove, 1, /VSA_NOT_FOUND/);
});

test('cap revoke of an unknown id is a failure (exit 1), not a permission problem', async () => {
  oneLineError(await daemon.cli(['cap', 'revoke', '000000000000']), 1, /CAP_UNKNOWN/);
});

test('device list and status: a table, or one JSON document', async () => {
  const human = await daemon.cli(['device', 'list']);
  assert.is(human.code, 0, human.stderr);
  assert.match(human.stdout, /^DEVICE\s+KIND\s+CAPACITY\s+FREE\s+VSICS ONLINE\n/);
  assert.match(human.stdout, /\nemu0\s+emu\s+\S+\s+\S+\s+0\/4\s*\n/);
  const json = await daemon.cli(['--json', 'device', 'list']);
  const devices = JSON.parse(json.stdout).devices;
  assert.is(devices.length, 1);
  assert.is(devices[0].vsics.length, 4);
  assert.ok(devices[0].capacityBytes > 200 << 20);
  const status = await daemon.cli(['status']);
  assert.is(status.code, 0, status.stderr);
  assert.match(status.stdout, /\nmain\s+8M\s+4096\s+emu0/);
  assert.match(status.stdout, /0 capabilities, 0 VSAs open\n$/);
});

test('vsa resize: a later opener sees the new size', async () => {
  const resized = await daemon.cli(['vsa', 'resize', 'main', '--size', '16M']);
  assert.is(resized.code, 0, resized.stderr);
  assert.match(resized.stdout, /\nmain\s+16M\s/);
  const { app, vsa } = await openApp(daemon, (await grant(daemon, 'main')).token);
  assert.is(vsa.size, 16 << 20);
  await app.call({ op: 'write', block: 4000, blocks: 8, tag: 3 });
  assert.is((await app.call({ op: 'check', block: 4000, blocks: 8, tag: 3 })).match, 8);
  await app.exit();
});

test('vsa delete of an attached VSA is refused (VSA_BUSY) unless --force', async () => {
  await daemon.json(['vsa', 'create', 'doomed', '--size', '8M']);
  const capability = await grant(daemon, 'doomed');
  const { app } = await openApp(daemon, capability.token);
  await app.call({ op: 'write', block: 0, blocks: 8, tag: 9 });

  const refused = await daemon.cli(['vsa', 'delete', 'doomed']);
  oneLineError(refused, 1, /VSA_BUSY/);
  assert.match(refused.stderr, /--force/);
  assert.match(refused.stderr, new RegExp(`pid ${app.process.pid}`));
  assert.ok((await daemon.json(['vsa', 'show', 'doomed'])).attached, 'still there and attached');
  assert.is((await app.call({ op: 'check', block: 0, blocks: 8, tag: 9 })).match, 8, 'the application carries on');

  const forced = await daemon.cli(['vsa', 'delete', 'doomed', '--force']);
  assert.is(forced.code, 0, forced.stderr);
  assert.is(forced.stdout, 'deleted doomed\n');
  const after = await app.request({ op: 'io', kind: 'read', block: 0, blocks: 1 });
  assert.is(after.error?.code, 'VSA_DELETED', JSON.stringify(after.error));
  assert.is((await app.request({ op: 'close' }, 5000)).ok, true);
  await app.exit();

  const [list, capList, status] = await Promise.all([daemon.json(['vsa', 'list']), daemon.json(['cap', 'list']), daemon.json(['status'])]);
  assert.not.ok(list.vsas.some((v: any) => v.name === 'doomed'));
  assert.not.ok(capList.capabilities.some((c: any) => c.vsa === 'doomed'), 'its capabilities went with it');
  assert.is(status.sessions, 0);
  // A new VSA of the same name is not opened by the old token.
  await daemon.json(['vsa', 'create', 'doomed', '--size', '8M']);
  assert.is((await tryOpen(daemon, capability.token)).error?.code, 'CAP_UNKNOWN');
});

test.run();
