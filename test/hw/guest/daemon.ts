/**
 * Guest tests of the whole product on the hardware path: the project's own
 * daemon (`offpath daemon --device pci:<PF>`) owns the emulated SR-IOV NVMe
 * PF, carves VSAs out of its pre-provisioned namespaces (QEMU 7.2 has no
 * Namespace Management), and applications running as `nobody` open them by
 * capability, receive their VF as VFIO descriptors and run the same data
 * checks as on the emulator. Then isolation, revocation, a revoked
 * application that keeps its descriptors, and erasure before a namespace is
 * reused. Registered with the guest harness; test/hw/guest/suite.ts runs them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DaemonClient } from '../../../controlplane/client.js';
import { App, cannotRunAs, cleanup, startDaemon, type AppReply, type DaemonProcess } from '../../helpers/daemon.js';
import { finish, setup, test } from './harness.js';
import { findPf, secondaryControllers, type Pf } from './sriov.js';

const NOBODY = 65534;
/** What an application needs locked for one VSA: the 16 MiB DMA pool, queues and admin memory, with room. */
const APP_MEMLOCK_BYTES = 64 << 20;
/** Node and tsx start slowly under TCG. */
const CLI_TIMEOUT_MS = 60_000;
const APP_TIMEOUT_MS = 60_000;

let pf: Pf;
let daemon: DaemonProcess;
let appUid: number | undefined;
const apps = new Map<string, App>();
/** The open reply of each VSA's current application. */
const opens = new Map<string, AppReply>();
const tokens = new Map<string, { token: string; id: string }>();

const ok = (reply: AppReply, what: string): AppReply => {
  assert.ok(reply.ok, `${what}: ${JSON.stringify(reply.error)}`);
  return reply;
};

async function cli<T = any>(args: string[]): Promise<T> {
  return daemon.json<T>(args, { timeoutMs: CLI_TIMEOUT_MS });
}

/**
 * A request over the daemon's socket, as the CLI makes it. Most steps use
 * this instead of the CLI: each CLI process costs seconds of start-up under
 * TCG. The CLI itself is run for the steps an operator types.
 */
async function call<T = any>(method: string, params: Record<string, unknown>): Promise<T> {
  const client = DaemonClient.connect(daemon.socket);
  try {
    return await client.call<T>(method, params);
  } finally {
    client.close();
  }
}

/** An application (as nobody where possible) that has opened `vsa` by a fresh capability. */
async function openApp(vsa: string): Promise<AppReply> {
  const capability = await call<{ token: string; id: string }>('cap.grant', { vsa, ...(appUid === undefined ? {} : { uid: appUid }) });
  tokens.set(vsa, capability);
  const app = new App(appUid === undefined ? {} : { uid: appUid });
  apps.set(vsa, app);
  const reply = await app.request({ op: 'open', capability: capability.token, daemon: daemon.socket }, APP_TIMEOUT_MS);
  opens.set(vsa, reply);
  return reply;
}

setup('daemon on the hardware PF: VFs on vfio-pci, nothing online, namespaces from the pool', async () => {
  pf = await findPf();
  // Applications inherit this limit: VFIO charges pinned DMA memory to it.
  const limit = spawnSync('prlimit', ['--pid', String(process.pid), `--memlock=${APP_MEMLOCK_BYTES}:${APP_MEMLOCK_BYTES}`], { encoding: 'utf8' });
  assert.equal(limit.status, 0, `prlimit: ${limit.stderr}`);
  const why = cannotRunAs(NOBODY);
  if (why === undefined) appUid = NOBODY;
  else console.log(`    applications run as root: ${why}`);
  // The socket where nobody may reach it; the state stays root-only.
  // Under the guest's scratch space (/tmp may be the read-only host root).
  const shared = mkdtempSync(join(tmpdir(), 'offpath-hw-'));
  chmodSync(shared, 0o755);
  // A temporary directory every user may write (the guest's own is root's): tsx keeps its cache there.
  const tmp = join(shared, 'tmp');
  mkdirSync(tmp);
  chmodSync(tmp, 0o1777);
  process.env.TMPDIR = tmp;
  const stateDir = join(shared, 'state');
  mkdirSync(stateDir, { mode: 0o700 });
  daemon = await startDaemon({ stateDir, socket: join(shared, 'daemon.sock'), device: `pci:${pf.address}:2`, vfs: 2 });
  const started = daemon.events().find((e) => e.event === 'device-started');
  assert.equal(started?.namespaces, 'pool', 'QEMU 7.2 has no Namespace Management: the pool is used');
  const { devices } = await cli<{ devices: Array<Record<string, any>> }>(['device', 'list']);
  assert.equal(devices.length, 1);
  assert.equal(devices[0]!.kind, 'nvme');
  assert.deepEqual(
    devices[0]!.vsics.map((v: Record<string, any>) => [v.cntlid, v.online]),
    [
      [1, false],
      [2, false],
    ],
    'two VSICs, offline until an application redeems a capability',
  );
});

