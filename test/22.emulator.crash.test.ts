// kill -9 of the emulator in the middle of a workload (file backend): every
// outstanding command fails at once with a clear error, and after a restart
// every namespace and every acknowledged write is there.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StorageError } from '../libstorage/errors.js';
import { NvmOpcode } from '../libstorage/nvme/spec.js';
import { connectController, connectPf, provisionVf, startEmulator } from './helpers/emulator.js';
import { Read, Write, pattern, rw, statusOf } from './helpers/nvme.js';

const BLOCK = 4096;
const NS_BLOCKS = 4096; // 16 MiB: writes land in many chunks, so allocation happens under load
const folder = mkdtempSync(join(tmpdir(), 'offpath-crash-'));
const image = join(folder, 'pool.img');
const sockets = join(folder, 'sockets');
const storeArgs = ['--store', `file:${image}`, '--size', '64M', '--vfs', '1'];

function contentOf(lba: number, generation: number): Uint8Array {
  return pattern(BLOCK, lba * 7919 + generation);
}

test('acknowledged writes and namespaces survive kill -9, in several rounds', async () => {
  let emulator = await startEmulator(storeArgs, sockets);
  let pf = await connectPf(emulator);
  const nsid = await provisionVf(pf, 1, NS_BLOCKS);
  const acked = new Map<number, number>();
  const submitted = new Map<number, number>();
  const namespaces = [nsid];
  let generation = 0;
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);

  for (let round = 0; round < 3; round++) {
    const vf = await connectController(emulator, 1, 1);
    const region = await vf.newRegion(4 << 20);
    const queue = await vf.createQueuePair(1, 64);
    const io = { controller: vf, queue, region, nsid };
    // The PF makes a namespace mid-round too: metadata changes under load.
    namespaces.push(await pf.createNamespace(64 + round, 4096));

    let stop = false;
    let failures = 0;
    const worker = async (lane: number) => {
      const buffer = region.alloc(BLOCK);
      while (!stop) {
        const lba = Math.floor(random() * NS_BLOCKS);
        const gen = ++generation;
        buffer.bytes.set(contentOf(lba, gen));
        submitted.set(lba, gen);
        try {
          const result = await rw(io, Write, lba, 1, buffer, lane === 0 ? { fua: true } : {});
          if (result.status16 === 0 && (acked.get(lba) ?? 0) < gen) acked.set(lba, gen);
        } catch (error) {
          assert.instance(error, StorageError);
          assert.is((error as StorageError).code, 'ECONNRESET');
          failures++;
          return;
        }
      }
    };
    const lanes = [0, 1, 2, 3].map(worker);
    await new Promise((resolve) => setTimeout(resolve, 150 + random() * 250));
    await emulator.kill();
    const settled = await Promise.race([
      Promise.all(lanes).then(() => 'settled'),
      new Promise((resolve) => setTimeout(() => resolve('hung'), 5000)),
    ]);
    stop = true;
    assert.is(settled, 'settled', 'every outstanding command settled after the kill');
    assert.ok(failures > 0, 'commands were in flight when the emulator died');
    vf.transport.close();
    pf.controller.transport.close();

    emulator = await startEmulator(storeArgs, sockets);
    pf = await connectPf(emulator);
    assert.equal(await pf.allocatedNamespaces(), namespaces, `round ${round}: namespaces`);
    // Attachments are persistent; online state is not (the control plane redoes it).
    await pf.bringOnline(1, 2, 1);
  }

  const vf = await connectController(emulator, 1, 1);
  const region = await vf.newRegion(1 << 20);
  const queue = await vf.createQueuePair(1, 64);
  const buffer = region.alloc(BLOCK);
  let checked = 0;
  for (const [lba, gen] of acked) {
    assert.is(statusOf(await rw({ controller: vf, queue, region, nsid }, Read, lba, 1, buffer)), 'SUCCESS');
    const last = submitted.get(lba)!;
    let match = false;
    for (let g = gen; g <= last && !match; g++) {
      const expected = contentOf(lba, g);
      match = buffer.bytes.every((x, i) => x === expected[i]);
    }
    assert.ok(match, `block ${lba}: acknowledged generation ${gen} (or a later one) is on disk`);
    checked++;
  }
  assert.ok(checked > 50, `checked ${checked} blocks`);
  assert.is(statusOf(await vf.submit(queue, { opc: NvmOpcode.FLUSH, nsid })), 'SUCCESS');
  await vf.shutdown();
  await pf.controller.shutdown();
  await emulator.stop();
});

test.after(() => rmSync(folder, { recursive: true, force: true }));
test.run();
