// The software VSIC driven with raw SQEs through the driver's queue-pair
// layer: bring-up, every admin and I/O opcode, every rejection path with the
// exact status a real controller gives.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NvmeController } from '../libstorage/driver/controller.js';
import type { DmaRegion } from '../libstorage/dma.js';
import { StorageError } from '../libstorage/errors.js';
import {
  Cns,
  FeatureId,
  IDCTRL_MDTS_OFFSET,
  IDCTRL_OACS_OFFSET,
  IDCTRL_SGLS_OFFSET,
  IDCTRL_VWC_OFFSET,
  LogPageId,
  getFeaturesSqe,
  getLogPageSqe,
  readErrorLogEntry,
  readNamespaceList,
  readNsIdDescriptors,
  readSmartHealthLog,
  setFeaturesSqe,
  virtMgmtSqe,
  VirtMgmtAction,
  VirtResourceType,
} from '../libstorage/nvme/identify.js';
import { AdminOpcode, NvmOpcode, SglType, createIoCqSqe, createIoSqSqe, deleteIoQueueSqe, rwSqe, writeDsmRange } from '../libstorage/nvme/spec.js';
import type { QueuePair } from '../libstorage/queue/queue-pair.js';
import type { PfAdmin } from '../controlplane/pf/pf-admin.js';
import { connectController, connectPf, provisionVf, startEmulator, type RunningEmulator } from './helpers/emulator.js';
import { Read, Write, pattern, rw, statusOf, type IoContext } from './helpers/nvme.js';

const BLOCK = 4096;
const NS_BLOCKS = 1024; // 4 MiB

let emulator: RunningEmulator;
let pf: PfAdmin;
let vf: NvmeController;
let io: IoContext;
let region: DmaRegion;
let queue: QueuePair;
let nsid: number;

test.before(async () => {
  emulator = await startEmulator(['--store', 'memory:64M', '--vfs', '3']);
  pf = await connectPf(emulator);
  nsid = await provisionVf(pf, 1, NS_BLOCKS);
  vf = await connectController(emulator, 1, 2);
  region = await vf.newRegion(4 << 20);
  queue = await vf.createQueuePair(1, 64);
  io = { controller: vf, queue, region, nsid };
});

test.after(async () => {
  await vf?.shutdown().catch(() => {});
  await pf?.controller.shutdown().catch(() => {});
  await emulator?.stop();
});

// --- bring-up ---------------------------------------------------------------

test('an offline VF cannot be enabled: CSTS.CFS, and the driver names the state', async () => {
  try {
    await connectController(emulator, 3);
    assert.unreachable('enabled an offline controller');
  } catch (error) {
    assert.instance(error, StorageError);
    assert.is((error as StorageError).code, 'ECONTROLLERFATAL');
    assert.match((error as StorageError).message, /wait-ready/);
  }
});

test('Identify Controller reports what the emulator implements', async () => {
  const id = await vf.identify(Cns.CTRL, 0);
  assert.is(id.getUint8(IDCTRL_MDTS_OFFSET), 6);
  assert.is(id.getUint32(IDCTRL_SGLS_OFFSET, true) & 3, 1);
  assert.is(id.getUint8(IDCTRL_VWC_OFFSET) & 1, 0, 'memory store has no volatile cache');
  assert.is(id.getUint16(IDCTRL_OACS_OFFSET, true), 0, 'a VF has no management commands');
  assert.is(vf.identity.cntlid, 1);
  assert.is(vf.identity.maxTransferBytes, 256 * 1024);
  const pfId = await pf.controller.identify(Cns.CTRL, 0);
  assert.is(pfId.getUint16(IDCTRL_OACS_OFFSET, true), 0x88, 'PF: namespace + virtualization management');
});

