// The emulator's backing store: data round trips on every backend, thin
// provisioning, NVMe statuses, namespace management, persistence across
// reopen, and refusal of wrong, reordered or corrupted pools.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageError } from '../libstorage/errors.js';
import { EmuStore, Status, decodeBlock, patternBuffer, prng, type EmuStoreOptions } from './fixtures/store-pattern.js';

const KiB = 1024;
const MiB = 1024 * 1024;
// On-disk layout (docs/emulator-store.md).
const CONTROL_OFFSET = 4096;
const CONTROL_SLOT_BYTES = MiB;
const MAP_OFFSET = CONTROL_OFFSET + 2 * CONTROL_SLOT_BYTES;

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'offpath-store-'));
  dirs.push(dir);
  return dir;
}

function storageCode(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof StorageError, `expected a StorageError, got ${String(error)}`);
    return (error as StorageError).code;
  }
  assert.unreachable('did not throw');
  return '';
}

function storageError(fn: () => unknown): StorageError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof StorageError, `expected a StorageError, got ${String(error)}`);
    return error as StorageError;
  }
  assert.unreachable('did not throw');
  throw new Error('unreachable');
}

function fileBytes(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  const buffer = Buffer.alloc(length);
  readSync(fd, buffer, 0, length, offset);
  closeSync(fd);
  return buffer;
}

function patchFile(path: string, offset: number, bytes: Uint8Array): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, offset);
  closeSync(fd);
}

function flipByte(path: string, offset: number): void {
  const byte = fileBytes(path, offset, 1);
  patchFile(path, offset, Buffer.from([byte[0]! ^ 0x5a]));
}

// Reads blocks and checks each one was written by the expected operation.
function expectBlocks(store: ReturnType<typeof open>, nsid: number, lba: number, blockBytes: number, expected: number[]) {
  const buffer = Buffer.alloc(expected.length * blockBytes);
  assert.is(store.read(nsid, lba, expected.length, buffer), Status.SUCCESS);
  for (let i = 0; i < expected.length; i++) {
    const found = decodeBlock(buffer, i * blockBytes, blockBytes, nsid, lba + i);
    if (found !== expected[i]) assert.unreachable(`ns ${nsid} lba ${lba + i}: expected op ${expected[i]}, found ${found}`);
  }
}

function open(options: EmuStoreOptions) {
  return new EmuStore(options);
}

