// The data-plane API over the emulator: bytes in, same bytes out, for every
// shape of request a user can make; bad arguments never reach the device.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StorageError } from '../libstorage/index.js';
import { pattern } from './helpers/nvme.js';
import { closeFixture, openFixture, type VsaFixture } from './helpers/vsa.js';

const BLOCK = 4096;
const MDTS_BYTES = 256 * 1024;
let f: VsaFixture;

test.before(async () => {
  f = await openFixture(8192); // 32 MiB
});
test.after(() => closeFixture(f));

test('geometry', () => {
  assert.is(f.vsa.blockSize, BLOCK);
  assert.is(f.vsa.blocks, 8192);
  assert.is(f.vsa.size, 8192 * BLOCK);
  assert.is(f.vsa.nsid, f.nsid);
});

test('bad arguments are TypeError/RangeError and never reach the device', async () => {
  const buffer = f.vsa.alloc(BLOCK);
  assert.throws(() => f.vsa.read(1, buffer), RangeError);
  assert.throws(() => f.vsa.read(0, buffer.subarray(0, 100)), RangeError);
  assert.throws(() => f.vsa.read(f.vsa.size, buffer), RangeError);
  assert.throws(() => f.vsa.read(-BLOCK, buffer), RangeError);
  assert.throws(() => f.vsa.write(0, 'text' as any), TypeError);
  assert.throws(() => f.vsa.readv([buffer], [{ offset: 0, length: 2 * BLOCK }]), RangeError);
  assert.throws(() => f.vsa.readv([], [{ offset: 0, length: BLOCK }]), TypeError);
  assert.throws(() => f.vsa.trim(0, 0), RangeError);
  assert.throws(() => f.vsa.readCallback(0, buffer, 'nope' as any), TypeError);
  assert.throws(() => f.vsa.alloc(0), RangeError);
  assert.is(f.vsa.outstanding, 0);
  f.vsa.free(buffer);
});

test('round trips of every size from 1 block to several MDTS, DMA and plain buffers', async () => {
  const sizes = [1, 2, 3, 7, 8, 31, 63, 64, 65, 127, 128, 129, 200, 256 + 3];
  let offset = 0;
  for (const blocks of sizes) {
    const bytes = blocks * BLOCK;
    const data = pattern(bytes, blocks);
    const dma = f.vsa.alloc(bytes);
    dma.set(data);
    await f.vsa.write(offset, dma);
    const back = Buffer.alloc(bytes);
    await f.vsa.read(offset, back);
    assert.ok(back.equals(data), `${blocks} blocks via DMA out / plain in`);
    const plain = Buffer.from(pattern(bytes, blocks + 1000));
    await f.vsa.write(offset, plain);
    dma.fill(0);
    await f.vsa.read(offset, dma);
    assert.ok(Buffer.from(dma.buffer, dma.byteOffset, bytes).equals(plain), `${blocks} blocks plain out / DMA in`);
    f.vsa.free(dma);
    offset += bytes;
  }
  assert.ok(offset > 3 * MDTS_BYTES);
});

test('unaligned buffers and many-segment scatter-gather (PRP, SGL and bounce paths)', async () => {
  // 40 segments of odd sizes, some in DMA memory at odd offsets, some plain,
  // against 3 VSA ranges; then read back with a different segmentation.
  const total = 24 * BLOCK;
  const data = pattern(total, 77);
  const dma = f.vsa.alloc(total + BLOCK);
  const segments: Uint8Array[] = [];
  let used = 0;
  let position = 0; // in `dma`; odd segments start 3 bytes off
  let i = 0;
  while (used < total) {
    const length = Math.min(total - used, [100, 4096, 513, 8192, 12, 3000][i % 6]!);
    const skew = i % 2 ? 3 : 0;
    const segment = i % 3 === 0 ? Buffer.alloc(length) : dma.subarray(position + skew, position + skew + length);
    position += skew + length;
    segment.set(data.subarray(used, used + length));
    segments.push(segment);
    used += length;
    i++;
  }
  const ranges = [
    { offset: 100 * BLOCK, length: 8 * BLOCK },
    { offset: 300 * BLOCK, length: 10 * BLOCK },
    { offset: 50 * BLOCK, length: 6 * BLOCK },
  ];
  await f.vsa.writev(segments, ranges);
  // Each range read back alone.
  const a = Buffer.alloc(8 * BLOCK);
  const b = Buffer.alloc(10 * BLOCK);
  const c = Buffer.alloc(6 * BLOCK);
  await f.vsa.read(100 * BLOCK, a);
  await f.vsa.read(300 * BLOCK, b);
  await f.vsa.read(50 * BLOCK, c);
  assert.ok(Buffer.concat([a, b, c]).equals(data));
  // Gather into page-aligned DMA pieces (PRP path) and odd DMA pieces (SGL path).
  const aligned = f.vsa.alloc(total);
  const pieces = [aligned.subarray(0, 3 * BLOCK), aligned.subarray(3 * BLOCK, 20 * BLOCK), aligned.subarray(20 * BLOCK)];
  await f.vsa.readv(pieces, ranges);
  assert.ok(Buffer.from(aligned.buffer, aligned.byteOffset, total).equals(data));
  const odd = f.vsa.alloc(total + BLOCK);
  const oddPieces = [odd.subarray(1, 1 + 5000), odd.subarray(6000, 6000 + total - 5000)];
  await f.vsa.readv(oddPieces, ranges);
  assert.ok(Buffer.concat([oddPieces[0]!, oddPieces[1]!]).equals(data));
  for (const x of [dma, aligned, odd]) f.vsa.free(x);
});

