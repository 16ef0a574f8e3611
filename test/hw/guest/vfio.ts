/**
 * The guest suite (runs inside the VM rig, as root, with the emulated SR-IOV
 * NVMe controller): VFs set up the operator's way, then driven through
 * offpath's VfioTransport and NvmeController; data round trips of every
 * shape, interrupts, isolation between VFs, a cross-check of what the
 * user-space driver wrote through the kernel's own nvme driver, descriptors
 * handed over by another process, and the Linux PF driver. Writes
 * manifest.json (what should be in which backing image) to the share for the
 * host to verify, and prints "N passed, N failed".
 *
 *   node --import tsx test/hw/run.ts node --import tsx test/hw/guest/vfio.ts [name filter...]
 *
 * Tests run in order and build on each other (a filter keeps the setup test
 * but not the others a test may rely on). Each is bounded by TEST_TIMEOUT_MS.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import type { NvmeController } from '../../../libstorage/driver/controller.js';
import { Registers } from '../../../libstorage/driver/registers.js';
import { StorageError } from '../../../libstorage/errors.js';
import { native, packageRoot, READABLE } from '../../../libstorage/native.js';
import { Cns, IDNS_DLFEAT_OFFSET, IdctrlOncs } from '../../../libstorage/nvme/identify.js';
import { NvmOpcode, decodeCap, writeSqe } from '../../../libstorage/nvme/spec.js';
import { IovaAllocator } from '../../../libstorage/transport/vfio/iova.js';
import { VfioTransport, receiveVfioHandover, vfioGroupPath } from '../../../libstorage/transport/vfio/vfio-transport.js';
import type { Vsa } from '../../../libstorage/vsa.js';
import { Read, Write, pattern, rw, statusOf } from '../../helpers/nvme.js';
import { LinuxNvmeDevice } from '../../../controlplane/pf/linux-device.js';
import { openVfio } from './open-vfio.js';
import { attachNamespace, bindDriver, blockDeviceOf, bringOnline, enableVfs, findPf, secondaryControllers, type Pf } from './sriov.js';

// ---- a minimal harness: in order, each test timed, one summary line.
const tests: Array<{ name: string; fn: () => Promise<void> | void }> = [];
const TEST_TIMEOUT_MS = 60_000;
const test = (name: string, fn: () => Promise<void> | void) => tests.push({ name, fn });

/** What the host should find in the backing images after the VM exits. */
const manifest: Array<{ nsid: number; offset: number; length: number; sha256: string }> = [];
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/**
 * Byte equality with the first difference in the message. (Every assertion
 * here carries its own message: without one node's assert re-parses the
 * source to describe the expression, which takes seconds to minutes under TCG.)
 */
function sameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.equals(b)) return;
  let at = 0;
  while (at < Math.min(a.length, b.length) && a[at] === b[at]) at++;
  assert.fail(`${what}: ${a.length} bytes vs ${b.length} expected, first difference at byte ${at} (${a[at]} vs ${b[at]})`);
}

// Resources: VQ 4 (admin + 3 I/O pairs), VI 2 (admin + 1 vector) per VF.
const VF_QUEUES = 4;
const VF_INTERRUPTS = 2;

interface Vf {
  address: string;
  cntlid: number;
  nsid: number;
  interruptFd?: number;
  vsa?: Vsa;
  controller?: NvmeController;
  transport?: VfioTransport;
}
let pf: Pf;
const vfs: Vf[] = [];

test('SR-IOV: two VFs with queues and vectors, online, a namespace each, bound to vfio-pci', async () => {
  pf = await findPf();
  const addresses = enableVfs(pf, 2);
  const secondaries = secondaryControllers(pf);
  for (let i = 0; i < 2; i++) {
    const secondary = secondaries.find((entry) => entry.vfn === i + 1);
    assert.ok(secondary, `secondary controller of VF ${i + 1}`);
    bringOnline(pf, secondary.scid, VF_QUEUES, VF_INTERRUPTS);
    // VF1 gets nsid 1 (512-byte blocks), VF2 nsid 2 (4096-byte blocks).
    attachNamespace(pf, i + 1, secondary.scid);
    await bindDriver(addresses[i]!, 'vfio-pci');
    vfs.push({ address: addresses[i]!, cntlid: secondary.scid, nsid: i + 1 });
  }
  const after = secondaryControllers(pf);
  for (const vf of vfs) {
    const entry = after.find((e) => e.scid === vf.cntlid)!;
    assert.deepEqual([entry.online, entry.queues, entry.interrupts], [true, VF_QUEUES, VF_INTERRUPTS]);
  }
  assert.notEqual(vfioGroupPath(vfs[0]!.address), vfioGroupPath(vfs[1]!.address), 'each VF in its own IOMMU group');
});