test('Identify Namespace, active list and descriptors (stable UUID)', async () => {
  const ns = await vf.identifyNamespace(nsid);
  assert.is(ns.nsze, BigInt(NS_BLOCKS));
  assert.is(ns.blockSizeBytes, BLOCK);
  assert.equal(await vf.activeNamespaces(), [nsid]);
  const descriptors = readNsIdDescriptors(await vf.identify(Cns.NS_DESCRIPTOR_LIST, nsid));
  const uuid = descriptors.find((d) => d.nidt === 3)!;
  assert.is(uuid.nid.length, 16);
  const again = readNsIdDescriptors(await vf.identify(Cns.NS_DESCRIPTOR_LIST, nsid)).find((d) => d.nidt === 3)!;
  assert.equal(Array.from(again.nid), Array.from(uuid.nid));
  const allocated = readNamespaceList(await pf.controller.identify(Cns.ALLOCATED_NS_LIST, 0));
  assert.ok(allocated.includes(nsid));
});

test('PF-only Identify CNS values are refused on a VF', async () => {
  for (const cns of [Cns.SECONDARY_CTRL_LIST, Cns.PRIMARY_CTRL_CAPS, Cns.ALLOCATED_NS_LIST]) {
    const result = await vf.adminTransfer({ opc: AdminOpcode.IDENTIFY, cdw10: cns });
    assert.is(statusOf(result), 'INVALID_FIELD+DNR', `CNS ${cns}`);
  }
  const secondaries = await pf.secondaryControllers();
  assert.is(secondaries.length, 3);
  assert.equal(secondaries[0], { scid: 1, pcid: 0, online: true, vfn: 1, nvq: 5, nvi: 2 });
  assert.is(secondaries[1]!.online, false);
});

// --- I/O ----------------------------------------------------------------------

test('write then read returns the bytes; FUA and Flush succeed', async () => {
  const out = region.alloc(2 * BLOCK);
  out.bytes.set(pattern(2 * BLOCK, 1));
  assert.is(statusOf(await rw(io, Write, 10, 2, out, { fua: true })), 'SUCCESS');
  const back = region.alloc(2 * BLOCK);
  assert.is(statusOf(await rw(io, Read, 10, 2, back)), 'SUCCESS');
  assert.equal(back.bytes, out.bytes);
  assert.is(statusOf(await vf.submit(queue, { opc: NvmOpcode.FLUSH, nsid })), 'SUCCESS');
  assert.is(statusOf(await vf.submit(queue, { opc: NvmOpcode.FLUSH, nsid: 0xffffffff })), 'SUCCESS');
  region.release(out);
  region.release(back);
});

test('a PRP list spanning list pages (chained) moves 256 KiB at an unaligned offset', async () => {
  const bytes = 64 * BLOCK;
  const data = region.alloc(bytes + BLOCK);
  const offset = 512; // PRP1 starts mid-page: 65 pages are touched
  data.bytes.set(pattern(bytes, 7), offset);
  // The list starts 2 entries before the end of its page, so it must chain.
  const lists = region.alloc(2 * BLOCK);
  const view = new DataView(lists.bytes.buffer, lists.bytes.byteOffset, lists.bytes.byteLength);
  const listStart = BLOCK - 16;
  const pages: number[] = [];
  for (let i = 1; i <= 64; i++) pages.push(data.iova + i * BLOCK);
  view.setBigUint64(listStart, BigInt(pages[0]!), true);
  view.setBigUint64(listStart + 8, BigInt(lists.iova + BLOCK), true); // chain pointer
  for (let i = 1; i < pages.length; i++) view.setBigUint64(BLOCK + (i - 1) * 8, BigInt(pages[i]!), true);
  const write = rwSqe({ opc: NvmOpcode.WRITE, cid: 0, nsid, slba: 100, nlb: 63, prp1: data.iova + offset, prp2: lists.iova + listStart });
  assert.is(statusOf(await vf.submit(queue, write)), 'SUCCESS');
  const back = region.alloc(bytes);
  const first = 4096;
  const readBack = await rw(io, Read, 100, 1, back);
  assert.is(statusOf(readBack), 'SUCCESS');
  assert.equal(back.bytes.subarray(0, first), data.bytes.subarray(offset, offset + first));
  // Whole range through the same chained list, into fresh memory.
  data.bytes.fill(0);
  const read = rwSqe({ opc: NvmOpcode.READ, cid: 0, nsid, slba: 100, nlb: 63, prp1: data.iova + offset, prp2: lists.iova + listStart });
  assert.is(statusOf(await vf.submit(queue, read)), 'SUCCESS');
  assert.equal(data.bytes.subarray(offset, offset + bytes), pattern(bytes, 7));
  for (const b of [data, lists, back]) region.release(b);
});

