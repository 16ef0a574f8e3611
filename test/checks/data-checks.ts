/**
 * The data checks every VSA must pass, whatever is behind it: the emulator's
 * VSIC (test/40), a hardware VF driven through VFIO (the VM's guest suite)
 * and a VF an application opened by capability from the daemon running
 * against the hardware PF (test/hw/guest/app.ts). Bytes in, the same bytes
 * out, for every request shape a user can make.
 *
 * Each check writes only inside its own area of the VSA (dataCheckAreas), so
 * the checks can run in any order on one VSA. Assertions carry their own
 * messages: without one, node's assert re-reads the source to describe the
 * expression, which takes minutes under the VM's TCG.
 */
import assert from 'node:assert/strict';
import { Cns, IDNS_DLFEAT_OFFSET } from '../../libstorage/nvme/identify.js';
import type { Vsa } from '../../libstorage/vsa.js';
import { pattern } from '../helpers/nvme.js';

export interface DataCheck {
  name: string;
  /** Bytes of the VSA this check writes, from its area's start. */
  areaBytes(vsa: Vsa): number;
  run(vsa: Vsa, areaOffset: number): Promise<void>;
}

/** DLFEAT bits 2:0 = 001b: deallocated blocks read as zeroes. */
const DLFEAT_READS_ZEROES = 1;

/** Byte equality with the first difference in the message. */
export function sameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.equals(b)) return;
  let at = 0;
  while (at < Math.min(a.length, b.length) && a[at] === b[at]) at++;
  assert.fail(`${what}: ${a.length} bytes vs ${b.length} expected, first difference at byte ${at} (${a[at]} vs ${b[at]})`);
}

const mdtsBlocks = (vsa: Vsa) => vsa.controller.identity.maxTransferBytes / vsa.blockSize;

/** 1 block to 3 MDTS and the sizes around every power of two a driver splits at. */
function roundTripSizes(vsa: Vsa): number[] {
  const mdts = mdtsBlocks(vsa);
  return [1, 2, 3, 7, 8, 9, 31, 63, 64, 65, 127, 128, 129, 255, 256, 257, mdts - 1, mdts, mdts + 1, 3 * mdts + 3];
}

const roundTrips: DataCheck = {
  name: 'round trips of every size from 1 block to 3 MDTS, registered and plain buffers',
  areaBytes: (vsa) => roundTripSizes(vsa).reduce((sum, blocks) => sum + blocks * vsa.blockSize, 0),
  async run(vsa, areaOffset) {
    let offset = areaOffset;
    for (const blocks of roundTripSizes(vsa)) {
      const bytes = blocks * vsa.blockSize;
      const data = pattern(bytes, blocks);
      const dma = vsa.alloc(bytes);
      dma.set(data);
      await vsa.write(offset, dma);
      const back = Buffer.alloc(bytes);
      await vsa.read(offset, back);
      sameBytes(back, data, `${blocks} blocks: registered out, plain in`);
      const plain = Buffer.from(pattern(bytes, blocks + 1000));
      await vsa.write(offset, plain);
      dma.fill(0);
      await vsa.read(offset, dma);
      sameBytes(dma.subarray(0, bytes), plain, `${blocks} blocks: plain out, registered in`);
      vsa.free(dma);
      offset += bytes;
    }
  },
};

const SG_BLOCKS = 96;

