// The hardware path without hardware: boots Debian's kernel under QEMU (TCG)
// with an emulated SR-IOV NVMe controller and Intel IOMMU, runs the guest
// suite (test/hw/guest/suite.ts: the project's daemon on the PF with
// applications opening VSAs by capability, then VFs driven through
// VfioTransport and the project's NvmeController directly) and checks the
// backing image files on the host against what the guest wrote. Skipped, with the reason, when this host
// cannot run the rig (not x86-64 Linux, or QEMU missing and not installable);
// OFFPATH_HW=0 skips it on purpose, OFFPATH_HW=1 turns a skip into a failure.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IOVA_FLOOR, IovaAllocator } from '../libstorage/transport/vfio/iova.js';
import { ensureHostPackages, ensureKernel } from './hw/image.js';
import { DEFAULT_GUEST_COMMAND, HW_DIR, runInVm, type VmRun } from './hw/run.js';

test('IOVA allocator: only inside the reported ranges, guard pages, hugepage alignment, reuse', () => {
  // The ranges a 39-bit Intel IOMMU reports: the MSI window is a hole.
  const iova = new IovaAllocator([
    { start: 0n, end: 0xfedfffffn },
    { start: 0xfef00000n, end: 0x7f_ffff_ffffn },
  ]);
  const first = iova.allocate(4096);
  assert.is(first, IOVA_FLOOR, 'nothing below the floor: a zero pointer always faults');
  const second = iova.allocate(8192);
  assert.is(second, first + 8192, 'one guard page after each allocation');
  const huge = iova.allocate(4 << 20, 2 << 20);
  assert.is(huge % (2 << 20), 0);
  // A region that would straddle the MSI window lands above it.
  const fill = 0xfed00000 - (huge + (4 << 20) + 4096);
  const below = iova.allocate(fill);
  assert.ok(below + fill <= 0xfee00000, 'fills the low range up to just below the MSI window');
  const straddling = iova.allocate(2 << 20);
  assert.is(straddling, 0xfef00000, 'a region that does not fit below the window goes above it');
  iova.release(second, 8192);
  assert.is(iova.allocate(8192), second, 'freed space is reused');
  assert.throws(() => iova.allocate(2 ** 40), (e: Error) => (e as { code?: string }).code === 'ENOSPC');
  assert.throws(() => iova.allocate(100), RangeError);
  assert.throws(() => new IovaAllocator([{ start: 0n, end: 0xfffn }]), (e: Error) => (e as { code?: string }).code === 'ENOSPC');
});

function rigBlocker(): string | undefined {
  if (process.env.OFFPATH_HW === '0') return 'OFFPATH_HW=0';
  if (process.platform !== 'linux' || process.arch !== 'x64') return `the rig boots x86-64 Linux; this is ${process.platform}/${process.arch}`;
  try {
    const log = (line: string) => console.log(`  hw: ${line}`);
    ensureHostPackages(log);
    ensureKernel(HW_DIR, log);
  } catch (error) {
    return (error as Error).message;
  }
  return undefined;
}

const blocker = rigBlocker();
if (blocker !== undefined && process.env.OFFPATH_HW !== '1') {
  console.log(`SKIPPED the VM rig: ${blocker}`);
  test.skip('guest suite in the VM (skipped: see above)');
  test.skip('backing images hold what the guest wrote through VFIO');
} else {
  let run: VmRun | undefined;

  test('guest suite in the VM: every check passes', async () => {
    assert.is(blocker, undefined, `the VM rig cannot run here: ${blocker}`);
    run = await runInVm(DEFAULT_GUEST_COMMAND, { timeoutMs: 420_000, log: (line) => console.log(`  hw: ${line}`) });
    const summary = /(\d+) passed, (\d+) failed/.exec(run.output);
    console.log(`  hw: ${summary?.[0] ?? 'no summary'}; VM ${(run.bootMs / 1000).toFixed(1)} s, total ${(run.totalMs / 1000).toFixed(1)} s`);
    if (run.status !== 0 || !summary || summary[2] !== '0') {
      console.log(run.output || run.console.slice(-4000));
    }
    assert.ok(!run.timedOut, 'the VM finished in time');
    assert.is(run.status, 0, 'the guest suite exit status');
    assert.ok(summary && Number(summary[1]) >= 20 && summary[2] === '0', 'N passed, 0 failed');
  });

  test('backing images hold what the guest wrote through VFIO', () => {
    assert.ok(run && run.status !== null, 'the guest suite ran');
    const path = join(run!.shareDir, 'manifest.json');
    assert.ok(existsSync(path), 'the guest left manifest.json');
    const { manifest } = JSON.parse(readFileSync(path, 'utf8')) as { manifest: Array<{ nsid: number; offset: number; length: number; sha256: string }> };
    assert.ok(manifest.length >= 2, 'patterns from both VFs');
    for (const entry of manifest) {
      const image = run!.namespaces.find((ns) => ns.nsid === entry.nsid)!;
      const fd = openSync(image.path, 'r');
      try {
        const bytes = Buffer.alloc(entry.length);
        assert.is(readSync(fd, bytes, 0, entry.length, entry.offset), entry.length);
        assert.is(createHash('sha256').update(bytes).digest('hex'), entry.sha256, `nsid ${entry.nsid} @ ${entry.offset} in ${image.path}`);
      } finally {
        closeSync(fd);
      }
    }
  });
}

test.run();