test('SGLs: data block, and a segment chain ending in a last segment', async () => {
  const a = region.alloc(BLOCK);
  const b = region.alloc(BLOCK);
  a.bytes.set(pattern(BLOCK, 21));
  b.bytes.set(pattern(BLOCK, 22));
  const single = rwSqe({ opc: NvmOpcode.WRITE, cid: 0, nsid, slba: 200, nlb: 0, psdt: 1, sgl1: { address: a.iova, length: BLOCK, type: SglType.DATA_BLOCK } });
  assert.is(statusOf(await vf.submit(queue, single)), 'SUCCESS');
  // Segment: [data a (2 KiB), segment -> last segment: [data a+2K (2 KiB), data b]]
  const descriptors = region.alloc(BLOCK);
  const dv = new DataView(descriptors.bytes.buffer, descriptors.bytes.byteOffset, BLOCK);
  const put = (at: number, address: number, length: number, type: number) => {
    dv.setBigUint64(at, BigInt(address), true);
    dv.setUint32(at + 8, length, true);
    dv.setUint8(at + 15, type << 4);
  };
  put(0, a.iova, 2048, SglType.DATA_BLOCK);
  put(16, descriptors.iova + 64, 32, SglType.LAST_SEGMENT);
  put(64, a.iova + 2048, 2048, SglType.DATA_BLOCK);
  put(80, b.iova, BLOCK, SglType.DATA_BLOCK);
  const chained = rwSqe({ opc: NvmOpcode.WRITE, cid: 0, nsid, slba: 201, nlb: 1, psdt: 1, sgl1: { address: descriptors.iova, length: 32, type: SglType.SEGMENT } });
  assert.is(statusOf(await vf.submit(queue, chained)), 'SUCCESS');
  const back = region.alloc(3 * BLOCK);
  assert.is(statusOf(await rw(io, Read, 200, 3, back)), 'SUCCESS');
  assert.equal(back.bytes.subarray(0, BLOCK), a.bytes);
  assert.equal(back.bytes.subarray(BLOCK, 2 * BLOCK), a.bytes);
  assert.equal(back.bytes.subarray(2 * BLOCK), b.bytes);
  // A segment whose lengths do not add up to the transfer is refused.
  put(80, b.iova, 1024, SglType.DATA_BLOCK);
  assert.is(statusOf(await vf.submit(queue, chained)), 'DATA_SGL_LENGTH_INVALID+DNR');
  for (const x of [a, b, descriptors, back]) region.release(x);
});

test('Compare matches and mismatches; Write Zeroes and Deallocate read back as zeroes', async () => {
  const data = region.alloc(BLOCK);
  data.bytes.set(pattern(BLOCK, 31));
  await rw(io, Write, 300, 1, data);
  assert.is(statusOf(await rw(io, NvmOpcode.COMPARE, 300, 1, data)), 'SUCCESS');
  data.bytes[100] ^= 0xff;
  assert.is(statusOf(await rw(io, NvmOpcode.COMPARE, 300, 1, data)), 'COMPARE_FAILURE');
  data.bytes.set(pattern(BLOCK, 32));
  await rw(io, Write, 301, 1, data);
  await rw(io, Write, 302, 1, data);
  const wz = { opc: NvmOpcode.WRITE_ZEROES, nsid, cdw10: 301, cdw11: 0, cdw12: 0 };
  assert.is(statusOf(await vf.submit(queue, wz)), 'SUCCESS');
  const ranges = region.alloc(BLOCK);
  writeDsmRange(new DataView(ranges.bytes.buffer, ranges.bytes.byteOffset, BLOCK), 0, { attributes: 0, nlb: 1, slba: 302 });
  const dsm = { opc: NvmOpcode.DATASET_MANAGEMENT, nsid, prp1: ranges.iova, cdw10: 0, cdw11: 1 << 2 };
  assert.is(statusOf(await vf.submit(queue, dsm)), 'SUCCESS');
  const back = region.alloc(3 * BLOCK);
  back.bytes.fill(0xee);
  await rw(io, Read, 300, 3, back);
  assert.ok(back.bytes.subarray(BLOCK).every((x) => x === 0), 'zeroed and deallocated blocks read as zeroes');
  assert.ok(back.bytes.subarray(0, BLOCK).some((x) => x !== 0), 'the neighbour is untouched');
  for (const x of [data, ranges, back]) region.release(x);
});

