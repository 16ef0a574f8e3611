/**
 * Guest tests on VFs set up the operator's way (inside the VM rig, as root,
 * with the emulated SR-IOV NVMe controller), driven through offpath's
 * VfioTransport and NvmeController: the shared data checks
 * (test/checks/data-checks.ts), interrupts, isolation between VFs, a
 * cross-check of what the user-space driver wrote through the kernel's own
 * nvme driver, descriptors handed over by another process, and the Linux PF
 * driver. Registered in order with the guest harness; test/hw/guest/suite.ts
 * runs them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import type { NvmeController } from '../../../libstorage/driver/controller.js';
import { Registers } from '../../../libstorage/driver/registers.js';
import { StorageError } from '../../../libstorage/errors.js';
import { native, packageRoot, READABLE } from '../../../libstorage/native.js';
import { NvmOpcode, decodeCap, writeSqe } from '../../../libstorage/nvme/spec.js';
import { IovaAllocator } from '../../../libstorage/transport/vfio/iova.js';
import { VfioTransport, receiveVfioHandover, vfioGroupPath } from '../../../libstorage/transport/vfio/vfio-transport.js';
import type { Vsa } from '../../../libstorage/vsa.js';
import { LinuxNvmeDevice } from '../../../controlplane/pf/linux-device.js';
import { dataCheckAreas, dataChecks, sameBytes } from '../../checks/data-checks.js';
import { checkWorkerStripes } from '../../checks/worker-checks.js';
import { tsWorker } from '../../helpers/child.js';
import { Read, Write, pattern, rw, statusOf } from '../../helpers/nvme.js';
import { finish, manifest, setup, sha256, test } from './harness.js';
import { openVfio } from './open-vfio.js';
import { attachNamespace, bindDriver, blockDeviceOf, bringOnline, enableVfs, findPf, secondaryControllers, type Pf } from './sriov.js';

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

setup('SR-IOV: two VFs with queues and vectors, online, a namespace each, bound to vfio-pci', async () => {
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

setup('bring-up through VFIO: identify, queues granted, only its namespace active', async () => {
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

// The checks every VSA passes (the same ones test/40 runs on the emulator), on VF1.
for (const [i, check] of dataChecks.entries()) {
  test(`VF1 data: ${check.name}`, async () => {
    const vsa = vfs[0]!.vsa!;
    await check.run(vsa, dataCheckAreas(vsa)[i]!);
  });
}

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

test('worker threads on the VF: a queue pair each, every stripe read back', async () => {
  // VF1 has 3 I/O queue pairs: the VSA's own and one for each of two
  // workers (the ids the tests before used are free again).
  await checkWorkerStripes(vfs[0]!.vsa!, VF_QUEUES - 2, 64);
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

test('the host takes a VF back while in use (unbind): I/O fails with ENODEV, workers let go too, the unbind completes', async () => {
  const vf2 = vfs[1]!;
  const { vsa } = await openVfio({ device: vf2.address });
  const buffer = Buffer.alloc(vsa.blockSize);
  await vsa.read(0, buffer);
  // A worker thread with its own queue pair (and its own BAR mapping, which
  // would hold the device if the worker never let go).
  const worker = tsWorker(new URL('../../fixtures/vsa-worker-until-lost.ts', import.meta.url), { handle: await vsa.queueHandle({ queueEntries: 16, poolBytes: 1 << 20 }) });
  const workerDone = new Promise<{ code?: string; reads: number }>((resolve, reject) => {
    worker.on('message', (message) => {
      if (!message.ready) resolve(message);
    });
    worker.once('error', reject);
  });
  await new Promise((resolve) => worker.once('message', resolve));
  let reads = 0;
  const failure = (async () => {
    for (;;) {
      try {
        await vsa.read((reads++ % 64) * vsa.blockSize, buffer);
      } catch (error) {
        return error as StorageError;
      }
    }
  })();
  // What the host does when it wants a device back (unbind, hot removal,
  // SR-IOV off): vfio-pci asks the user to release it and waits until it has.
  const started = Date.now();
  const unbind = spawn('sh', ['-c', `echo ${vf2.address} > /sys/bus/pci/drivers/vfio-pci/unbind`], { stdio: 'ignore' });
  const unbound = new Promise<number | null>((resolve) => unbind.on('exit', resolve));
  const error = await failure;
  assert.equal(error.code, 'ENODEV', `the I/O error says the device is going: ${error.code} ${error.message}`);
  const inWorker = await workerDone;
  assert.equal(inWorker.code, 'ECONNRESET', `the worker's queue failed too: ${JSON.stringify(inWorker)}`);
  const status = await Promise.race([unbound, new Promise<'stuck'>((resolve) => setTimeout(() => resolve('stuck'), 30_000))]);
  assert.equal(status, 0, 'the unbind completed: the library and its worker let go of the device');
  assert.equal(existsSync(`/sys/bus/pci/devices/${vf2.address}/driver`), false, 'the VF has no driver now');
  console.log(`    ${reads} reads (worker ${inWorker.reads}), then ENODEV; unbind complete ${Date.now() - started} ms after it started`);
  await vsa.close();
  await assert.rejects(async () => vsa.read(0, buffer), (e: StorageError) => e instanceof StorageError, 'later calls refuse');
});

test('Linux PF driver (admin pass-through + sysfs): VSICs bound, handed over as VFIO descriptors, unbound', async () => {
  const device = new LinuxNvmeDevice({ name: 'hw0', pf: pf.address, vfs: 3, log: () => {} });
  await device.start(); // 3 VFs: re-creates them, so this test goes last
  try {
    assert.deepEqual(device.vsicIds(), [1, 2, 3]);
    const before = await device.status();
    assert.deepEqual(before.vsics.map((v) => v.online), [false, false, false], 'every VSIC released at start');
    // QEMU 7.2 has no Namespace Management: VSAs come from the pool of
    // detached namespaces (nsid 1 and 3: 512-byte blocks, 2 and 4: 4096), used whole.
    assert.deepEqual(await device.createNamespace(1024, 4096, new Set([2])), { nsid: 4, sizeBlocks: 16384 }, 'the free 4096-byte namespace');
    assert.deepEqual(await device.createNamespace(1024, 512, new Set()), { nsid: 1, sizeBlocks: 131072 }, 'the first 512-byte namespace');
    await assert.rejects(device.createNamespace(1 << 30, 4096, new Set()), (e: StorageError) => e.code === 'ENOSPC');
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

finish(async () => {
  for (const vf of vfs) await vf.vsa?.close().catch(() => {});
});

/** What was outstanding on each VF when a test timed out. */
export const describeOutstanding = (): string => `; outstanding: ${vfs.map((vf) => vf.vsa?.outstanding).join(', ')}`;