test('VFIO: BAR0 mapped, bus master on, IOVA ranges honoured, CAP sane', () => {
  const transport = VfioTransport.open({ device: vfs[0]!.address });
  try {
    const { PCI_CONFIG_REGION_INDEX } = native.vfioConstants;
    const command = native.vfioRegionRead(transport.deviceFd, PCI_CONFIG_REGION_INDEX, 4, 2).readUInt16LE(0);
    assert.equal(command & 0x6, 0x6, 'memory space + bus master enable');
    const vendor = native.vfioRegionRead(transport.deviceFd, PCI_CONFIG_REGION_INDEX, 0, 4).readUInt32LE(0);
    console.log(`    config: vendor:device ${(vendor & 0xffff).toString(16)}:${(vendor >>> 16).toString(16)}, BAR0 ${transport.bar.byteLength} bytes`);
    const info = native.vfioIommuInfo(transport.containerFd);
    assert.ok(info.iovaRanges && info.iovaRanges.length > 0, 'the kernel reports IOVA ranges');
    console.log(`    IOVA ranges: ${info.iovaRanges.map((r) => `${r.start.toString(16)}-${r.end.toString(16)}`).join(', ')}; page sizes ${info.pageSizes.toString(16)}`);
    // No handed-out IOVA may fall outside a reported range (the MSI window is a hole).
    const inRange = (iova: number, bytes: number) => info.iovaRanges!.some((r) => BigInt(iova) >= r.start && BigInt(iova + bytes - 1) <= r.end);
    const probe = new IovaAllocator(info.iovaRanges);
    for (const span of probe.spans) assert.ok(inRange(span[0], span[1] - span[0]), `allocator span ${span[0].toString(16)}-${span[1].toString(16)} inside a reported range`);
    const cap = decodeCap(new Registers(transport.bar).cap);
    console.log(`    CAP: MQES ${cap.mqes}, DSTRD ${cap.dstrd}, MPSMIN ${cap.mpsmin}, TO ${cap.to}`);
    assert.ok(cap.mqes >= 63, `MQES ${cap.mqes}`);
    // Map and unmap a region by hand: the container accepts it at an allocated IOVA.
    const region = native.dmaAlloc(1 << 20, { hugepage: 'none' });
    const iova = transport.iova.allocate(region.lengthBytes);
    assert.ok(inRange(iova, region.lengthBytes), `IOVA ${iova.toString(16)} inside a reported range`);
    native.vfioMapDma(transport.containerFd, region.buffer, iova);
    assert.throws(() => native.vfioMapDma(transport.containerFd, region.buffer, iova), (e: StorageError) => e.code === 'EEXIST');
    assert.equal(native.vfioUnmapDma(transport.containerFd, iova, region.lengthBytes), region.lengthBytes);
    native.munmap(region.buffer);
    native.closeFd(region.fd);
    assert.throws(() => native.vfioOpenGroup('/dev/vfio/none'), (e: StorageError) => e.code === 'ENOENT');
  } finally {
    transport.close();
  }
});

test('bring-up through VFIO: identify, queues granted, only its namespace active', async () => {
  const vf = vfs[0]!;
  const opened = await openVfio({ device: vf.address });
  Object.assign(vf, opened);
  const { controller, vsa, interruptFd } = opened;
  assert.ok(interruptFd >= 0, 'the I/O CQ was created with an MSI-X vector');
  console.log(`    ${controller.identity.model.trim()} sn ${controller.identity.serial.trim()} cntlid ${controller.identity.cntlid}, MDTS ${controller.identity.maxTransferBytes}, ONCS ${controller.identity.oncs.toString(16)}, SGL ${controller.identity.sglSupported}, ${controller.grantedQueuePairs} I/O pairs`);
  assert.equal(controller.identity.cntlid, vf.cntlid);
  assert.equal(controller.grantedQueuePairs, VF_QUEUES - 1);
  assert.deepEqual(await controller.activeNamespaces(), [vf.nsid]);
  assert.equal(vsa.blockSize, 512);
  assert.equal(vsa.size, 64 << 20);
});

