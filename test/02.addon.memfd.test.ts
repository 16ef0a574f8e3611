// Shared memory across two processes, and the unmap story.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StorageError } from '../libstorage/errors.js';
import { native } from '../libstorage/native.js';
import { spawnFixture } from './helpers/child.js';

const LENGTH_BYTES = 1 << 20;

test('a memfd mapping written by one process is read by the other', async () => {
  const fd = native.memfdCreate('offpath-test');
  native.ftruncate(fd, LENGTH_BYTES);
  assert.is(native.fileSize(fd), LENGTH_BYTES);
  const view = new Uint8Array(native.mmap(fd, LENGTH_BYTES));
  let sum = 0;
  for (let i = 0; i < LENGTH_BYTES / 2; i++) {
    view[i] = (i * 13 + 5) & 0xff;
    sum = (sum + view[i]!) >>> 0;
  }
  const child = spawnFixture('memfd-peer.ts', [String(LENGTH_BYTES)], [fd]);
  const output = await child.done;
  assert.is(output.trim(), `sum ${sum}`, 'child saw the parent bytes');
  for (let i = LENGTH_BYTES / 2; i < LENGTH_BYTES; i++) {
    if (view[i] !== ((i * 7 + 3) & 0xff)) assert.unreachable(`byte ${i} written by the child is wrong`);
  }
  native.munmap(view.buffer as ArrayBuffer);
  native.closeFd(fd);
});

test('two mappings of one memfd in one process see each other', () => {
  const fd = native.memfdCreate('alias');
  native.ftruncate(fd, 4096);
  const a = new Uint32Array(native.mmap(fd, 4096));
  const b = new Uint32Array(native.mmap(fd, 4096));
  native.store32Release(a, 64, 0xdeadbeef);
  assert.is(b[16], 0xdeadbeef);
  assert.is(native.load32Acquire(b, 64), 0xdeadbeef);
  native.store32Fenced(b, 68, 7);
  assert.is(a[17], 7);
  native.munmap(a.buffer as ArrayBuffer);
  native.munmap(b.buffer as ArrayBuffer);
  native.closeFd(fd);
});

test('after munmap every view is empty and native access is refused', () => {
  const fd = native.memfdCreate('unmap');
  native.ftruncate(fd, 4096);
  const buffer = native.mmap(fd, 4096);
  const view = new Uint8Array(buffer);
  view[0] = 1;
  assert.ok(native.isMapped(buffer));
  native.munmap(buffer);
  assert.is(buffer.byteLength, 0);
  assert.is(view.length, 0);
  view[0] = 2; // out of bounds on a detached buffer: ignored, no fault
  assert.is(view[0], undefined);
  assert.not.ok(native.isMapped(buffer));
  assert.throws(() => native.load32Acquire(buffer, 0), (e: any) => e instanceof StorageError && e.code === 'ENOTMAPPED');
  assert.throws(() => native.munmap(buffer), (e: any) => e instanceof StorageError && e.code === 'ENOTMAPPED');
  assert.throws(() => native.munmap(new ArrayBuffer(8)), (e: any) => e instanceof StorageError && e.code === 'ENOTMAPPED');
  native.closeFd(fd);
});

test('seals: a sealed memfd cannot shrink under a peer that mapped it', () => {
  const fd = native.memfdCreate('sealed', { allowSealing: true });
  native.ftruncate(fd, 8192);
  const { F_SEAL_SHRINK, F_SEAL_GROW } = native.mappingConstants;
  native.addSeals(fd, F_SEAL_SHRINK | F_SEAL_GROW);
  assert.is(native.getSeals(fd) & (F_SEAL_SHRINK | F_SEAL_GROW), F_SEAL_SHRINK | F_SEAL_GROW);
  assert.throws(() => native.ftruncate(fd, 4096), (e: any) => e instanceof StorageError && e.code === 'EPERM');
  native.closeFd(fd);
});

test('DMA memory is page aligned, sealed, zeroed and shareable', async () => {
  const region = native.dmaAlloc(10_000);
  assert.is(region.lengthBytes, 12_288, 'rounded up to whole pages');
  assert.is(region.buffer.byteLength, region.lengthBytes);
  assert.is(region.hugepage, false);
  const { F_SEAL_SHRINK, F_SEAL_GROW } = native.mappingConstants;
  assert.is(native.getSeals(region.fd) & (F_SEAL_SHRINK | F_SEAL_GROW), F_SEAL_SHRINK | F_SEAL_GROW);
  const view = new Uint8Array(region.buffer);
  assert.ok(view.every((byte) => byte === 0));
  view.fill(0xab, 0, region.lengthBytes / 2);
  const child = spawnFixture('memfd-peer.ts', [String(region.lengthBytes)], [region.fd]);
  assert.is((await child.done).trim(), `sum ${0xab * (region.lengthBytes / 2)}`);
  assert.is(view[region.lengthBytes - 1], ((region.lengthBytes - 1) * 7 + 3) & 0xff);
  native.munmap(region.buffer);
  native.closeFd(region.fd);
});

test('hugepage DMA memory: "prefer" falls back, "require" says why it failed', () => {
  const preferred = native.dmaAlloc(4096, { hugepage: 'prefer' });
  assert.is(preferred.lengthBytes % 4096, 0);
  if (preferred.hugepage) assert.is(preferred.lengthBytes, 2 << 20);
  native.munmap(preferred.buffer);
  native.closeFd(preferred.fd);
  try {
    const required = native.dmaAlloc(4096, { hugepage: 'require' });
    assert.is(required.hugepage, true);
    assert.is(required.lengthBytes, 2 << 20);
    native.munmap(required.buffer);
    native.closeFd(required.fd);
  } catch (error: any) {
    // No hugetlb pool on this host: a clear errno, not a crash.
    assert.instance(error, StorageError);
    assert.ok(['ENOMEM', 'EINVAL', 'ENOSPC'].includes(error.code), error.code);
  }
});

test.run();