test('read after trim and write-zeroes returns zeroes; neighbours untouched', async () => {
  const data = Buffer.from(pattern(8 * BLOCK, 5));
  await f.vsa.write(1000 * BLOCK, data);
  await f.vsa.trim(1001 * BLOCK, 2 * BLOCK);
  await f.vsa.writeZeroes(1005 * BLOCK, 2 * BLOCK, { fua: true });
  const back = Buffer.alloc(8 * BLOCK);
  await f.vsa.read(1000 * BLOCK, back);
  const expected = Buffer.from(data);
  expected.fill(0, BLOCK, 3 * BLOCK);
  expected.fill(0, 5 * BLOCK, 7 * BLOCK);
  assert.ok(back.equals(expected));
  // A trim larger than one command's range list and a large write-zeroes.
  await f.vsa.trim(0, f.vsa.size);
  await f.vsa.writeZeroes(0, 4096 * BLOCK);
  await f.vsa.read(1000 * BLOCK, back);
  assert.ok(back.every((x) => x === 0));
});

test('FUA writes and flush succeed; callbacks deliver in order of completion', async () => {
  const data = f.vsa.alloc(BLOCK);
  data.fill(0x5a);
  await f.vsa.write(7 * BLOCK, data, { fua: true });
  await f.vsa.flush();
  const results: Array<StorageError | null> = [];
  await new Promise<void>((resolve) => {
    let left = 32;
    for (let i = 0; i < 32; i++) {
      f.vsa.writeCallback(i * BLOCK, data, (error) => {
        results.push(error);
        if (--left === 0) resolve();
      });
    }
  });
  assert.is(results.length, 32);
  assert.ok(results.every((e) => e === null));
  const back = Buffer.alloc(32 * BLOCK);
  await f.vsa.read(0, back);
  assert.ok(back.every((x) => x === 0x5a));
});

test('more requests than queue slots: all complete, none lost', async () => {
  const buffer = f.vsa.alloc(BLOCK);
  await Promise.all(Array.from({ length: 3000 }, (_, i) => f.vsa.read((i % 8192) * BLOCK, buffer)));
  assert.is(f.vsa.outstanding, 0);
});

test('no registered memory left for a bounce buffer: ENOMEM, no slot leaked, works again after free', async () => {
  const held: Uint8Array[] = [];
  for (;;) {
    try {
      held.push(f.vsa.alloc(1 << 20));
    } catch {
      break;
    }
  }
  for (;;) {
    try {
      held.push(f.vsa.alloc(BLOCK));
    } catch {
      break;
    }
  }
  const plain = Buffer.alloc(BLOCK);
  const refused = await f.vsa.read(0, plain).then(() => null, (e: unknown) => e);
  assert.instance(refused, StorageError);
  assert.is((refused as StorageError).code, 'ENOMEM');
  const viaCallback = await new Promise<StorageError | null>((resolve) => f.vsa.readCallback(0, plain, resolve));
  assert.is(viaCallback?.code, 'ENOMEM');
  assert.is(f.vsa.outstanding, 0);
  assert.is(f.vsa.queue.available, f.vsa.queue.depth, 'every command id is back');
  for (const buffer of held) f.vsa.free(buffer);
  await f.vsa.read(0, plain);
});

test('device errors become StorageError with the NVMe status name, command and VSA', async () => {
  // Detach the namespace behind the application's back: the next I/O is refused by the device.
  await f.pf.detach(f.nsid, 1);
  const buffer = f.vsa.alloc(BLOCK);
  try {
    await f.vsa.read(0, buffer);
    assert.unreachable('read from a detached namespace');
  } catch (error) {
    assert.instance(error, StorageError);
    const e = error as StorageError;
    assert.is(e.code, 'INVALID_NAMESPACE_OR_FORMAT');
    assert.is(e.command, 'Read');
    assert.is(e.vsa, f.vsa.name);
    assert.equal(e.status, { sct: 0, sc: 0x0b, dnr: true, more: false });
  }
  await new Promise<void>((resolve) => f.vsa.writeCallback(0, buffer, (error) => {
    assert.is(error?.code, 'INVALID_NAMESPACE_OR_FORMAT');
    resolve();
  }));
  await f.pf.attach(f.nsid, 1);
  await f.vsa.read(0, buffer);
  f.vsa.free(buffer);
});

test.run();