test('round trips from 1 block to 3 MDTS, registered and plain buffers', async () => {
  const { vsa, controller } = vfs[0]!;
  const block = vsa!.blockSize;
  const mdtsBlocks = controller!.identity.maxTransferBytes / block;
  const sizes = [1, 2, 3, 7, 8, 9, 63, 64, 65, 255, 256, 257, mdtsBlocks - 1, mdtsBlocks, mdtsBlocks + 1, 3 * mdtsBlocks + 3];
  let offset = 0;
  for (const blocks of sizes) {
    const bytes = blocks * block;
    const data = pattern(bytes, blocks);
    const dma = vsa!.alloc(bytes);
    dma.set(data);
    await vsa!.write(offset, dma);
    const back = Buffer.alloc(bytes);
    await vsa!.read(offset, back);
    sameBytes(back, data, `${blocks} blocks: registered out, plain in`);
    const plain = Buffer.from(pattern(bytes, blocks + 1000));
    await vsa!.write(offset, plain);
    dma.fill(0);
    await vsa!.read(offset, dma);
    sameBytes(dma.subarray(0, bytes), plain, `${blocks} blocks: plain out, registered in`);
    vsa!.free(dma);
    offset += bytes;
  }
});

test('unaligned buffers and scatter-gather: writev/readv over PRP, SGL and bounce paths', async () => {
  const vsa = vfs[0]!.vsa!;
  const block = vsa.blockSize;
  const total = 96 * block;
  const data = pattern(total, 77);
  const dma = vsa.alloc(total + 4096);
  const segments: Uint8Array[] = [];
  let used = 0;
  let position = 0;
  for (let i = 0; used < total; i++) {
    const length = Math.min(total - used, [100, 4096, 513, 8192, 12, 3000][i % 6]!);
    const skew = i % 2 ? 3 : 0;
    const segment = i % 3 === 0 ? Buffer.alloc(length) : dma.subarray(position + skew, position + skew + length);
    position += skew + length;
    segment.set(data.subarray(used, used + length));
    segments.push(segment);
    used += length;
  }
  const base = 8 << 20;
  const ranges = [
    { offset: base + 100 * block, length: 32 * block },
    { offset: base + 3000 * block, length: 40 * block },
    { offset: base + 50 * block, length: 24 * block },
  ];
  await vsa.writev(segments, ranges);
  const parts = ranges.map((r) => Buffer.alloc(r.length));
  for (let i = 0; i < ranges.length; i++) await vsa.read(ranges[i]!.offset, parts[i]!);
  sameBytes(Buffer.concat(parts), data, 'each range read back alone');
  const aligned = vsa.alloc(total);
  await vsa.readv([aligned.subarray(0, 4096), aligned.subarray(4096, 20480), aligned.subarray(20480)], ranges);
  sameBytes(aligned.subarray(0, total), data, 'page-aligned pieces (PRP)');
  const odd = vsa.alloc(total + 4096);
  const oddPieces = [odd.subarray(1, 5001), odd.subarray(6000, 6000 + total - 5000)];
  await vsa.readv(oddPieces, ranges);
  sameBytes(Buffer.concat(oddPieces), data, 'odd pieces (SGL or bounce)');
  for (const x of [dma, aligned, odd]) vsa.free(x);
});

test('deep queue: 2000 concurrent requests, FUA writes, flush', async () => {
  const vsa = vfs[0]!.vsa!;
  const block = vsa.blockSize;
  const base = 16 << 20;
  const count = 2000;
  const writes = Array.from({ length: count }, (_, i) => Buffer.from(pattern(block, 5000 + i)));
  await Promise.all(writes.map((data, i) => vsa.write(base + i * block, data, { fua: i % 7 === 0 })));
  await vsa.flush();
  const reads = Array.from({ length: count }, () => Buffer.alloc(block));
  await Promise.all(reads.map((buffer, i) => vsa.read(base + i * block, buffer)));
  for (let i = 0; i < count; i++) sameBytes(reads[i]!, writes[i]!, `block ${i}`);
  assert.equal(vsa.outstanding, 0);
});

