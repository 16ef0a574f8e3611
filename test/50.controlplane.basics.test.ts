// The control plane end to end, with real processes: the daemon and its
// emulator, the `offpath` CLI, and applications that open VSAs by capability.
// An administrator creates a VSA and grants a capability; an application
// redeems it and round-trips data; a second tenant only ever sees its own VSA.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, grant, openApp, reported, startDaemon, tryOpen, type DaemonProcess } from './helpers/daemon.js';

let daemon: DaemonProcess;

test.before(
  reported(async () => {
    daemon = await startDaemon();
  }),
);

test.after(cleanup);

test('the daemon tells the operator where it listens and how to continue', () => {
  const out = daemon.stdout();
  assert.ok(out.startsWith(`offpath daemon listening on ${daemon.socket}\n`), out);
  assert.match(out, /vsa create/);
  assert.match(out, /grant/);
  const started = daemon.events().find((e) => e.event === 'daemon-started');
  assert.ok(started, 'the log says the daemon started');
  assert.equal(started!.devices, ['emu0']);
});

test('vsa create: a table for people, one JSON document with --json', async () => {
  const [human, json] = await Promise.all([
    daemon.cli(['vsa', 'create', 'alpha', '--size', '16M']),
    daemon.cli(['--json', 'vsa', 'create', 'beta', '--size', '16M', '--block-size', '512']),
  ]);
  assert.is(human.code, 0, human.stderr);
  assert.is(human.stderr, '');
  assert.match(human.stdout, /^NAME\s+SIZE\s+BLOCK\s+DEVICE\s+NSID\s+ATTACHED\n/);
  assert.match(human.stdout, /\nalpha\s+16M\s+4096\s+emu0\s+\d+\s+-\s*\n/);

  assert.is(json.code, 0, json.stderr);
  const beta = JSON.parse(json.stdout);
  assert.is(beta.name, 'beta');
  assert.is(beta.sizeBytes, 16 << 20);
  assert.is(beta.blockBytes, 512);
  assert.is(beta.attached, null);

  const [list, show] = await Promise.all([daemon.json(['vsa', 'list']), daemon.json(['vsa', 'show', 'alpha'])]);
  assert.equal(list.vsas.map((v: any) => v.name).sort(), ['alpha', 'beta']);
  assert.is(show.sizeBytes, 16 << 20);
  assert.is(show.blockBytes, 4096);
  assert.is.not(show.nsid, beta.nsid, 'each VSA is a namespace of its own');
});

test('grant prints the token once; --json gives one document; only a hash is kept', async () => {
  const [human, json] = await Promise.all([daemon.cli(['grant', 'alpha']), daemon.cli(['--json', 'grant', 'alpha', '--rights', 'r'])]);
  assert.is(human.code, 0, human.stderr);
  const [tokenLine, note, ...rest] = human.stdout.split('\n');
  assert.match(tokenLine!, /^opcap_[0-9a-f]{12}_[A-Za-z0-9_-]{32}$/);
  assert.match(note!, /for VSA alpha, rights rw; the token is shown only now/);
  assert.equal(rest, ['']);

  assert.is(json.code, 0, json.stderr);
  const document = JSON.parse(json.stdout); // the whole of stdout is one document
  assert.match(document.token, /^opcap_[0-9a-f]{12}_[A-Za-z0-9_-]{32}$/);
  assert.is(document.vsa, 'alpha');
  assert.is(document.rights, 'r');
  assert.ok(document.token.includes(document.id), 'the public id is part of the token');
  assert.is(document.hash, undefined, 'the stored hash is not shown');

  // Listing shows ids, never tokens; the state directory holds no token either.
  const [list, listJson] = await Promise.all([daemon.cli(['cap', 'list']), daemon.cli(['--json', 'cap', 'list'])]);
  assert.is(list.code, 0, list.stderr);
  assert.ok(list.stdout.includes(document.id));
  const stateFiles = readdirSync(join(daemon.stateDir, 'caps')).map((f) => readFileSync(join(daemon.stateDir, 'caps', f), 'utf8'));
  for (const token of [tokenLine!, document.token]) {
    assert.not.ok(list.stdout.includes(token), 'cap list does not show tokens');
    assert.not.ok(listJson.stdout.includes(token), 'cap list --json does not show tokens');
    assert.not.ok(stateFiles.some((content) => content.includes(token)), 'no state file holds a token');
  }
  assert.not.ok(listJson.stdout.includes('"hash"'));
});