const scatterGather: DataCheck = {
  name: 'unaligned buffers and many-segment scatter-gather: writev/readv over PRP, SGL and bounce paths',
  areaBytes: (vsa) => 1040 * vsa.blockSize,
  async run(vsa, areaOffset) {
    // Odd-sized segments, some plain, some in registered memory 3 bytes off,
    // against three VSA ranges out of order; read back with other cuts.
    const block = vsa.blockSize;
    const total = SG_BLOCKS * block;
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
    const ranges = [
      { offset: areaOffset + 100 * block, length: 32 * block },
      { offset: areaOffset + 1000 * block, length: 40 * block },
      { offset: areaOffset + 50 * block, length: 24 * block },
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
  },
};

const ZERO_BLOCKS = 32;
const BIG_ZERO_BLOCKS = 2048;

const zeroes: DataCheck = {
  name: 'write-zeroes reads back zeroes; trim leaves each block old or zero (per DLFEAT); neighbours untouched',
  areaBytes: (vsa) => (ZERO_BLOCKS + BIG_ZERO_BLOCKS) * vsa.blockSize,
  async run(vsa, areaOffset) {
    const block = vsa.blockSize;
    const data = Buffer.from(pattern(ZERO_BLOCKS * block, 5));
    await vsa.write(areaOffset, data);
    await vsa.writeZeroes(areaOffset + 5 * block, 2 * block, { fua: true });
    // Deallocate is advisory: a trimmed block reads as its old data or, when
    // DLFEAT says so, as zeroes; never anything else.
    await vsa.trim(areaOffset + 8 * block, 16 * block);
    const dlfeat = (await vsa.controller.identify(Cns.NS, vsa.nsid)).getUint8(IDNS_DLFEAT_OFFSET);
    const readsZeroes = (dlfeat & 7) === DLFEAT_READS_ZEROES;
    const back = Buffer.alloc(ZERO_BLOCKS * block);
    await vsa.read(areaOffset, back);
    const zero = Buffer.alloc(block);
    for (let i = 0; i < ZERO_BLOCKS; i++) {
      const got = back.subarray(i * block, (i + 1) * block);
      const old = data.subarray(i * block, (i + 1) * block);
      if (i === 5 || i === 6) sameBytes(got, zero, `block ${i} after Write Zeroes`);
      else if (i >= 8 && i < 24) {
        if (readsZeroes) sameBytes(got, zero, `trimmed block ${i} (DLFEAT ${dlfeat} promises zeroes)`);
        else if (!got.equals(zero)) sameBytes(got, old, `trimmed block ${i} (DLFEAT ${dlfeat}): neither old data nor zeroes`);
      } else sameBytes(got, old, `untouched block ${i}`);
    }
    // Large ones: a trim and a write-zeroes of many blocks each.
    const bigOffset = areaOffset + ZERO_BLOCKS * block;
    const bigBytes = BIG_ZERO_BLOCKS * block;
    await vsa.write(bigOffset, Buffer.from(pattern(bigBytes, 6)));
    await vsa.trim(bigOffset, bigBytes);
    await vsa.writeZeroes(bigOffset, bigBytes);
    const all = Buffer.alloc(bigBytes);
    await vsa.read(bigOffset, all);
    sameBytes(all, Buffer.alloc(bigBytes), `${BIG_ZERO_BLOCKS} blocks trimmed then zeroed`);
  },
};

const CALLBACK_WRITES = 32;

const fuaFlushCallbacks: DataCheck = {
  name: 'FUA writes and flush succeed; callback forms complete every request',
  areaBytes: (vsa) => CALLBACK_WRITES * vsa.blockSize,
  async run(vsa, areaOffset) {
    const block = vsa.blockSize;
    const data = vsa.alloc(block);
    data.fill(0x5a);
    await vsa.write(areaOffset, data, { fua: true });
    await vsa.flush();
    const errors = await new Promise<unknown[]>((resolve) => {
      const results: unknown[] = [];
      for (let i = 0; i < CALLBACK_WRITES; i++) {
        vsa.writeCallback(areaOffset + i * block, data, (error) => {
          results.push(error);
          if (results.length === CALLBACK_WRITES) resolve(results);
        });
      }
    });
    assert.equal(errors.filter((e) => e !== null).length, 0, `callback errors: ${errors.filter((e) => e !== null).join(', ')}`);
    const back = Buffer.alloc(CALLBACK_WRITES * block);
    const read = await new Promise<unknown>((resolve) => vsa.readCallback(areaOffset, back, resolve));
    assert.equal(read, null, `readCallback: ${String(read)}`);
    assert.ok(back.every((x) => x === 0x5a), 'every block written by callback reads back');
    vsa.free(data);
  },
};

const DEEP_REQUESTS = 2000;

const deepQueue: DataCheck = {
  name: `deep queue: ${DEEP_REQUESTS} concurrent requests (more than queue slots), FUA writes, flush`,
  areaBytes: (vsa) => DEEP_REQUESTS * vsa.blockSize,
  async run(vsa, areaOffset) {
    const block = vsa.blockSize;
    const writes = Array.from({ length: DEEP_REQUESTS }, (_, i) => Buffer.from(pattern(block, 5000 + i)));
    await Promise.all(writes.map((data, i) => vsa.write(areaOffset + i * block, data, { fua: i % 7 === 0 })));
    await vsa.flush();
    const reads = Array.from({ length: DEEP_REQUESTS }, () => Buffer.alloc(block));
    await Promise.all(reads.map((buffer, i) => vsa.read(areaOffset + i * block, buffer)));
    for (let i = 0; i < DEEP_REQUESTS; i++) sameBytes(reads[i]!, writes[i]!, `block ${i}`);
    assert.equal(vsa.outstanding, 0, 'nothing left outstanding');
  },
};

export const dataChecks: readonly DataCheck[] = [roundTrips, scatterGather, zeroes, fuaFlushCallbacks, deepQueue];

/** Where each check's area starts: one after the other from `baseOffset`, block-aligned. Throws when the VSA is too small. */
export function dataCheckAreas(vsa: Vsa, baseOffset = 0): number[] {
  const offsets: number[] = [];
  let offset = baseOffset;
  for (const check of dataChecks) {
    offsets.push(offset);
    offset += Math.ceil(check.areaBytes(vsa) / vsa.blockSize) * vsa.blockSize;
  }
  if (offset > vsa.size) throw new RangeError(`the data checks need ${offset} bytes of the VSA; it has ${vsa.size}`);
  return offsets;
}