test('more commands than queue entries: the queue pair parks them, all complete', async () => {
  const buffer = region.alloc(BLOCK);
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => rw(io, Read, i % NS_BLOCKS, 1, buffer)));
  assert.ok(results.every((r) => statusOf(r) === 'SUCCESS'));
  region.release(buffer);
});

// --- rejections ---------------------------------------------------------------

test('I/O rejections carry the exact status', async () => {
  const buffer = region.alloc(2 * BLOCK);
  assert.is(statusOf(await vf.submit(queue, { opc: 0x7e, nsid })), 'INVALID_OPCODE+DNR');
  assert.is(statusOf(await rw({ ...io, nsid: 99 }, Read, 0, 1, buffer)), 'INVALID_NAMESPACE_OR_FORMAT+DNR');
  assert.is(statusOf(await rw({ ...io, nsid: 0 }, Read, 0, 1, buffer)), 'INVALID_NAMESPACE_OR_FORMAT+DNR');
  assert.is(statusOf(await rw(io, Read, NS_BLOCKS - 1, 2, buffer)), 'LBA_OUT_OF_RANGE+DNR');
  assert.is(statusOf(await rw(io, Read, 2 ** 40, 1, buffer)), 'LBA_OUT_OF_RANGE+DNR');
  const overMdts = rwSqe({ opc: NvmOpcode.READ, cid: 0, nsid, slba: 0, nlb: 64, prp1: buffer.iova });
  assert.is(statusOf(await vf.submit(queue, overMdts)), 'INVALID_FIELD+DNR');
  const outside = rwSqe({ opc: NvmOpcode.READ, cid: 0, nsid, slba: 0, nlb: 0, prp1: 0x1000 });
  assert.is(statusOf(await vf.submit(queue, outside)), 'DATA_TRANSFER_ERROR+DNR');
  const straddle = rwSqe({ opc: NvmOpcode.READ, cid: 0, nsid, slba: 0, nlb: 1, prp1: region.iova + region.lengthBytes - BLOCK, prp2: region.iova + region.lengthBytes });
  assert.is(statusOf(await vf.submit(queue, straddle)), 'DATA_TRANSFER_ERROR+DNR');
  const unalignedPrp2 = rwSqe({ opc: NvmOpcode.READ, cid: 0, nsid, slba: 0, nlb: 1, prp1: buffer.iova, prp2: buffer.iova + BLOCK + 8 });
  assert.is(statusOf(await vf.submit(queue, unalignedPrp2)), 'PRP_OFFSET_INVALID+DNR');
  const fused = { ...rwSqe({ opc: NvmOpcode.READ, cid: 0, nsid, slba: 0, nlb: 0, prp1: buffer.iova }), fuse: 1 };
  assert.is(statusOf(await vf.submit(queue, fused)), 'INVALID_FIELD+DNR');
  region.release(buffer);
});