test('write-zeroes reads back zeroes; trim leaves each block old or zero (per DLFEAT); neighbours untouched', async () => {
  const { vsa, controller, nsid } = vfs[0]!;
  const oncs = controller!.identity.oncs;
  const both = IdctrlOncs.WRITE_ZEROES | IdctrlOncs.DATASET_MANAGEMENT;
  assert.equal(oncs & both, both, 'the emulated controller offers Write Zeroes and Dataset Management');
  const block = vsa!.blockSize;
  const base = 24 << 20;
  const blocks = 32;
  const data = Buffer.from(pattern(blocks * block, 5));
  await vsa!.write(base, data);
  await vsa!.writeZeroes(base + 5 * block, 2 * block, { fua: true });
  // Deallocate is advisory: a trimmed block reads as its old data or, when
  // DLFEAT says so, as zeroes; never anything else.
  await vsa!.trim(base + 8 * block, 16 * block);
  const dlfeat = (await controller!.identify(Cns.NS, nsid)).getUint8(IDNS_DLFEAT_OFFSET);
  const back = Buffer.alloc(blocks * block);
  await vsa!.read(base, back);
  const zero = Buffer.alloc(block);
  let trimmedZero = 0;
  for (let i = 0; i < blocks; i++) {
    const got = back.subarray(i * block, (i + 1) * block);
    const old = data.subarray(i * block, (i + 1) * block);
    if (i === 5 || i === 6) sameBytes(got, zero, `block ${i} after Write Zeroes`);
    else if (i >= 8 && i < 24) {
      if (got.equals(zero) && (dlfeat & 7) === 1) trimmedZero++;
      else sameBytes(got, old, `trimmed block ${i} (DLFEAT ${dlfeat}): neither old data nor zeroes`);
    } else sameBytes(got, old, `untouched block ${i}`);
  }
  console.log(`    DLFEAT ${dlfeat}; ${trimmedZero} of 16 trimmed blocks read back as zeroes`);
});

test('MSI-X: a CQ created with interrupts signals its vector\'s eventfd', async () => {
  const { controller, transport, nsid } = vfs[0]!;
  // Vector 1, the VSA queue's: no admin traffic on it (the admin CQ uses
  // vector 0), and the VSA is idle, so every signal now comes from this CQ.
  const vector = 1;
  const fd = await transport!.interruptFd(vector);
  const qid = controller!.allocateQueueId();
  const queue = await controller!.createQueuePair(qid, 16, { interruptVector: vector });
  try {
    native.eventfdRead(fd); // whatever the VSA's earlier completions left
    let status = -1;
    queue.submit((view, offset, cid) => writeSqe(view, offset, { opc: NvmOpcode.FLUSH, cid, nsid }), (s) => (status = s));
    queue.ring();
    // Never poll the CQ before the eventfd says so: the completion must arrive through the interrupt.
    const deadline = Date.now() + 5000;
    let wakeups = 0;
    for (;;) {
      const ready = native.pollFd(fd, READABLE, Math.max(0, deadline - Date.now()));
      assert.equal(ready & READABLE, READABLE, `the eventfd fired (after ${wakeups} wake-ups)`);
      wakeups += native.eventfdRead(fd) > 0 ? 1 : 0;
      if (queue.reap() > 0) break;
    }
    assert.ok(wakeups >= 1, 'the eventfd counted the interrupt');
    assert.equal(status, 0, 'Flush completed');
  } finally {
    await controller!.deleteQueuePair(queue);
  }
});

test('second VF (4096-byte blocks): round trips; the VFs cannot see each other\'s namespaces or data', async () => {
  const vf1 = vfs[0]!;
  const vf2 = vfs[1]!;
  Object.assign(vf2, await openVfio({ device: vf2.address }));
  assert.equal(vf2.vsa!.blockSize, 4096);
  assert.deepEqual(await vf2.controller!.activeNamespaces(), [2]);
  assert.deepEqual(await vf1.controller!.activeNamespaces(), [1]);
  for (const blocks of [1, 2, 127, 128, 129, 300]) {
    const data = Buffer.from(pattern(blocks * 4096, 900 + blocks));
    await vf2.vsa!.write(blocks * 4096, data);
    const back = Buffer.alloc(data.length);
    await vf2.vsa!.read(blocks * 4096, back);
    sameBytes(back, data, `${blocks} blocks`);
  }
  // Same LBAs, different data on each VF.
  const one = Buffer.from(pattern(8192, 1));
  const two = Buffer.from(pattern(8192, 2));
  await vf1.vsa!.write(0, one);
  await vf2.vsa!.write(0, two);
  const back1 = Buffer.alloc(8192);
  const back2 = Buffer.alloc(8192);
  await vf1.vsa!.read(0, back1);
  await vf2.vsa!.read(0, back2);
  sameBytes(back1, one, 'VF1 block 0');
  sameBytes(back2, two, 'VF2 block 0');
  // VF1 naming VF2's namespace directly: refused by the device, no data moves.
  const qid = vf1.controller!.allocateQueueId();
  const queue = await vf1.controller!.createQueuePair(qid, 8);
  const region = await vf1.controller!.newRegion(64 * 1024);
  const buffer = region.alloc(4096);
  buffer.bytes.fill(0xee);
  try {
    const read = await rw({ controller: vf1.controller!, queue, region, nsid: 2 }, Read, 0, 1, buffer);
    assert.ok(['INVALID_NAMESPACE_OR_FORMAT+DNR', 'INVALID_FIELD+DNR'].includes(statusOf(read)), `read of nsid 2 via VF1: ${statusOf(read)}`);
    assert.ok(buffer.bytes.every((x) => x === 0xee), 'nothing was transferred');
    const write = await rw({ controller: vf1.controller!, queue, region, nsid: 2 }, Write, 0, 1, buffer);
    assert.notEqual(statusOf(write), 'SUCCESS');
    const idns = await vf1.controller!.identifyNamespace(2).catch(() => undefined);
    assert.ok(!idns || idns.nsze === 0n, 'an inactive namespace identifies as empty');
  } finally {
    await vf1.controller!.deleteQueuePair(queue);
  }
  await vf2.vsa!.read(0, back2);
  sameBytes(back2, two, "VF2's data untouched");
});

