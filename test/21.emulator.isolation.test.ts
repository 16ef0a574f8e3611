// Two VSICs with different VSAs: whatever one sends, it can neither read the
// other's data nor touch the other's memory.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NvmeController } from '../libstorage/driver/controller.js';
import type { DmaRegion } from '../libstorage/dma.js';
import { StorageError } from '../libstorage/errors.js';
import { Cns } from '../libstorage/nvme/identify.js';
import { NvmOpcode, rwSqe } from '../libstorage/nvme/spec.js';
import type { QueuePair } from '../libstorage/queue/queue-pair.js';
import type { PfAdmin } from '../controlplane/pf/pf-admin.js';
import { connectController, connectPf, provisionVf, startEmulator, type RunningEmulator } from './helpers/emulator.js';
import { Read, Write, pattern, rw, statusOf, type IoContext } from './helpers/nvme.js';

const BLOCK = 4096;
let emulator: RunningEmulator;
let pf: PfAdmin;
let a: { vf: NvmeController; region: DmaRegion; queue: QueuePair; nsid: number; io: IoContext };
let b: typeof a;

async function tenant(cntlid: number, regionBytes: number): Promise<typeof a> {
  const nsid = await provisionVf(pf, cntlid, 256);
  const vf = await connectController(emulator, cntlid, 1);
  const region = await vf.newRegion(regionBytes);
  const queue = await vf.createQueuePair(1, 32);
  return { vf, region, queue, nsid, io: { controller: vf, queue, region, nsid } };
}

test.before(async () => {
  emulator = await startEmulator(['--store', 'memory:32M', '--vfs', '2']);
  pf = await connectPf(emulator);
  a = await tenant(1, 1 << 20);
  // B registers less memory, so A's higher IOVAs are unmapped for B.
  b = await tenant(2, 64 << 10);
});

test.after(async () => {
  for (const t of [a, b]) await t?.vf.shutdown().catch(() => {});
  await pf?.controller.shutdown().catch(() => {});
  await emulator?.stop();
});

test('controller sockets are owner-only', () => {
  for (const name of ['pf.sock', 'vf-1.sock', 'vf-2.sock']) {
    assert.is(statSync(join(emulator.socketDir, name)).mode & 0o777, 0o600, name);
  }
});

test("B sees only its own namespace, and A's is invalid for every command", async () => {
  assert.equal(await b.vf.activeNamespaces(), [b.nsid]);
  const secret = a.region.alloc(BLOCK);
  secret.bytes.set(pattern(BLOCK, 99));
  assert.is(statusOf(await rw(a.io, Write, 5, 1, secret)), 'SUCCESS');
  const buffer = b.region.alloc(BLOCK);
  for (const opc of [NvmOpcode.READ, NvmOpcode.WRITE, NvmOpcode.COMPARE, NvmOpcode.WRITE_ZEROES, NvmOpcode.DATASET_MANAGEMENT, NvmOpcode.FLUSH]) {
    const result = await b.vf.submit(b.queue, { ...rwSqe({ opc, cid: 0, nsid: a.nsid, slba: 5, nlb: 0, prp1: buffer.iova }), cdw11: opc === NvmOpcode.DATASET_MANAGEMENT ? 4 : 0 });
    assert.is(statusOf(result), 'INVALID_NAMESPACE_OR_FORMAT+DNR', `opcode ${opc}`);
  }
  assert.ok(buffer.bytes.every((x) => x === 0), 'nothing of A reached B');
  // Identify of A's namespace from B reads as an inactive namespace: zeroes.
  const id = await b.vf.identifyNamespace(a.nsid);
  assert.is(id.nsze, 0n);
  const descriptors = await b.vf.adminTransfer({ opc: 0x06, nsid: a.nsid, cdw10: Cns.NS_DESCRIPTOR_LIST });
  assert.is(statusOf(descriptors), 'INVALID_NAMESPACE_OR_FORMAT+DNR');
  a.region.release(secret);
  b.region.release(buffer);
});

test("B cannot name A's memory: IOVAs it did not register are DMA faults", async () => {
  // A's region spans IOVAs B never mapped (B's region is smaller).
  const foreign = a.region.iova + 512 * 1024;
  assert.is(b.region.offsetOf(foreign), -1);
  const write = rwSqe({ opc: NvmOpcode.WRITE, cid: 0, nsid: b.nsid, slba: 0, nlb: 0, prp1: foreign });
  assert.is(statusOf(await b.vf.submit(b.queue, write)), 'DATA_TRANSFER_ERROR+DNR');
  const read = rwSqe({ opc: NvmOpcode.READ, cid: 0, nsid: b.nsid, slba: 0, nlb: 0, prp1: foreign });
  assert.is(statusOf(await b.vf.submit(b.queue, read)), 'DATA_TRANSFER_ERROR+DNR');
  // A PRP list in B's memory that points outside it faults too, entry by entry.
  const list = b.region.alloc(BLOCK);
  const data = b.region.alloc(BLOCK);
  new DataView(list.bytes.buffer, list.bytes.byteOffset, BLOCK).setBigUint64(0, BigInt(foreign), true);
  new DataView(list.bytes.buffer, list.bytes.byteOffset, BLOCK).setBigUint64(8, BigInt(foreign + BLOCK), true);
  const listed = rwSqe({ opc: NvmOpcode.WRITE, cid: 0, nsid: b.nsid, slba: 0, nlb: 2, prp1: data.iova, prp2: list.iova });
  assert.is(statusOf(await b.vf.submit(b.queue, listed)), 'DATA_TRANSFER_ERROR+DNR');
  // B's own data is untouched by the failed commands.
  const back = b.region.alloc(BLOCK);
  assert.is(statusOf(await rw(b.io, Read, 0, 1, back)), 'SUCCESS');
  assert.ok(back.bytes.every((x) => x === 0));
  for (const x of [list, data, back]) b.region.release(x);
});

test("a second host cannot take over a VSIC that has one", async () => {
  const thief = await connectController(emulator, 1).catch((e) => e);
  assert.instance(thief, StorageError);
  assert.is((thief as StorageError).code, 'EBUSY');
  // A still works.
  const buffer = a.region.alloc(BLOCK);
  assert.is(statusOf(await rw(a.io, Read, 5, 1, buffer)), 'SUCCESS');
  assert.equal(buffer.bytes, pattern(BLOCK, 99));
  a.region.release(buffer);
});

test('a host that goes away leaves its VSIC reset, and the next host starts clean', async () => {
  await b.vf.shutdown();
  b.vf.transport.close();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const again = await connectController(emulator, 2, 1);
  assert.equal(await again.activeNamespaces(), [b.nsid]);
  const region = await again.newRegion(64 << 10);
  const queue = await again.createQueuePair(1, 16);
  const buffer = region.alloc(BLOCK);
  assert.is(statusOf(await rw({ controller: again, queue, region, nsid: b.nsid }, Read, 0, 1, buffer)), 'SUCCESS');
  b = { vf: again, region, queue, nsid: b.nsid, io: { controller: again, queue, region, nsid: b.nsid } };
});

test.run();