test('admin rejections: queue ids, sizes, missing CQ, deletion order, features, logs', async () => {
  const ring = region.alloc(BLOCK);
  const cq = (qid: number, qsize: number, prp1 = ring.iova, extra = {}) => vf.adminCommand({ ...createIoCqSqe({ cid: 0, prp1, qid, qsize, pc: 1 }), ...extra });
  assert.is(statusOf(await cq(0, 15)), 'INVALID_QUEUE_IDENTIFIER+DNR');
  assert.is(statusOf(await cq(1, 15)), 'INVALID_QUEUE_IDENTIFIER+DNR', 'queue 1 exists');
  assert.is(statusOf(await cq(9, 15)), 'INVALID_QUEUE_IDENTIFIER+DNR', 'beyond the granted queues');
  assert.is(statusOf(await cq(2, 0)), 'INVALID_QUEUE_SIZE+DNR');
  assert.is(statusOf(await cq(2, 4096)), 'INVALID_QUEUE_SIZE+DNR');
  assert.is(statusOf(await cq(2, 15, 0x2000)), 'DATA_TRANSFER_ERROR+DNR');
  assert.is(statusOf(await cq(2, 15, ring.iova + 64)), 'PRP_OFFSET_INVALID+DNR');
  assert.is(statusOf(await vf.adminCommand(createIoCqSqe({ cid: 0, prp1: ring.iova, qid: 2, qsize: 15, pc: 1, ien: 1, iv: 7 }))), 'INVALID_INTERRUPT_VECTOR+DNR');
  const sq = createIoSqSqe({ cid: 0, prp1: ring.iova, qid: 2, qsize: 15, pc: 1, cqid: 2 });
  assert.is(statusOf(await vf.adminCommand(sq)), 'COMPLETION_QUEUE_INVALID+DNR');
  assert.is(statusOf(await vf.adminCommand(deleteIoQueueSqe({ opc: AdminOpcode.DELETE_IO_CQ, cid: 0, qid: 1 }))), 'INVALID_QUEUE_DELETION+DNR');
  assert.is(statusOf(await vf.adminCommand(deleteIoQueueSqe({ opc: AdminOpcode.DELETE_IO_SQ, cid: 0, qid: 5 }))), 'INVALID_QUEUE_IDENTIFIER+DNR');
  assert.is(statusOf(await vf.adminCommand({ opc: 0x7f })), 'INVALID_OPCODE+DNR');
  assert.is(statusOf(await vf.adminCommand({ opc: AdminOpcode.NAMESPACE_MANAGEMENT })), 'INVALID_OPCODE+DNR', 'PF only');
  assert.is(statusOf(await vf.adminCommand({ opc: 0xc0, nsid, cdw10: 10 })), 'INVALID_OPCODE+DNR', 'vendor: PF only');
  assert.is(statusOf(await vf.adminCommand(setFeaturesSqe({ cid: 0, fid: FeatureId.NUMBER_OF_QUEUES, cdw11: 0 }))), 'COMMAND_SEQUENCE_ERROR+DNR', 'after queues exist');
  assert.is(statusOf(await vf.adminCommand(setFeaturesSqe({ cid: 0, fid: 0x7f }))), 'INVALID_FIELD+DNR');
  const log = await vf.adminTransfer({ ...getLogPageSqe({ cid: 0, prp1: 0, lid: 0x7f, numd: 127 }) });
  assert.is(statusOf(log), 'INVALID_LOG_PAGE+DNR');
  region.release(ring);
});

test('Get/Set Features round trip', async () => {
  const set = await vf.adminCommand(setFeaturesSqe({ cid: 0, fid: FeatureId.INTERRUPT_COALESCING, cdw11: 0x0a03 }));
  assert.is(statusOf(set), 'SUCCESS');
  const get = await vf.adminCommand(getFeaturesSqe({ cid: 0, fid: FeatureId.INTERRUPT_COALESCING }));
  assert.is(get.dw0, 0x0a03);
  const queues = await vf.adminCommand(getFeaturesSqe({ cid: 0, fid: FeatureId.NUMBER_OF_QUEUES }));
  assert.is(queues.dw0, 0x00010001, 'two I/O queue pairs granted, zero-based');
  const vwc = await vf.adminCommand(setFeaturesSqe({ cid: 0, fid: FeatureId.VOLATILE_WRITE_CACHE, cdw11: 1 }));
  assert.is(statusOf(vwc), 'INVALID_FIELD+DNR', 'no volatile cache to switch on the memory store');
});