test('cross-check: what VFIO wrote, the kernel nvme driver reads back (after close and FLR)', async () => {
  const vf1 = vfs[0]!;
  const vf2 = vfs[1]!;
  const offset = 40 << 20;
  const length = 1 << 20;
  const data1 = Buffer.from(pattern(length, 4242));
  const data2 = Buffer.from(pattern(length, 4343));
  await vf1.vsa!.write(offset, data1, { fua: true });
  await vf2.vsa!.write(offset, data2, { fua: true });
  await vf1.vsa!.close();
  await vf2.vsa!.close();
  manifest.push({ nsid: 1, offset, length, sha256: sha256(data1) });
  manifest.push({ nsid: 2, offset, length, sha256: sha256(data2) });
  await bindDriver(vf1.address, 'nvme');
  const device = await blockDeviceOf(vf1.address, 1);
  const fd = openSync(device, 'r');
  try {
    const back = Buffer.alloc(length);
    assert.equal(readSync(fd, back, 0, length, offset), length);
    sameBytes(back, data1, `${device} returns the pattern written through VFIO`);
    console.log(`    ${device} (kernel nvme on ${vf1.address}) matches`);
  } finally {
    closeSync(fd);
  }
});

test('handover: a VF opened by another process (the daemon\'s role) is driven here through the passed descriptors', async () => {
  // A separate process opens the container, group and device and sets the
  // IOMMU, sends the three fds over a SOCK_SEQPACKET connection and exits;
  // this process maps its own memory into that container and drives the VF.
  const vf2 = vfs[1]!;
  const socketPath = join(tmpdir(), 'offpath-hw-handover.sock');
  const listenFd = native.seqpacketListen(socketPath);
  try {
    const daemon = `
      const addon = require(process.argv[1]);
      const [, , address, group, socketPath] = process.argv;
      const container = addon.vfioOpenContainer();
      const groupFd = addon.vfioOpenGroup(group);
      addon.vfioGroupSetContainer(groupFd, container);
      addon.vfioSetIommu(container);
      const device = addon.vfioGetDeviceFd(groupFd, address);
      const connection = addon.seqpacketConnect(socketPath);
      if (addon.seqpacketSend(connection, Buffer.from(JSON.stringify({ device: address })), [device, container, groupFd]) === null) process.exit(3);
    `;
    const addonPath = join(packageRoot(), 'build', 'addon', 'Release', 'offpath.node');
    const child = spawnSync(process.execPath, ['-e', daemon, addonPath, vf2.address, vfioGroupPath(vf2.address), socketPath], { encoding: 'utf8' });
    assert.equal(child.status, 0, `the daemon stand-in failed: ${child.stderr}`);
    assert.equal(native.pollFd(listenFd, READABLE, 5000), READABLE, 'a connection is pending');
    const handover = receiveVfioHandover(native.seqpacketAccept(listenFd)!);
    assert.equal(handover.device, vf2.address);
    assert.ok(handover.groupFd !== undefined, 'three descriptors arrived');
    const { vsa, controller } = await openVfio(handover);
    try {
      assert.equal(controller.identity.cntlid, vf2.cntlid);
      const back = Buffer.alloc(1 << 20);
      await vsa.read(40 << 20, back);
      sameBytes(back, pattern(1 << 20, 4343), 'the pattern VF2 wrote before, read through the handed-over VF');
      const fresh = Buffer.from(pattern(64 * 1024, 4444));
      await vsa.write(48 << 20, fresh, { fua: true });
      manifest.push({ nsid: 2, offset: 48 << 20, length: fresh.length, sha256: sha256(fresh) });
    } finally {
      await vsa.close();
    }
  } finally {
    native.closeFd(listenFd);
    rmSync(socketPath, { force: true });
  }
});