setup('VSAs on pre-provisioned namespaces (used whole); none left that fits: ENOSPC', async () => {
  const alpha = await cli(['vsa', 'create', 'alpha', '--size', '32M', '--block-size', '512']);
  const beta = await call('vsa.create', { name: 'beta', sizeBytes: 64 << 20, blockBytes: 4096 });
  assert.deepEqual([alpha.nsid, alpha.sizeBytes, alpha.blockBytes], [1, 64 << 20, 512], `alpha: ${JSON.stringify(alpha)}`);
  assert.deepEqual([beta.nsid, beta.sizeBytes, beta.blockBytes], [2, 64 << 20, 4096], `beta: ${JSON.stringify(beta)}`);
  const tooBig = await daemon.cli(['vsa', 'create', 'gamma', '--size', '1G'], { timeoutMs: CLI_TIMEOUT_MS });
  assert.equal(tooBig.code, 1, `exit status: ${tooBig.stderr}`);
  assert.match(tooBig.stderr.trim(), /^offpath: ENOSPC: .*pre-provisioned namespace/);
  assert.equal(tooBig.stderr.trim().split('\n').length, 1, 'one line');
});

setup('an application (not root) opens its VSA by capability and gets a VF through VFIO', async () => {
  const opened = ok(await openApp('alpha'), 'open alpha');
  assert.deepEqual([opened.vsa.transport, opened.vsa.nsid, opened.vsa.blockSize, opened.vsa.size], ['vfio', 1, 512, 64 << 20]);
  const online = secondaryControllers(pf).filter((s) => s.online);
  assert.deepEqual(online.map((s) => s.scid), [opened.vsa.cntlid], 'exactly its VSIC is online');
});

test('the shared data checks pass through the capability-opened VF', async () => {
  const { results } = ok(await apps.get('alpha')!.request({ op: 'data-checks' }, APP_TIMEOUT_MS), 'data-checks');
  for (const result of results as Array<{ name: string; ms: number; error?: unknown }>) {
    console.log(`    ${result.error ? 'FAIL' : 'ok'} ${result.name} (${result.ms} ms)`);
  }
  const failures = (results as Array<{ name: string; error?: unknown }>).filter((r) => r.error);
  assert.equal(failures.length, 0, `failed: ${JSON.stringify(failures)}`);
  assert.ok(results.length >= 5, 'every check ran');
});

test('two applications on two VFs: each reads back only its own data', async () => {
  const opened = ok(await openApp('beta'), 'open beta');
  assert.equal(opened.vsa.transport, 'vfio');
  assert.notEqual(opened.vsa.cntlid, opens.get('alpha')!.vsa.cntlid, 'another VSIC');
  const alpha = apps.get('alpha')!;
  const beta = apps.get('beta')!;
  // The same byte offsets on both VSAs, different tags.
  ok(await alpha.request({ op: 'write', tag: 0xa1, block: 0, blocks: 64, fua: true }, APP_TIMEOUT_MS), 'alpha write');
  ok(await beta.request({ op: 'write', tag: 0xb2, block: 0, blocks: 8, fua: true }, APP_TIMEOUT_MS), 'beta write');
  const mine = ok(await alpha.request({ op: 'check', tag: 0xa1, block: 0, blocks: 64 }, APP_TIMEOUT_MS), 'alpha check');
  assert.deepEqual([mine.match, mine.other], [64, 0], `alpha sees its own blocks: ${JSON.stringify(mine)}`);
  const theirs = ok(await beta.request({ op: 'check', tag: 0xb2, block: 0, blocks: 8 }, APP_TIMEOUT_MS), 'beta check');
  assert.deepEqual([theirs.match, theirs.other], [8, 0], `beta sees its own blocks: ${JSON.stringify(theirs)}`);
  const attached = secondaryControllers(pf).filter((s) => s.online);
  assert.equal(attached.length, 2, 'both VSICs online');
});