test('an application opens a VSA by capability and round-trips data', async () => {
  const capability = await grant(daemon, 'alpha');
  const { app, vsa } = await openApp(daemon, capability.token);
  assert.is(vsa.name, 'alpha');
  assert.is(vsa.size, 16 << 20);
  assert.is(vsa.blockSize, 4096);
  await app.call({ op: 'write', block: 0, blocks: 64, tag: 1 });
  await app.call({ op: 'write', block: 4000, blocks: 96, tag: 1 });
  const head = await app.call({ op: 'check', block: 0, blocks: 64, tag: 1 });
  const tail = await app.call({ op: 'check', block: 4000, blocks: 96, tag: 1 });
  assert.is(head.match, 64);
  assert.is(tail.match, 96);
  const untouched = await app.call({ op: 'check', block: 64, blocks: 64, tag: 1 });
  assert.is(untouched.zero, 64, 'blocks never written read as zeroes');

  // While it is open, the operator sees who holds it.
  const [shown, caps] = await Promise.all([daemon.json(['vsa', 'show', 'alpha']), daemon.json(['cap', 'list'])]);
  assert.is(shown.attached.pid, app.process.pid);
  assert.is(shown.attached.capability, capability.id);
  assert.is(shown.attached.rights, 'rw');
  assert.is(caps.capabilities.find((c: any) => c.id === capability.id).active, true);

  // Closing releases the VSA; a new application reads what the first wrote.
  const closed = await app.call({ op: 'close' });
  assert.ok(closed.ms < 2000, `close took ${closed.ms} ms`);
  await app.exit();
  assert.is((await daemon.json(['vsa', 'show', 'alpha'])).attached, null);
  const again = await openApp(daemon, capability.token);
  assert.is((await again.app.call({ op: 'check', block: 4000, blocks: 96, tag: 1 })).match, 96);
  await again.app.exit();
});

test('an application that exits without closing releases its VSA', async () => {
  const capability = await grant(daemon, 'alpha');
  const { app } = await openApp(daemon, capability.token);
  assert.ok((await daemon.json(['vsa', 'show', 'alpha'])).attached);
  // A second opener meanwhile is told the VSA is busy.
  const busy = await tryOpen(daemon, capability.token);
  assert.is(busy.ok, false);
  assert.is(busy.error!.code, 'VSA_BUSY');
  assert.match(busy.error!.message, new RegExp(`pid ${app.process.pid}`));
  app.process.kill('SIGKILL');
  await app.exited;
  let attached: unknown = true;
  for (let i = 0; i < 20 && attached; i++) attached = (await daemon.json(['vsa', 'show', 'alpha'])).attached;
  assert.is(attached, null, 'the daemon noticed the application went away');
  const reopened = await openApp(daemon, capability.token);
  assert.is((await reopened.app.call({ op: 'check', block: 0, blocks: 64, tag: 1 })).match, 64);
  await reopened.app.exit();
});

test('two tenants: each only ever sees its own VSA, at the same offsets', async () => {
  await daemon.json(['vsa', 'create', 'tenant-a', '--size', '8M']);
  await daemon.json(['vsa', 'create', 'tenant-b', '--size', '8M']);
  const capA = await grant(daemon, 'tenant-a');
  const capB = await grant(daemon, 'tenant-b');
  const a = await openApp(daemon, capA.token);
  const b = await openApp(daemon, capB.token);
  assert.is(a.vsa.name, 'tenant-a');
  assert.is(b.vsa.name, 'tenant-b', "B's capability opens B's VSA, not A's");
  // Both open at once, on VSICs of their own.
  const status = await daemon.json(['status']);
  const vsics = status.devices[0].vsics.filter((v: any) => v.online);
  assert.equal(vsics.map((v: any) => v.vsa).sort(), ['tenant-a', 'tenant-b']);
  assert.is(new Set(vsics.map((v: any) => v.cntlid)).size, 2);

  // A fresh VSA shows none of anybody's data.
  assert.is((await b.app.call({ op: 'check', block: 0, blocks: 2048, tag: 0xb })).zero, 2048);
  await a.app.call({ op: 'write', block: 0, blocks: 256, tag: 0xa });
  assert.is((await b.app.call({ op: 'check', block: 0, blocks: 256, tag: 0xb })).zero, 256, "A's writes do not show in B");
  await b.app.call({ op: 'write', block: 0, blocks: 256, tag: 0xb });
  const seenByA = await a.app.call({ op: 'check', block: 0, blocks: 256, tag: 0xa });
  const seenByB = await b.app.call({ op: 'check', block: 0, blocks: 256, tag: 0xb });
  assert.is(seenByA.match, 256, `A reads its own bytes: ${JSON.stringify(seenByA.others)}`);
  assert.is(seenByB.match, 256, `B reads its own bytes: ${JSON.stringify(seenByB.others)}`);
  // B's capability with A's public id spliced in is no key to A.
  const spliced = capB.token.replace(capB.id, capA.id);
  const refused = await tryOpen(daemon, spliced);
  assert.is(refused.error?.code, 'CAP_UNKNOWN');
  await a.app.exit();
  await b.app.exit();
});

test("a VSA created after another was deleted does not show the old tenant's bytes", async () => {
  await daemon.json(['vsa', 'create', 'old', '--size', '8M']);
  const old = await openApp(daemon, (await grant(daemon, 'old')).token);
  await old.app.call({ op: 'write', block: 0, blocks: 2048, tag: 0x01d, fua: true });
  await old.app.call({ op: 'close' });
  await old.app.exit();
  assert.is((await daemon.cli(['vsa', 'delete', 'old'])).code, 0);
  await daemon.json(['vsa', 'create', 'new', '--size', '8M']);
  const fresh = await openApp(daemon, (await grant(daemon, 'new')).token);
  const seen = await fresh.app.call({ op: 'check', block: 0, blocks: 2048, tag: 0x0e3 });
  assert.is(seen.zero, 2048, `the new VSA reads as zeroes, not old data: ${JSON.stringify(seen.others)}`);
  await fresh.app.exit();
});

test.run();