test('Linux PF driver (admin pass-through + sysfs): VSICs bound, handed over as VFIO descriptors, unbound', async () => {
  const device = new LinuxNvmeDevice({ name: 'hw0', pf: pf.address, vfs: 3, log: () => {} });
  await device.start(); // 3 VFs: re-creates them, so this test goes last
  try {
    assert.deepEqual(device.vsicIds(), [1, 2, 3]);
    const before = await device.status();
    assert.deepEqual(before.vsics.map((v) => v.online), [false, false, false], 'every VSIC released at start');
    await assert.rejects(device.createNamespace(1024, 4096), (e: StorageError) => {
      console.log(`    Namespace Management: ${e.code} (QEMU 7.2 has none; namespaces are pre-provisioned)`);
      return e instanceof StorageError;
    });
    await assert.rejects(device.bindVsic(3, 3, { queues: 8, interrupts: 4, iops: 100, kibPerSecond: 0, readOnly: false }), (e: StorageError) => e.code === 'ENOTSUP');
    // The daemon asks for 8 queues and 4 vectors; the driver clamps to VQFRSM / VIFRSM.
    await device.bindVsic(3, 3, { queues: 8, interrupts: 4, iops: 0, kibPerSecond: 0, readOnly: false });
    const bound = (await device.status()).vsics.find((v) => v.cntlid === 3)!;
    assert.deepEqual([bound.online, bound.queues, bound.interrupts], [true, 4, 2]);
    // What the application does with the fd the daemon passes it.
    const handover = receiveVfioHandover(device.connectVsic(3));
    assert.equal(handover.device, device.vfAddress(3));
    const { vsa, controller } = await openVfio(handover);
    try {
      assert.equal(controller.identity.cntlid, 3);
      assert.deepEqual(await controller.activeNamespaces(), [3]);
      const data = Buffer.from(pattern(256 * 1024, 3333));
      await vsa.write(8 << 20, data, { fua: true });
      const back = Buffer.alloc(data.length);
      await vsa.read(8 << 20, back);
      sameBytes(back, data, 'round trip on the VSIC the PF driver bound');
      manifest.push({ nsid: 3, offset: 8 << 20, length: data.length, sha256: sha256(data) });
    } finally {
      await vsa.close();
    }
    await device.unbindVsic(3, 3);
    const after = (await device.status()).vsics.find((v) => v.cntlid === 3)!;
    assert.equal(after.online, false, 'offline after unbind');
  } finally {
    await device.stop();
  }
});

// ---- run: `vfio.ts [name filter...]` runs the setup test and the matching ones.
const filters = process.argv.slice(2);
const selected = tests.filter((t, i) => i === 0 || filters.length === 0 || filters.some((f) => t.name.includes(f)));
if (process.env.OFFPATH_HW_TRACE) setInterval(() => writeSync(2, `  [alive ${(performance.now() / 1000).toFixed(1)} s]\n`), 2000).unref();
let passed = 0;
let failed = 0;
const started = Date.now();
for (const { name, fn } of selected) {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${TEST_TIMEOUT_MS} ms; outstanding: ${vfs.map((vf) => vf.vsa?.outstanding).join(', ')}`)), TEST_TIMEOUT_MS);
    });
    await Promise.race([fn(), timeout]);
    passed++;
    clearTimeout(timer);
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (error) {
    failed++;
    clearTimeout(timer);
    console.log(`FAIL ${name} (${Date.now() - t0} ms)\n     ${error instanceof Error ? (error.stack ?? error.message).replace(/\n/g, '\n     ') : String(error)}`);
  }
}
for (const vf of vfs) await vf.vsa?.close().catch(() => {});
const share = process.env.OFFPATH_HW_SHARE;
if (share) writeFileSync(join(share, 'manifest.json'), JSON.stringify({ passed, failed, manifest }, null, 2));
console.log(`${passed} passed, ${failed} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`);
process.exit(failed === 0 ? 0 : 1);