test('Error Information and SMART logs count what happened', async () => {
  const errorLog = await vf.adminTransfer(getLogPageSqe({ cid: 0, prp1: 0, lid: LogPageId.ERROR, numd: 1023 }), { readBytes: 4096 });
  assert.is(statusOf(errorLog), 'SUCCESS');
  const newest = readErrorLogEntry(new DataView(errorLog.data.buffer), 0);
  assert.ok(newest.errorCount > 10n, `errors counted: ${newest.errorCount}`);
  const smart = await vf.adminTransfer(getLogPageSqe({ cid: 0, prp1: 0, lid: LogPageId.SMART_HEALTH, numd: 127 }), { readBytes: 512 });
  const log = readSmartHealthLog(new DataView(smart.data.buffer));
  assert.ok(log.hostWriteCommands >= 5n, `writes ${log.hostWriteCommands}`);
  assert.ok(log.hostReadCommands >= 200n, `reads ${log.hostReadCommands}`);
  assert.ok(log.dataUnitsWritten >= 1n);
  assert.is(log.numErrorLogEntries, newest.errorCount);
});

test('doorbell values out of range are ignored and reported by an async event', async () => {
  const aer = vf.adminCommand({ opc: AdminOpcode.ASYNC_EVENT_REQUEST }, 0);
  const doorbells = new Uint32Array(vf.transport.bar);
  Atomics.store(doorbells, (0x1000 + 8 * 1) / 4, 5000); // SQ 1 tail past the ring
  vf.transport.notify();
  const event = await aer;
  assert.is(statusOf(event), 'SUCCESS');
  assert.is(event.dw0 & 7, 0, 'error event');
  assert.is((event.dw0 >> 8) & 0xff, 1, 'invalid doorbell write value');
  // Restore a valid tail (the last one the queue pair wrote) and keep working.
  Atomics.store(doorbells, (0x1000 + 8 * 1) / 4, (queue as unknown as { sqTail: number }).sqTail);
  const buffer = region.alloc(BLOCK);
  assert.is(statusOf(await rw(io, Read, 0, 1, buffer)), 'SUCCESS');
  region.release(buffer);
  await vf.adminTransfer(getLogPageSqe({ cid: 0, prp1: 0, lid: LogPageId.ERROR, numd: 15 }), { readBytes: 64 });
});

// --- SR-IOV management ----------------------------------------------------------

test('Virtualization Management follows the resource rules', async () => {
  const virt = (act: number, cntlid: number, rt = 0, nr = 0) => pf.controller.adminCommand(virtMgmtSqe({ cid: 0, act, cntlid, rt, nr }));
  assert.is(statusOf(await virt(VirtMgmtAction.SECONDARY_ONLINE, 2)), 'INVALID_SECONDARY_CONTROLLER_STATE+DNR', 'no resources yet');
  assert.is(statusOf(await virt(VirtMgmtAction.SECONDARY_ASSIGN, 2, VirtResourceType.VQ, 100)), 'INVALID_NUMBER_OF_CONTROLLER_RESOURCES+DNR');
  assert.is(statusOf(await virt(VirtMgmtAction.SECONDARY_ASSIGN, 1, VirtResourceType.VQ, 2)), 'INVALID_SECONDARY_CONTROLLER_STATE+DNR', 'VF 1 is online');
  assert.is(statusOf(await virt(VirtMgmtAction.SECONDARY_ASSIGN, 9, VirtResourceType.VQ, 2)), 'INVALID_CONTROLLER_IDENTIFIER+DNR');
  assert.is(statusOf(await virt(VirtMgmtAction.SECONDARY_ASSIGN, 2, 5, 2)), 'INVALID_RESOURCE_IDENTIFIER+DNR');
  assert.is(statusOf(await virt(VirtMgmtAction.PRIMARY_FLEXIBLE_ALLOCATION, 0, 0, 1)), 'INVALID_FIELD+DNR');
  await pf.bringOnline(2, 2, 1);
  const entry = (await pf.secondaryControllers()).find((e) => e.scid === 2)!;
  assert.equal({ online: entry.online, nvq: entry.nvq, nvi: entry.nvi }, { online: true, nvq: 2, nvi: 1 });
  await pf.takeOffline(2);
  const after = (await pf.secondaryControllers()).find((e) => e.scid === 2)!;
  assert.equal({ online: after.online, nvq: after.nvq, nvi: after.nvi }, { online: false, nvq: 0, nvi: 0 });
});