test('revocation: the VF goes offline at once and the application\'s next I/O fails with CAP_REVOKED', async () => {
  const alpha = apps.get('alpha')!;
  const { vsic } = (await call('vsa.show', { name: 'alpha' })).attached;
  assert.equal(vsic, opens.get('alpha')!.vsa.cntlid, 'the daemon and the application agree on the VSIC');
  const revokedAt = Date.now();
  await cli(['cap', 'revoke', tokens.get('alpha')!.id]);
  const read = await alpha.request({ op: 'io', kind: 'read', block: 0, blocks: 1 }, APP_TIMEOUT_MS);
  assert.equal(read.ok, false, 'the read after revocation fails');
  assert.equal(read.error?.code, 'CAP_REVOKED', `a clear error: ${JSON.stringify(read.error)}`);
  console.log(`    next I/O failed ${Date.now() - revokedAt} ms after the revoke command started`);
  const state = secondaryControllers(pf).find((s) => s.scid === vsic);
  assert.equal(state?.online, false, 'the revoked VSIC is offline on the device');
  // The other application is unaffected.
  ok(await apps.get('beta')!.request({ op: 'check', tag: 0xb2, block: 0, blocks: 8 }, APP_TIMEOUT_MS), 'beta still works');
});

test('a revoked application that keeps its descriptors keeps its VF busy; once it exits, the VSA reopens with its data', async () => {
  const revoked = apps.get('alpha')!;
  // Both VSICs are held (beta open; alpha revoked but alive): no VSIC to give.
  const waiting = await openApp('alpha').catch((error: Error) => ({ ok: false, error: { code: 'THROWN', message: error.message } }) as AppReply);
  assert.equal(waiting.ok, false, 'no free VSIC while the revoked process holds its VF');
  assert.equal(waiting.error?.code, 'NO_VSIC', JSON.stringify(waiting.error));
  assert.ok(daemon.events().some((e) => e.event === 'vsic-busy'), 'the daemon saw the VF busy');
  // `apps` now holds the refused one; the revoked one is in `revoked`.
  revoked.process.kill('SIGKILL');
  await revoked.exited;
  apps.get('alpha')!.process.kill('SIGKILL');
  const reopened = ok(await openApp('alpha'), 'reopen alpha');
  assert.equal(reopened.vsa.transport, 'vfio');
  const kept = ok(await apps.get('alpha')!.request({ op: 'check', tag: 0xa1, block: 0, blocks: 64 }, APP_TIMEOUT_MS), 'alpha check after reopen');
  assert.deepEqual([kept.match, kept.other], [64, 0], `acknowledged FUA writes survived the revocation: ${JSON.stringify(kept)}`);
});

test('a deleted VSA\'s namespace is erased before the next VSA gets it', async () => {
  for (const app of apps.values()) app.process.kill('SIGKILL');
  await Promise.all([...apps.values()].map((app) => app.exited));
  apps.clear();
  await call('vsa.delete', { name: 'alpha', force: true });
  assert.ok(daemon.events().some((e) => e.event === 'namespace-erased' && e.nsid === 1), 'the daemon erased nsid 1');
  const delta = await call('vsa.create', { name: 'delta', sizeBytes: 16 << 20, blockBytes: 512 });
  assert.equal(delta.nsid, 1, 'the same namespace, reused');
  ok(await openApp('delta'), 'open delta');
  const seen = ok(await apps.get('delta')!.request({ op: 'check', tag: 0xa1, block: 0, blocks: 64 }, APP_TIMEOUT_MS), 'delta check');
  assert.deepEqual([seen.match, seen.zero, seen.other], [0, 64, 0], `nothing of alpha's is left: ${JSON.stringify(seen)}`);
});

// Before the VFIO tests take the PF over with nvme-cli.
setup('the daemon stops cleanly and leaves every VSIC offline', async () => {
  for (const app of apps.values()) app.process.kill('SIGKILL');
  await Promise.all([...apps.values()].map((app) => app.exited));
  const stopped = await daemon.stop();
  await cleanup();
  assert.deepEqual(stopped, { code: 0, signal: null }, 'exit status');
  assert.deepEqual(secondaryControllers(pf).filter((s) => s.online), [], 'no VSIC online');
});

finish(cleanup);
