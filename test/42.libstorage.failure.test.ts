// The worst moments: closing with I/O in flight, and the VSIC dying under
// the application. Every Promise settles; nothing hangs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PfAdmin } from '../controlplane/pf/pf-admin.js';
import { EmulatorServer } from '../emulator/server.js';
import { NvmeController } from '../libstorage/driver/controller.js';
import { StorageError, open, openQueue } from '../libstorage/index.js';
import { EmuTransport } from '../libstorage/transport/emu/emu-transport.js';
import { closeFixture, openFixture } from './helpers/vsa.js';

const BLOCK = 4096;

function settleAll(promises: Promise<void>[]): Promise<Array<'ok' | StorageError>> {
  return Promise.all(promises.map((p) => p.then(() => 'ok' as const, (e: StorageError) => e)));
}

test('close with I/O in flight: in-flight I/O completes, every Promise settles, later I/O is refused', async () => {
  const f = await openFixture(4096);
  const buffer = f.vsa.alloc(BLOCK);
  const inflight = Array.from({ length: 500 }, (_, i) => f.vsa.write((i % 4096) * BLOCK, buffer));
  const closed = f.vsa.close();
  const results = await settleAll(inflight);
  await closed;
  assert.ok(results.every((r) => r === 'ok'), 'I/O submitted before close completed');
  assert.throws(() => f.vsa.read(0, buffer), (e: any) => e instanceof StorageError && e.code === 'ECLOSED');
  await closeFixture(f);
});

test('emulator killed mid-I/O: every Promise rejects with ECONNRESET, nothing hangs', async () => {
  const f = await openFixture(4096, { queues: 2 });
  const handle = await f.vsa.queueHandle({ queueEntries: 32, poolBytes: 1 << 20 });
  // A queue driven from this thread through a handle behaves like a worker's:
  // it learns of the death from its lifeline, not from the connection.
  const workerQueue = openQueue(handle);
  const buffer = f.vsa.alloc(BLOCK);
  let stop = false;
  const errors: StorageError[] = [];
  const loop = async (queue: typeof workerQueue) => {
    while (!stop) {
      try {
        await queue.read(0, buffer.length === BLOCK ? Buffer.alloc(BLOCK) : buffer);
      } catch (error) {
        errors.push(error as StorageError);
        return;
      }
    }
  };
  const loops = [loop(f.vsa), loop(f.vsa), loop(workerQueue), loop(workerQueue)];
  await new Promise((resolve) => setTimeout(resolve, 100));
  await f.emulator.kill();
  const settled = await Promise.race([
    Promise.all(loops).then(() => 'settled'),
    new Promise((resolve) => setTimeout(() => resolve('hung'), 3000)),
  ]);
  stop = true;
  assert.is(settled, 'settled');
  assert.is(errors.length, 4, 'every loop saw its I/O fail');
  for (const error of errors) {
    assert.instance(error, StorageError);
    assert.is(error.code, 'ECONNRESET');
    assert.match(error.message, /went away/);
  }
  // Later I/O fails at once with the same clear error.
  assert.throws(() => f.vsa.read(0, buffer), (e: any) => e.code === 'ECONNRESET');
  assert.throws(() => workerQueue.read(0, buffer), (e: any) => e.code === 'ECONNRESET');
  await f.vsa.close();
  await workerQueue.close();
});

test('a controller fatal status (CSTS.CFS) fails outstanding and later I/O with ECONTROLLERFATAL', async () => {
  // In-process emulator, so the test can inject the fault.
  const socketDir = mkdtempSync(join(tmpdir(), 'offpath-fatal-'));
  const server = new EmulatorServer({ socketDir, store: { kind: 'memory', sizeBytes: 32 << 20 }, secondaryControllers: 1 });
  try {
    const pf = new PfAdmin(await NvmeController.bringUp(await EmuTransport.connect(join(socketDir, 'pf.sock')), { ioQueuePairs: 1 }));
    const nsid = await pf.createNamespace(256, 4096);
    await pf.attach(nsid, 1);
    await pf.bringOnline(1, 2, 2);
    const vsa = await open(join(socketDir, 'vf-1.sock'));
    const buffer = vsa.alloc(BLOCK);
    await vsa.write(0, buffer);
    (server.subsystem as unknown as { injectFatal(cntlid: number): void }).injectFatal(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const started = Date.now();
    const results = await settleAll([vsa.read(0, buffer), vsa.write(BLOCK, buffer)]);
    assert.ok(Date.now() - started < 2000, 'failed promptly');
    for (const result of results) {
      assert.instance(result, StorageError);
      assert.is((result as StorageError).code, 'ECONTROLLERFATAL');
    }
    await vsa.close();
    await pf.controller.shutdown();
  } finally {
    server.close();
    rmSync(socketDir, { recursive: true, force: true });
  }
});

test.run();