test('Namespace Management and Attachment: private namespaces, attach notices, resize, limits', async () => {
  const second = await pf.createNamespace(256, 512);
  assert.ok(second > nsid);
  try {
    await pf.attach(nsid, 2);
    assert.unreachable('attached a private namespace to a second controller');
  } catch (error) {
    assert.is((error as StorageError).code, 'NAMESPACE_IS_PRIVATE');
  }
  try {
    await pf.attach(nsid, 1);
    assert.unreachable('attached twice');
  } catch (error) {
    assert.is((error as StorageError).code, 'NAMESPACE_ALREADY_ATTACHED');
  }
  // The VF hears about a namespace it gains, with the changed list.
  const aer = vf.adminCommand({ opc: AdminOpcode.ASYNC_EVENT_REQUEST }, 0);
  await pf.attach(second, 1);
  const notice = await aer;
  assert.is(notice.dw0 & 7, 2, 'notice');
  assert.is((notice.dw0 >> 16) & 0xff, LogPageId.CHANGED_NS_LIST);
  const changed = await vf.adminTransfer(getLogPageSqe({ cid: 0, prp1: 0, lid: LogPageId.CHANGED_NS_LIST, numd: 1023 }), { readBytes: 4096 });
  assert.equal(readNamespaceList(new DataView(changed.data.buffer)), [second]);
  assert.equal(await vf.activeNamespaces(), [nsid, second]);
  assert.is((await vf.identifyNamespace(second)).blockSizeBytes, 512);
  // Resize (vendor command) grows the namespace as the VF sees it.
  await pf.resizeNamespace(second, 512);
  assert.is((await vf.identifyNamespace(second)).nsze, 512n);
  await pf.detach(second, 1);
  assert.equal(await vf.activeNamespaces(), [nsid]);
  await pf.deleteNamespace(second);
  try {
    await pf.deleteNamespace(second);
    assert.unreachable('deleted twice');
  } catch (error) {
    assert.instance(error, StorageError);
  }
  await pf.setLimits(3, 1000, 4096);
  assert.equal(await pf.getLimits(3), { iops: 1000, kibPerSecond: 4096 });
  await pf.setLimits(3, 0, 0);
});

test('a read-only VSIC (vendor C3h): writes, write zeroes and deallocate fail NS_WRITE_PROTECTED; reads work', async () => {
  await pf.setReadOnly(1, true);
  const buffer = region.alloc(BLOCK);
  assert.is(statusOf(await rw(io, Write, 0, 1, buffer)), 'NS_WRITE_PROTECTED+DNR');
  assert.is(statusOf(await vf.submit(queue, { opc: NvmOpcode.WRITE_ZEROES, nsid, cdw10: 0 })), 'NS_WRITE_PROTECTED+DNR');
  assert.is(statusOf(await vf.submit(queue, { opc: NvmOpcode.DATASET_MANAGEMENT, nsid, prp1: buffer.iova, cdw11: 4 })), 'NS_WRITE_PROTECTED+DNR');
  assert.is(statusOf(await rw(io, Read, 0, 1, buffer)), 'SUCCESS');
  await pf.setReadOnly(1, false);
  assert.is(statusOf(await rw(io, Write, 0, 1, buffer)), 'SUCCESS');
  region.release(buffer);
});

test('one host per controller: a second connection is refused with EBUSY', async () => {
  const other = await connectController(emulator, 0, 1).catch((e) => e);
  assert.instance(other, StorageError, 'a second host on the PF is refused');
  assert.is((other as StorageError).code, 'EBUSY');
});

test.run();