test('CRC32C matches published check values in both implementations', () => {
  const check = Buffer.from('123456789');
  assert.is(EmuStore.crc32c(check), 0xe3069283);
  assert.is(EmuStore.crc32c(check, { portable: true }), 0xe3069283);
  assert.is(EmuStore.crc32c(Buffer.alloc(32)), 0x8a9136aa);
  assert.is(EmuStore.crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  assert.is(EmuStore.crc32c(new Uint8Array(0)), 0);
  const random = Buffer.alloc(100_003);
  const next = prng(7);
  for (let i = 0; i < random.length; i++) random[i] = (next() * 256) | 0;
  for (const length of [1, 7, 8, 9, 63, 4096, 100_000]) {
    const slice = random.subarray(3, 3 + length);
    assert.is(EmuStore.crc32c(slice), EmuStore.crc32c(slice, { portable: true }), `length ${length}`);
  }
});

for (const blockBytes of [512, 4096]) {
  test(`memory store round trip with ${blockBytes}-byte blocks, across chunk boundaries`, () => {
    const store = open({ kind: 'memory', sizeBytes: 16 * MiB, chunkBytes: 64 * KiB });
    assert.is(store.volatileWriteCache, false);
    const blocksPerChunk = (64 * KiB) / blockBytes;
    const nsid = store.createNamespace(8 * blocksPerChunk, blockBytes);
    // A write straddling two chunks, one covering several, one inside one.
    const writes: [number, number, number][] = [
      [1, blocksPerChunk - 3, 6],
      [2, 3 * blocksPerChunk + 1, 2 * blocksPerChunk + 5],
      [3, 7 * blocksPerChunk + 2, 4],
    ];
    for (const [op, lba, blocks] of writes)
      assert.is(store.write(nsid, lba, blocks, patternBuffer(blocks, blockBytes, op, nsid, lba)), Status.SUCCESS);
    const expected = new Array(8 * blocksPerChunk).fill(0);
    for (const [op, lba, blocks] of writes) for (let i = 0; i < blocks; i++) expected[lba + i] = op;
    expectBlocks(store, nsid, 0, blockBytes, expected);
    store.close();
  });

  test(`file store round trip with ${blockBytes}-byte blocks and multi-segment buffers survives reopen`, () => {
    const dir = tempDir();
    const path = join(dir, 'pool');
    let store = open({ kind: 'file', paths: [path], sizeBytes: 24 * MiB, chunkBytes: 64 * KiB });
    assert.is(store.volatileWriteCache, true);
    const nsid = store.createNamespace(Math.floor((8 * MiB) / blockBytes), blockBytes);
    const blocks = 40;
    const lba = Math.floor((64 * KiB) / blockBytes) - 7; // straddles a chunk boundary
    const data = patternBuffer(blocks, blockBytes, 11, nsid, lba);
    // Segments of odd sizes that cut blocks in the middle.
    const cuts = [0, 100, 612, 5000, 5001, data.length - 3, data.length];
    const segments = cuts.slice(1).map((end, i) => Uint8Array.from(data.subarray(cuts[i]!, end)));
    assert.is(store.write(nsid, lba, blocks, segments), Status.SUCCESS);
    const readBack = cuts.slice(1).map((end, i) => new Uint8Array(end - cuts[i]!));
    assert.is(store.read(nsid, lba, blocks, readBack), Status.SUCCESS);
    assert.ok(Buffer.concat(readBack).equals(data), 'segments read back what was written');
    // A segment list whose total length is wrong is refused before the store sees it.
    assert.throws(() => store.read(nsid, lba, blocks, [new Uint8Array(10)]), (e: any) => e instanceof RangeError);
    assert.is(store.flush(), Status.SUCCESS);
    store.close();
    store = open({ kind: 'file', paths: [path] });
    assert.is(store.chunkBytes, 64 * KiB, 'the pool keeps its chunk size');
    const again = Buffer.alloc(data.length);
    assert.is(store.read(nsid, lba, blocks, again), Status.SUCCESS);
    assert.ok(again.equals(data));
    store.close();
  });
}

test('thin provisioning: chunks are allocated on first write only, and writes into them cost no metadata', () => {
  const chunkBytes = 64 * KiB;
  const store = open({ kind: 'memory', sizeBytes: 8 * MiB, chunkBytes });
  const capacity = store.capacityBytes;
  assert.is(store.freeBytes, capacity);
  const nsid = store.createNamespace(capacity / 512, 512);
  assert.is(store.namespaces()[0]!.allocatedBlocks, 0);
  assert.is(store.freeBytes, capacity, 'creating a namespace allocates nothing');
  assert.is(store.write(nsid, 0, 1, Buffer.alloc(512, 1)), Status.SUCCESS);
  assert.is(store.namespaces()[0]!.allocatedBlocks, chunkBytes / 512);
  assert.is(store.freeBytes, capacity - chunkBytes);
  const before = store.counters();
  for (let lba = 1; lba < chunkBytes / 512; lba += 9) assert.is(store.write(nsid, lba, 1, Buffer.alloc(512, 2)), Status.SUCCESS);
  const after = store.counters();
  assert.is(after.mapPageWrites, before.mapPageWrites, 'no metadata write for an allocated chunk');
  assert.is(after.chunkAllocations, before.chunkAllocations);
  assert.is(after.metadataCommits, before.metadataCommits);
  // Reads of never-written chunks are zeroes and allocate nothing.
  const far = Buffer.alloc(4096, 0xee);
  assert.is(store.read(nsid, 2000, 8, far), Status.SUCCESS);
  assert.ok(far.every((byte) => byte === 0));
  assert.is(store.freeBytes, capacity - chunkBytes);
  store.close();
});

test('deallocate and write zeroes read back as zeroes; whole deallocated chunks return to the pool', () => {
  const chunkBytes = 64 * KiB;
  const blocksPerChunk = chunkBytes / 512;
  const dir = tempDir();
  const store = open({ kind: 'file', paths: [join(dir, 'pool')], sizeBytes: 16 * MiB, chunkBytes });
  const nsid = store.createNamespace(6 * blocksPerChunk + 10, 512);
  const total = 6 * blocksPerChunk + 10;
  assert.is(store.write(nsid, 0, total, patternBuffer(total, 512, 5, nsid, 0)), Status.SUCCESS);
  const full = store.freeBytes;
  assert.is(store.namespaces()[0]!.allocatedBlocks, total);
  const expected = new Array(total).fill(5);
  // Partial chunk: holes punched, chunk stays.
  assert.is(store.deallocate(nsid, 10, 20), Status.SUCCESS);
  for (let i = 10; i < 30; i++) expected[i] = 0;
  assert.is(store.freeBytes, full);
  // Whole chunks 2 and 3 (and part of 4): two chunks come back.
  assert.is(store.deallocate(nsid, 2 * blocksPerChunk, 2 * blocksPerChunk + 50), Status.SUCCESS);
  for (let i = 2 * blocksPerChunk; i < 4 * blocksPerChunk + 50; i++) expected[i] = 0;
  assert.is(store.freeBytes, full + 2 * chunkBytes);
  // The namespace's last, partial chunk counts as whole when the range reaches the end.
  assert.is(store.deallocate(nsid, 6 * blocksPerChunk, 10), Status.SUCCESS);
  for (let i = 6 * blocksPerChunk; i < total; i++) expected[i] = 0;
  assert.is(store.freeBytes, full + 3 * chunkBytes);
  assert.is(store.namespaces()[0]!.allocatedBlocks, 4 * blocksPerChunk);
  // Write Zeroes keeps the allocation.
  assert.is(store.writeZeroes(nsid, blocksPerChunk - 5, 10, false), Status.SUCCESS);
  assert.is(store.writeZeroes(nsid, 5 * blocksPerChunk, blocksPerChunk, true), Status.SUCCESS);
  for (let i = blocksPerChunk - 5; i < blocksPerChunk + 5; i++) expected[i] = 0;
  for (let i = 5 * blocksPerChunk; i < 6 * blocksPerChunk; i++) expected[i] = 0;
  assert.is(store.freeBytes, full + 3 * chunkBytes);
  expectBlocks(store, nsid, 0, 512, expected);
  // A freed chunk reused by a new write reads zeroes around the new data.
  assert.is(store.write(nsid, 2 * blocksPerChunk + 7, 1, patternBuffer(1, 512, 6, nsid, 2 * blocksPerChunk + 7)), Status.SUCCESS);
  expected[2 * blocksPerChunk + 7] = 6;
  expectBlocks(store, nsid, 0, 512, expected);
  store.close();
});

test('statuses: LBA out of range, unknown namespace, and bad arguments', () => {
  const store = open({ kind: 'memory', sizeBytes: 8 * MiB, chunkBytes: 64 * KiB });
  const nsid = store.createNamespace(100, 512);
  const one = Buffer.alloc(512);
  assert.is(store.read(nsid, 100, 1, one), Status.LBA_OUT_OF_RANGE);
  assert.is(store.write(nsid, 99, 2, Buffer.alloc(1024)), Status.LBA_OUT_OF_RANGE);
  assert.is(store.deallocate(nsid, 50, 51), Status.LBA_OUT_OF_RANGE);
  assert.is(store.writeZeroes(nsid, 2 ** 40, 1), Status.LBA_OUT_OF_RANGE);
  assert.is(store.write(nsid, 99, 1, one), Status.SUCCESS);
  for (const bad of [0, 2, 999, 0xffffffff]) {
    assert.is(store.read(bad, 0, 1, one), Status.INVALID_NAMESPACE_OR_FORMAT);
    assert.is(store.write(bad, 0, 1, one), Status.INVALID_NAMESPACE_OR_FORMAT);
    assert.is(store.deallocate(bad, 0, 1), Status.INVALID_NAMESPACE_OR_FORMAT);
    assert.is(store.writeZeroes(bad, 0, 1), Status.INVALID_NAMESPACE_OR_FORMAT);
  }
  assert.throws(() => store.read(nsid, -1, 1, one), (e: any) => e instanceof RangeError);
  assert.throws(() => store.read(nsid, 0, 1, 'text' as any), (e: any) => e instanceof TypeError);
  assert.throws(() => store.write(nsid, 0, 1, one, 'yes' as any), (e: any) => e instanceof TypeError);
  assert.throws(() => new EmuStore({ kind: 'tape' as any }), (e: any) => e instanceof RangeError);
  assert.throws(() => new EmuStore({ kind: 'memory', sizeBytes: 1.5 }), (e: any) => e instanceof TypeError);
  assert.is(storageCode(() => new EmuStore({ kind: 'memory', sizeBytes: 8 * MiB, chunkBytes: 3000 })), 'EINVAL');
  assert.is(storageCode(() => new EmuStore({ kind: 'memory' })), 'EINVAL');
  assert.is(storageCode(() => new EmuStore({ kind: 'file', paths: [] })), 'EINVAL');
  store.close();
  assert.is(store.closed, true);
  assert.is(storageCode(() => store.read(nsid, 0, 1, one)), 'ECLOSED');
  assert.is(storageCode(() => store.namespaces()), 'ECLOSED');
  assert.is(storageCode(() => store.freeBytes), 'ECLOSED');
  assert.is(storageCode(() => store.close()), 'ECLOSED');
});

test('a full pool fails writes with CAPACITY_EXCEEDED and loses nothing already written', () => {
  const chunkBytes = 64 * KiB;
  const store = open({ kind: 'memory', sizeBytes: 4 * MiB, chunkBytes });
  const chunks = store.capacityBytes / chunkBytes;
  const blocksPerChunk = chunkBytes / 4096;
  // Thin: two namespaces that could each fill the whole pool.
  const a = store.createNamespace(store.capacityBytes / 4096, 4096);
  const b = store.createNamespace(store.capacityBytes / 4096, 4096);
  let op = 1;
  const written: [number, number, number][] = [];
  for (let chunk = 0; chunk < chunks; chunk++) {
    const nsid = chunk % 2 === 0 ? a : b;
    const lba = chunk * blocksPerChunk + 1;
    assert.is(store.write(nsid, lba, 1, patternBuffer(1, 4096, op, nsid, lba)), Status.SUCCESS);
    written.push([nsid, lba, op++]);
  }
  assert.is(store.freeBytes, 0);
  // Writes into allocated chunks still work; new chunks cannot be had.
  assert.is(store.write(a, 2, 1, patternBuffer(1, 4096, 999, a, 2)), Status.SUCCESS);
  assert.is(store.write(a, 1 * blocksPerChunk, 1, Buffer.alloc(4096, 1)), Status.CAPACITY_EXCEEDED);
  // A write spanning an allocated and a missing chunk fails as a whole, and
  // leaves the allocated part untouched.
  const span = patternBuffer(2, 4096, 1000, a, blocksPerChunk - 1);
  assert.is(store.write(a, blocksPerChunk - 1, 2, span), Status.CAPACITY_EXCEEDED);
  expectBlocks(store, a, blocksPerChunk - 1, 4096, [0]);
  for (const [nsid, lba, id] of written) expectBlocks(store, nsid, lba, 4096, [id]);
  expectBlocks(store, a, 2, 4096, [999]);
  // Freeing a chunk makes room again.
  assert.is(store.deallocate(b, blocksPerChunk, blocksPerChunk), Status.SUCCESS);
  assert.is(store.freeBytes, chunkBytes);
  assert.is(store.counters().dirtyChunkZeroings, 0);
  assert.is(store.write(a, blocksPerChunk - 1, 2, span), Status.SUCCESS);
  // The chunk b gave back is reused: zeroed first, so b's old block 1 is not visible to a.
  assert.is(store.counters().dirtyChunkZeroings, 1);
  expectBlocks(store, a, blocksPerChunk - 1, 4096, [1000, 1000, 0, 0]);
  expectBlocks(store, b, blocksPerChunk, 4096, new Array(blocksPerChunk).fill(0));
  store.close();
});

test('namespace creation: sizes, block sizes, nsid exhaustion and stable distinct ids', () => {
  const store = open({ kind: 'memory', sizeBytes: 8 * MiB, chunkBytes: 64 * KiB });
  let error = storageError(() => store.createNamespace(store.capacityBytes / 512 + 1, 512));
  assert.is(error.code, 'NAMESPACE_INSUFFICIENT_CAPACITY');
  assert.equal(error.status, { sct: 1, sc: 0x15, dnr: false, more: false });
  assert.is(storageCode(() => store.createNamespace(8, 1024)), 'INVALID_FORMAT');
  assert.is(storageCode(() => store.createNamespace(0, 512)), 'INVALID_FIELD');
  const ids = new Set<string>();
  for (let i = 1; i <= 1024; i++) assert.is(store.createNamespace(8, 4096), i);
  assert.is(storageCode(() => store.createNamespace(8, 4096)), 'NAMESPACE_ID_UNAVAILABLE');
  for (const ns of store.namespaces()) {
    assert.match(ns.uuid, /^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
    assert.match(ns.nguid, /^[0-9a-f]{32}$/);
    ids.add(ns.uuid);
    ids.add(ns.nguid);
  }
  assert.is(ids.size, 2048, 'every uuid and nguid is distinct');
  store.deleteNamespace(500);
  assert.is(store.createNamespace(8, 512), 500, 'the lowest free nsid is reused');
  store.close();
});

test('resize grows and shrinks; shrinking frees chunks and the dropped range reads zeroes after regrowth', () => {
  const chunkBytes = 64 * KiB;
  const blocksPerChunk = chunkBytes / 512;
  const dir = tempDir();
  const path = join(dir, 'pool');
  let store = open({ kind: 'file', paths: [path], sizeBytes: 16 * MiB, chunkBytes });
  const nsid = store.createNamespace(4 * blocksPerChunk, 512);
  const total = 4 * blocksPerChunk;
  assert.is(store.write(nsid, 0, total, patternBuffer(total, 512, 3, nsid, 0)), Status.SUCCESS);
  const full = store.freeBytes;
  assert.is(store.write(nsid, total, 1, Buffer.alloc(512)), Status.LBA_OUT_OF_RANGE);
  store.resizeNamespace(nsid, 8 * blocksPerChunk);
  assert.is(store.namespaces()[0]!.sizeBlocks, 8 * blocksPerChunk);
  assert.is(store.write(nsid, 6 * blocksPerChunk, 1, patternBuffer(1, 512, 4, nsid, 6 * blocksPerChunk)), Status.SUCCESS);
  // Shrink into the middle of chunk 1: chunks 2.. go, chunk 1 keeps its head.
  const keep = blocksPerChunk + 10;
  store.resizeNamespace(nsid, keep);
  assert.is(store.freeBytes, full + 2 * chunkBytes);
  assert.is(store.namespaces()[0]!.allocatedBlocks, keep);
  assert.is(store.read(nsid, keep, 1, Buffer.alloc(512)), Status.LBA_OUT_OF_RANGE);
  store.close();
  store = open({ kind: 'file', paths: [path] });
  assert.is(store.namespaces()[0]!.sizeBlocks, keep);
  store.resizeNamespace(nsid, 8 * blocksPerChunk);
  const expected = new Array(8 * blocksPerChunk).fill(0);
  for (let i = 0; i < keep; i++) expected[i] = 3;
  expectBlocks(store, nsid, 0, 512, expected);
  assert.is(storageCode(() => store.resizeNamespace(nsid, 0)), 'INVALID_FIELD');
  assert.is(storageCode(() => store.resizeNamespace(nsid, store.capacityBytes / 512 + 1)), 'NAMESPACE_INSUFFICIENT_CAPACITY');
  assert.is(storageCode(() => store.resizeNamespace(77, 8)), 'INVALID_NAMESPACE_OR_FORMAT');
  store.close();
});

test('delete frees every chunk; a recreated namespace starts empty', () => {
  const chunkBytes = 64 * KiB;
  const dir = tempDir();
  const path = join(dir, 'pool');
  let store = open({ kind: 'file', paths: [path], sizeBytes: 16 * MiB, chunkBytes });
  const empty = store.freeBytes;
  const nsid = store.createNamespace(2048, 512);
  assert.is(store.write(nsid, 0, 2048, patternBuffer(2048, 512, 8, nsid, 0)), Status.SUCCESS);
  assert.is(store.freeBytes, empty - 16 * chunkBytes);
  store.deleteNamespace(nsid);
  assert.is(store.freeBytes, empty);
  assert.equal(store.namespaces(), []);
  assert.is(store.read(nsid, 0, 1, Buffer.alloc(512)), Status.INVALID_NAMESPACE_OR_FORMAT);
  assert.is(storageCode(() => store.deleteNamespace(nsid)), 'INVALID_NAMESPACE_OR_FORMAT');
  const again = store.createNamespace(2048, 512);
  assert.is(again, nsid);
  expectBlocks(store, again, 0, 512, new Array(2048).fill(0));
  assert.is(store.write(again, 5, 1, patternBuffer(1, 512, 9, again, 5)), Status.SUCCESS);
  const expected = new Array(2048).fill(0);
  expected[5] = 9;
  expectBlocks(store, again, 0, 512, expected);
  store.close();
  store = open({ kind: 'file', paths: [path] });
  expectBlocks(store, again, 0, 512, expected);
  assert.is(store.freeBytes, empty - chunkBytes);
  store.close();
});

test('attachments, QoS limits and namespace ids persist across close and reopen', () => {
  const dir = tempDir();
  const path = join(dir, 'pool');
  let store = open({ kind: 'file', paths: [path], sizeBytes: 8 * MiB });
  const a = store.createNamespace(1000, 512);
  const b = store.createNamespace(100, 4096);
  store.attach(a, 1);
  store.attach(a, 0);
  store.attach(b, 3);
  store.attach(a, 7);
  assert.is(storageCode(() => store.attach(a, 1)), 'NAMESPACE_ALREADY_ATTACHED');
  assert.is(storageCode(() => store.attach(99, 1)), 'INVALID_NAMESPACE_OR_FORMAT');
  store.detach(a, 0);
  assert.is(storageCode(() => store.detach(b, 1)), 'NAMESPACE_NOT_ATTACHED');
  store.setLimits(1, 10_000, 100 * MiB);
  store.setLimits(3, 0, 5 * MiB);
  store.setLimits(9, 5, 0);
  store.setLimits(9, 0, 0); // back to unlimited: no record
  const before = store.namespaces();
  store.close();
  store = open({ kind: 'file', paths: [path] });
  const after = store.namespaces();
  assert.equal(after, before);
  assert.equal(after.map((ns) => ns.attached), [[1, 7], [3]]);
  assert.equal(store.limits(), [
    { cntlid: 1, iops: 10_000, bytesPerSecond: 100 * MiB },
    { cntlid: 3, iops: 0, bytesPerSecond: 5 * MiB },
  ]);
  store.close();
});

test('a pool of two sparse files spreads chunks over both and reopens whole', () => {
  const chunkBytes = 256 * KiB;
  const dir = tempDir();
  const paths = [join(dir, 'm0'), join(dir, 'm1')];
  let store = open({ kind: 'file', paths, sizeBytes: 16 * MiB, chunkBytes });
  for (const path of paths) {
    assert.is(statSync(path).size, 16 * MiB);
    assert.ok(statSync(path).blocks * 512 < 4 * MiB, 'members are created sparse');
  }
  const capacity = store.capacityBytes;
  assert.ok(capacity > 16 * MiB && capacity < 32 * MiB);
  const blocks = capacity / 4096;
  const nsid = store.createNamespace(blocks, 4096);
  // Fill the namespace (and so both members) in 1 MiB writes.
  for (let lba = 0; lba < blocks; lba += 256) {
    const count = Math.min(256, blocks - lba);
    assert.is(store.write(nsid, lba, count, patternBuffer(count, 4096, 1 + lba, nsid, lba)), Status.SUCCESS);
  }
  assert.is(store.freeBytes, 0);
  assert.ok(statSync(paths[1]!).blocks * 512 > 8 * MiB, 'the second member holds data');
  store.close();
  store = open({ kind: 'file', paths });
  const buffer = Buffer.alloc(256 * 4096);
  for (let lba = 0; lba < blocks; lba += 256) {
    const count = Math.min(256, blocks - lba);
    assert.is(store.read(nsid, lba, count, buffer.subarray(0, count * 4096)), Status.SUCCESS);
    for (let i = 0; i < count; i++)
      if (decodeBlock(buffer, i * 4096, 4096, nsid, lba + i) !== 1 + lba) assert.unreachable(`lba ${lba + i} lost`);
  }
  store.close();
});

test('refuses wrong, reordered, resized, foreign, busy and unformatted pools with clear errors', () => {
  const dir = tempDir();
  const paths = [join(dir, 'm0'), join(dir, 'm1')];
  const store = open({ kind: 'file', paths, sizeBytes: 8 * MiB, chunkBytes: 64 * KiB });
  store.createNamespace(64, 512);
  let error = storageError(() => new EmuStore({ kind: 'file', paths }));
  assert.is(error.code, 'EBUSY');
  assert.match(error.message, /already open/);
  store.close();

  error = storageError(() => new EmuStore({ kind: 'file', paths: [paths[1]!, paths[0]!] }));
  assert.is(error.code, 'EMISMATCH');
  assert.match(error.message, /reordered/);
  error = storageError(() => new EmuStore({ kind: 'file', paths: [paths[0]!] }));
  assert.is(error.code, 'EMISMATCH');
  assert.match(error.message, /has 2 member\(s\), 1 given/);
  error = storageError(() => new EmuStore({ kind: 'file', paths, chunkBytes: MiB }));
  assert.is(error.code, 'EMISMATCH');
  assert.match(error.message, /65536-byte chunks/);
  error = storageError(() => new EmuStore({ kind: 'file', paths: [paths[0]!, paths[0]!] }));
  assert.is(error.code, 'EINVAL');
  assert.match(error.message, /listed twice/);

  // A member of another store in second place.
  const other = [join(dir, 'o0'), join(dir, 'o1')];
  open({ kind: 'file', paths: other, sizeBytes: 8 * MiB, chunkBytes: 64 * KiB }).close();
  error = storageError(() => new EmuStore({ kind: 'file', paths: [paths[0]!, other[1]!] }));
  assert.is(error.code, 'EMISMATCH');
  assert.match(error.message, /belongs to store/);

  // A blank file where the store expects member 1 is not formatted over.
  const blank = join(dir, 'blank');
  writeFileSync(blank, '');
  truncateSync(blank, 8 * MiB);
  error = storageError(() => new EmuStore({ kind: 'file', paths: [paths[0]!, blank] }));
  assert.is(error.code, 'EMISMATCH');
  // ... nor is a pool whose member 0 is blank but member 1 belongs to a store.
  error = storageError(() => new EmuStore({ kind: 'file', paths: [blank, paths[1]!] }));
  assert.is(error.code, 'EMISMATCH');
  assert.match(error.message, /refusing to format/);

  // Someone else's data.
  const foreign = join(dir, 'foreign');
  writeFileSync(foreign, Buffer.alloc(8 * MiB, 0x42));
  error = storageError(() => new EmuStore({ kind: 'file', paths: [foreign] }));
  assert.is(error.code, 'ENOTBLANK');
  assert.ok(fileBytes(foreign, 0, 4096).every((byte) => byte === 0x42), 'foreign data untouched');

  // Missing or unformatted without create.
  error = storageError(() => new EmuStore({ kind: 'file', paths: [join(dir, 'missing')], create: false }));
  assert.is(error.code, 'ENOENT');
  error = storageError(() => new EmuStore({ kind: 'file', paths: [blank], create: false }));
  assert.is(error.code, 'ENOTFORMATTED');
  error = storageError(() => new EmuStore({ kind: 'file', paths: [join(dir, 'missing')] }));
  assert.is(error.code, 'ENOENT');
  assert.match(error.message, /sizeBytes/);
  // Too small to hold the metadata and a chunk.
  error = storageError(() => new EmuStore({ kind: 'file', paths: [join(dir, 'tiny')], sizeBytes: MiB }));
  assert.is(error.code, 'EINVAL');
  assert.match(error.message, /no whole chunk/);

  // A member that changed size.
  truncateSync(paths[1]!, 9 * MiB);
  error = storageError(() => new EmuStore({ kind: 'file', paths }));
  assert.is(error.code, 'EMISMATCH');
  assert.match(error.message, /resized/);
  truncateSync(paths[1]!, 8 * MiB);
  open({ kind: 'file', paths }).close();

  // A corrupted label.
  flipByte(paths[0]!, 100);
  error = storageError(() => new EmuStore({ kind: 'file', paths }));
  assert.is(error.code, 'ECORRUPT');
  assert.match(error.message, /label checksum/);
  flipByte(paths[0]!, 100);
  open({ kind: 'file', paths }).close();
});

test('a corrupted newest control block falls back to the older one; both corrupted is refused', () => {
  const dir = tempDir();
  const path = join(dir, 'pool');
  let store = open({ kind: 'file', paths: [path], sizeBytes: 8 * MiB, chunkBytes: 64 * KiB });
  const first = store.createNamespace(128, 512);
  assert.is(store.write(first, 0, 1, patternBuffer(1, 512, 1, first, 0)), Status.SUCCESS);
  const second = store.createNamespace(256, 4096);
  assert.is(store.write(second, 3, 1, patternBuffer(1, 4096, 2, second, 3)), Status.SUCCESS);
  store.close();
  const sequenceOf = (slot: number) => {
    const header = fileBytes(path, CONTROL_OFFSET + slot * CONTROL_SLOT_BYTES, 32);
    return header.subarray(0, 8).toString('latin1') === 'offpathC' ? header.readBigUInt64LE(16) : -1n;
  };
  const newest = sequenceOf(0) > sequenceOf(1) ? 0 : 1;
  // A bit flip in the namespace table of the newest slot.
  flipByte(path, CONTROL_OFFSET + newest * CONTROL_SLOT_BYTES + 200);
  store = open({ kind: 'file', paths: [path] });
  assert.equal(store.namespaces().map((ns) => ns.nsid), [first], 'the older block knows only the first namespace');
  expectBlocks(store, first, 0, 512, [1]);
  // The second namespace's chunk was reclaimed as an orphan.
  assert.is(store.freeBytes, store.capacityBytes - 64 * KiB);
  // New commits go on working (and overwrite the damaged slot).
  const third = store.createNamespace(64, 512);
  store.close();
  store = open({ kind: 'file', paths: [path] });
  assert.equal(store.namespaces().map((ns) => ns.nsid), [first, third]);
  store.close();
  flipByte(path, CONTROL_OFFSET + 150);
  flipByte(path, CONTROL_OFFSET + CONTROL_SLOT_BYTES + 150);
  const error = storageError(() => new EmuStore({ kind: 'file', paths: [path] }));
  assert.is(error.code, 'ECORRUPT');
  assert.match(error.message, /both control blocks/);
});

test('a corrupted newest chunk map page copy falls back to the older copy', () => {
  const dir = tempDir();
  const path = join(dir, 'pool');
  let store = open({ kind: 'file', paths: [path], sizeBytes: 8 * MiB, chunkBytes: 64 * KiB });
  const nsid = store.createNamespace(1024, 512);
  // First allocation: written to copy 1 of page 0 (copy 0 holds the format).
  assert.is(store.write(nsid, 0, 1, patternBuffer(1, 512, 1, nsid, 0)), Status.SUCCESS);
  assert.is(store.flush(), Status.SUCCESS);
  // Second allocation after the flush: the durable copy is kept, the other rewritten.
  assert.is(store.write(nsid, 128, 1, patternBuffer(1, 512, 2, nsid, 128)), Status.SUCCESS);
  store.close();
  const pageSequence = (copy: number) => fileBytes(path, MAP_OFFSET + copy * 4096 + 8, 8).readBigUInt64LE(0);
  const newest = pageSequence(0) > pageSequence(1) ? 0 : 1;
  flipByte(path, MAP_OFFSET + newest * 4096 + 40);
  store = open({ kind: 'file', paths: [path] });
  // The older copy knows only the first allocation: the second write is lost
  // with its map entry (what a torn, unflushed page write would cost).
  expectBlocks(store, nsid, 0, 512, [1]);
  expectBlocks(store, nsid, 128, 512, [0]);
  assert.is(store.namespaces()[0]!.allocatedBlocks, 128);
  store.close();
  flipByte(path, MAP_OFFSET + (1 - newest) * 4096 + 40);
  const error = storageError(() => new EmuStore({ kind: 'file', paths: [path] }));
  assert.is(error.code, 'ECORRUPT');
  assert.match(error.message, /map page 0/);
});

for (const [kind, blockBytes] of [['memory', 512], ['file', 4096], ['file', 512]] as const) {
  test(`concurrent I/O from ${kind === 'memory' ? 4 : 3} native threads on a ${kind} store (${blockBytes}-byte blocks) keeps every thread's data`, () => {
    const options: EmuStoreOptions =
      kind === 'memory'
        ? { kind, sizeBytes: 8 * MiB, chunkBytes: 64 * KiB }
        : { kind, paths: [join(tempDir(), 'pool')], sizeBytes: 8 * MiB, chunkBytes: 64 * KiB };
    const store = open(options);
    const nsid = store.createNamespace((4 * MiB) / blockBytes, blockBytes);
    const threads = kind === 'memory' ? 4 : 3;
    const result = store.stress({ nsid, threads, durationMs: 400, seed: blockBytes });
    assert.is(result.error, '');
    assert.ok(result.operations > 1000, `only ${result.operations} operations`);
    assert.ok(result.chunkFrees > 10, 'whole chunks were freed and reallocated meanwhile');
    const counters = store.counters();
    assert.ok(counters.chunkFrees >= result.chunkFrees / 2 && counters.chunkAllocations >= counters.chunkFrees);
    store.close();
  });
}

// O_DIRECT through kind 'block' on a regular file (where the filesystem
// allows it: ext4/xfs do, tmpfs does not), with misaligned memory and
// 512-byte blocks on a 4096-byte direct-I/O granule: bounce buffers and
// read-modify-write.
test('block kind (O_DIRECT) bounces misaligned I/O and read-modify-writes partial device blocks', () => {
  const dir = tempDir();
  const path = join(dir, 'direct');
  writeFileSync(path, '');
  truncateSync(path, 16 * MiB);
  let store: ReturnType<typeof open>;
  try {
    store = open({ kind: 'block', paths: [path], chunkBytes: 64 * KiB });
  } catch (error) {
    if (error instanceof StorageError && error.code === 'EINVAL' && /O_DIRECT/.test(error.message)) {
      console.log(`  (skipped: ${tmpdir()} does not support O_DIRECT)`);
      return;
    }
    throw error;
  }
  runBlockChecks(store, path);
});

function runBlockChecks(store: ReturnType<typeof open>, path: string) {
  assert.is(store.volatileWriteCache, true);
  const small = store.createNamespace(2048, 512);
  const large = store.createNamespace(256, 4096);
  const expectedSmall = new Array(2048).fill(0);
  const next = prng(3);
  for (let op = 1; op <= 200; op++) {
    const blocks = 1 + Math.floor(next() * 20);
    const lba = Math.floor(next() * (2048 - blocks));
    const data = patternBuffer(blocks, 512, op, small, lba);
    // Copy into a buffer at an odd offset so the memory is misaligned.
    const carrier = Buffer.alloc(data.length + 3);
    data.copy(carrier, 3);
    const segments = next() < 0.5 ? [carrier.subarray(3)] : [carrier.subarray(3, 700), carrier.subarray(700)];
    assert.is(store.write(small, lba, blocks, segments, next() < 0.1), Status.SUCCESS);
    for (let i = 0; i < blocks; i++) expectedSmall[lba + i] = op;
    if (op % 50 === 0) {
      assert.is(store.deallocate(small, lba + 1, 3), Status.SUCCESS);
      for (let i = 1; i < 4 && lba + i < 2048; i++) expectedSmall[lba + i] = 0;
    }
  }
  const aligned = patternBuffer(64, 4096, 500, large, 10);
  assert.is(store.write(large, 10, 64, aligned), Status.SUCCESS);
  const misalignedRead = Buffer.alloc(2048 * 512 + 5).subarray(5);
  assert.is(store.read(small, 0, 2048, misalignedRead), Status.SUCCESS);
  for (let i = 0; i < 2048; i++)
    if (decodeBlock(misalignedRead, i * 512, 512, small, i) !== expectedSmall[i]) assert.unreachable(`block ${i}`);
  assert.is(store.writeZeroes(small, 3, 5, true), Status.SUCCESS);
  for (let i = 3; i < 8; i++) expectedSmall[i] = 0;
  assert.is(store.flush(), Status.SUCCESS);
  // Concurrent read-modify-write of shared device blocks must not lose updates.
  const churn = store.createNamespace((2 * MiB) / 512, 512);
  const result = store.stress({ nsid: churn, threads: 3, durationMs: 300, seed: 9 });
  assert.is(result.error, '');
  assert.ok(result.operations > 500, `only ${result.operations} operations`);
  store.close();
  const reopened = open({ kind: 'block', paths: [path] });
  expectBlocks(reopened, small, 0, 512, expectedSmall);
  expectBlocks(reopened, large, 10, 4096, new Array(64).fill(500));
  reopened.close();
}

// A real block device: a loop device over a temporary file, with 4096-byte
// logical blocks so the 512-byte namespace goes through read-modify-write.
// Needs root and losetup; reports itself skipped otherwise.
test('block kind on a loop device', () => {
  if (process.getuid?.() !== 0 || !['/sbin/losetup', '/usr/sbin/losetup'].some((path) => existsSync(path))) {
    console.log('  (skipped: needs root and losetup)');
    return;
  }
  const dir = tempDir();
  const backing = join(dir, 'loop-backing');
  writeFileSync(backing, '');
  truncateSync(backing, 16 * MiB);
  let device: string;
  try {
    device = execFileSync('losetup', ['--find', '--show', '--sector-size', '4096', backing], { encoding: 'utf8' }).trim();
  } catch (error) {
    console.log(`  (skipped: losetup failed: ${String(error).split('\n')[0]})`);
    return;
  }
  try {
    const store = open({ kind: 'block', paths: [device], chunkBytes: 64 * KiB });
    runBlockChecks(store, device);
  } finally {
    execFileSync('losetup', ['--detach', device]);
  }
});

test.after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

test.run();
