// The store's test modes: injected media errors and slow commands, a Flush
// broken on purpose, and the power-loss simulation's model — what survives a
// cut (flushed, FUA, written back by a full cache), what does not, torn
// writes at the tear granularity, cuts in the middle of a command and during
// an open, images on files, and a process that dies with its power.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StorageError } from '../libstorage/errors.js';
import { EmuStore, Status, decodeBlock, patternBuffer } from './fixtures/store-pattern.js';
import { PowerStore, imageOfFailedOpen, type PowerStoreOptions } from './sim/power-store.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const here = dirname(fileURLToPath(import.meta.url));
const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'offpath-faults-'));
  dirs.push(dir);
  return dir;
}

function memory(extra: Partial<Extract<PowerStoreOptions, { kind: string }>> = {}) {
  return new PowerStore({ kind: 'memory', sizeBytes: 8 * MiB, chunkBytes: 64 * KiB, ...extra });
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

/** Which operation wrote each block (0: zeroes, -1: anything else). */
function versions(store: PowerStore, nsid: number, lba: number, blocks: number, blockBytes: number): number[] {
  const buffer = Buffer.alloc(blocks * blockBytes);
  assert.is(store.read(nsid, lba, blocks, buffer), Status.SUCCESS);
  return Array.from({ length: blocks }, (_, i) => decodeBlock(buffer, i * blockBytes, blockBytes, nsid, lba + i));
}

function elapsedMs(fn: () => void): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}

test('injected media errors: reads fail with UNRECOVERED_READ_ERROR, writes with WRITE_FAULT, nothing else changes', () => {
  const store = memory();
  const nsid = store.createNamespace(64, 4096);
  assert.is(store.write(nsid, 0, 16, patternBuffer(16, 4096, 1, nsid, 0)), Status.SUCCESS);
  store.injectMediaError(nsid, 4, 'read', 2); // blocks 4 and 5
  const buffer = Buffer.alloc(4096 * 3);
  assert.is(store.read(nsid, 5, 3, buffer), Status.UNRECOVERED_READ_ERROR, 'a read overlapping the bad blocks');
  assert.is(store.read(nsid, 6, 3, buffer), Status.SUCCESS, 'a read next to them');
  assert.is(store.read(nsid, 0, 4, Buffer.alloc(4 * 4096)), Status.SUCCESS);
  assert.is(store.write(nsid, 4, 1, patternBuffer(1, 4096, 2, nsid, 4)), Status.SUCCESS, "a 'read' error lets writes through");
  store.injectMediaError(nsid, 10, 'write');
  assert.is(store.write(nsid, 8, 4, patternBuffer(4, 4096, 3, nsid, 8)), Status.WRITE_FAULT);
  assert.is(store.writeZeroes(nsid, 10, 1), Status.WRITE_FAULT);
  assert.equal(versions(store, nsid, 8, 4, 4096), [1, 1, 1, 1], 'the failed write moved no data');
  assert.is(store.deallocate(nsid, 8, 4), Status.SUCCESS, 'deallocation is not a write to the medium');
  // Errors belong to one namespace; unallocated blocks fail too.
  const other = store.createNamespace(64, 512);
  assert.is(store.read(other, 5, 1, Buffer.alloc(512)), Status.SUCCESS);
  store.injectMediaError(other, 60, 'both');
  assert.is(store.read(other, 60, 1, Buffer.alloc(512)), Status.UNRECOVERED_READ_ERROR);
  assert.is(store.write(other, 60, 1, Buffer.alloc(512)), Status.WRITE_FAULT);
  store.clearMediaErrors(other);
  assert.is(store.read(other, 60, 1, Buffer.alloc(512)), Status.SUCCESS);
  assert.is(store.read(nsid, 5, 1, Buffer.alloc(4096)), Status.UNRECOVERED_READ_ERROR, 'clearing one namespace keeps the others');
  store.clearMediaErrors();
  assert.is(store.read(nsid, 5, 1, Buffer.alloc(4096)), Status.SUCCESS);
  assert.throws(() => store.injectMediaError(nsid, 0, 'sideways' as 'read'), (e: unknown) => e instanceof RangeError);
  store.close();
  // The same from the options (how the emulator process gets them).
  const configured = memory({ faults: { mediaErrors: [{ nsid: 1, lba: 3, kind: 'read' }] } });
  const first = configured.createNamespace(8, 4096);
  assert.is(configured.read(first, 0, 8, Buffer.alloc(8 * 4096)), Status.UNRECOVERED_READ_ERROR);
  configured.close();
});

test('an injected delay makes every data command measurably slow, on one namespace or all', () => {
  const store = memory();
  const slow = store.createNamespace(16, 4096);
  const fast = store.createNamespace(16, 4096);
  const block = Buffer.alloc(4096);
  const baseline = elapsedMs(() => store.read(slow, 0, 1, block));
  store.setCommandDelay(30_000, slow);
  const delayed = elapsedMs(() => assert.is(store.read(slow, 0, 1, block), Status.SUCCESS));
  assert.ok(delayed >= 29, `a delayed read took ${delayed.toFixed(1)} ms`);
  assert.ok(elapsedMs(() => store.write(slow, 1, 1, block)) >= 29, 'writes are delayed too');
  assert.ok(elapsedMs(() => store.read(fast, 0, 1, block)) < 25, 'another namespace is not');
  store.setCommandDelay(20_000);
  assert.ok(elapsedMs(() => store.read(fast, 0, 1, block)) >= 19, 'a delay for all namespaces');
  assert.ok(elapsedMs(() => store.flush()) >= 19, 'Flush is delayed as well');
  store.setCommandDelay(0);
  const after = elapsedMs(() => store.read(slow, 0, 1, block));
  assert.ok(after < 25, `back to normal: ${after.toFixed(1)} ms (baseline ${baseline.toFixed(1)} ms)`);
  store.close();
});

test('power-loss mode: flushed and FUA data survive a cut, the rest is dropped, and the image reopens', () => {
  const store = memory({ powerLoss: { seed: 1 } });
  assert.is(store.volatileWriteCache, true, 'the simulated cache is a volatile write cache');
  const nsid = store.createNamespace(64, 4096);
  assert.is(store.write(nsid, 0, 8, patternBuffer(8, 4096, 1, nsid, 0)), Status.SUCCESS);
  assert.is(store.write(nsid, 16, 1, patternBuffer(1, 4096, 5, nsid, 16)), Status.SUCCESS); // allocates chunk 1
  assert.is(store.flush(), Status.SUCCESS);
  assert.is(store.powerState().pendingWrites, 0, 'nothing pending after a flush');
  // From here no metadata changes, so the FUA write syncs its own data only.
  assert.is(store.write(nsid, 0, 4, patternBuffer(4, 4096, 2, nsid, 0)), Status.SUCCESS);
  assert.is(store.write(nsid, 20, 4, patternBuffer(4, 4096, 3, nsid, 20), true), Status.SUCCESS);
  assert.is(store.write(nsid, 30, 2, patternBuffer(2, 4096, 4, nsid, 30)), Status.SUCCESS);
  const state = store.powerState();
  assert.ok(state.pendingWrites! >= 2, `pending writes: ${state.pendingWrites}`);
  assert.ok(state.durableWrites! >= 1);
  assert.equal(versions(store, nsid, 0, 8, 4096), [2, 2, 2, 2, 1, 1, 1, 1], 'reads see the cache');
  const image = store.cut({ seed: 5, survive: 0 });
  assert.ok(store.closed && store.powerLost);
  assert.is(storageCode(() => store.read(nsid, 0, 1, Buffer.alloc(4096))), 'ECLOSED');
  assert.is(image.kind, 'memory');
  assert.ok(image.report.dropped >= 2 && image.report.applied === 0, JSON.stringify(image.report));
  const reopened = new PowerStore({ image });
  assert.ok(image.closed, 'the image went to the new store');
  assert.is(storageCode(() => new PowerStore({ image })), 'ECLOSED');
  assert.is(reopened.namespaces().length, 1, 'the namespace was durable when created');
  assert.equal(versions(reopened, nsid, 0, 8, 4096), [1, 1, 1, 1, 1, 1, 1, 1], 'the flushed data, not the unflushed');
  assert.equal(versions(reopened, nsid, 20, 4, 4096), [3, 3, 3, 3], 'the FUA write');
  assert.equal(versions(reopened, nsid, 30, 2, 4096), [0, 0], 'the unflushed write');
  assert.equal(versions(reopened, nsid, 16, 1, 4096), [5]);
  reopened.close();

  // Every pending write landing in issue order: what a process kill leaves.
  const again = memory({ powerLoss: { seed: 2 } });
  const ns = again.createNamespace(64, 4096);
  for (let op = 1; op <= 6; op++) assert.is(again.write(ns, op * 8, 2, patternBuffer(2, 4096, op, ns, op * 8)), Status.SUCCESS);
  const all = new PowerStore({ image: again.cut({ survive: 1, tear: false, inOrder: true }) });
  for (let op = 1; op <= 6; op++) assert.equal(versions(all, ns, op * 8, 2, 4096), [op, op]);
  all.close();
  // In a random order, a block rewritten since the last sync (here the map
  // page the allocations share) may end up as any of its versions: some of
  // the chunks allocated then may be unmapped again, never anything else.
  let unmapped = 0;
  for (let seed = 1; seed <= 10; seed++) {
    const shuffled = memory({ powerLoss: { seed } });
    const id = shuffled.createNamespace(64, 4096);
    for (let op = 1; op <= 3; op++) assert.is(shuffled.write(id, op * 16, 1, patternBuffer(1, 4096, op, id, op * 16)), Status.SUCCESS);
    const reopened = new PowerStore({ image: shuffled.cut({ seed, survive: 1 }) });
    for (let op = 1; op <= 3; op++) {
      const [found] = versions(reopened, id, op * 16, 1, 4096);
      assert.ok(found === op || found === 0, `seed ${seed}: op ${op} left ${found}`);
      if (found === 0) unmapped++;
    }
    reopened.close();
  }
  assert.ok(unmapped > 0, 'some older map page version landed last');
  // Not in power-loss mode: there is nothing to cut.
  const plain = memory();
  assert.is(storageCode(() => plain.cut()), 'EINVAL');
  assert.is(plain.powerState().enabled, false);
  plain.close();
});

test('torn writes: a multi-block write survives in part, at the tear granularity and never finer', () => {
  // 4 KiB tear blocks: every namespace block is old or new, and some cut keeps part of the write.
  let tornSeen = false;
  for (let seed = 1; seed <= 40; seed++) {
    const store = memory({ powerLoss: { seed, tearBytes: 4096 } });
    const nsid = store.createNamespace(64, 4096);
    assert.is(store.write(nsid, 0, 16, patternBuffer(16, 4096, 1, nsid, 0)), Status.SUCCESS);
    assert.is(store.flush(), Status.SUCCESS);
    assert.is(store.write(nsid, 0, 16, patternBuffer(16, 4096, 2, nsid, 0)), Status.SUCCESS);
    const image = store.cut({ seed, tear: true, survive: 0.5 });
    const reopened = new PowerStore({ image });
    const found = versions(reopened, nsid, 0, 16, 4096);
    assert.ok(found.every((v) => v === 1 || v === 2), `seed ${seed}: ${found}`);
    if (image.report.torn > 0) {
      assert.ok(found.includes(1) && found.includes(2), `seed ${seed}: a torn write keeps some blocks only: ${found}`);
      tornSeen = true;
    }
    reopened.close();
  }
  assert.ok(tornSeen, 'some cut tore the write');

  // 512-byte tear blocks under 4 KiB namespace blocks: a block can mix both
  // versions sector by sector (what Identify's AWUPF rules out for real).
  let mixed = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const store = memory({ powerLoss: { seed, tearBytes: 512 } });
    assert.is(store.powerState().tearBytes, 512);
    const nsid = store.createNamespace(64, 4096);
    const before = patternBuffer(4, 4096, 1, nsid, 0);
    const after = patternBuffer(4, 4096, 2, nsid, 0);
    assert.is(store.write(nsid, 0, 4, before, true), Status.SUCCESS);
    assert.is(store.write(nsid, 0, 4, after), Status.SUCCESS);
    const reopened = new PowerStore({ image: store.cut({ seed, tear: true, survive: 0.5 }) });
    const buffer = Buffer.alloc(4 * 4096);
    assert.is(reopened.read(nsid, 0, 4, buffer), Status.SUCCESS);
    for (let sector = 0; sector < 32; sector++) {
      const piece = buffer.subarray(sector * 512, (sector + 1) * 512);
      const old = piece.equals(before.subarray(sector * 512, (sector + 1) * 512));
      const fresh = piece.equals(after.subarray(sector * 512, (sector + 1) * 512));
      assert.ok(old || fresh, `seed ${seed}: sector ${sector} is neither version`);
    }
    for (let i = 0; i < 4; i++) if (decodeBlock(buffer, i * 4096, 4096, nsid, i) === -1) mixed++;
    reopened.close();
  }
  assert.ok(mixed > 0, 'some 4 KiB block was torn between its sectors');
});

test('a broken Flush (a device lying about durability) acknowledges Flush and FUA and keeps nothing — which a cut exposes', () => {
  for (const broken of [false, true]) {
    const store = memory({ powerLoss: { seed: 3 } });
    const nsid = store.createNamespace(16, 4096);
    store.setBrokenFlush(broken);
    assert.is(store.write(nsid, 0, 4, patternBuffer(4, 4096, 1, nsid, 0)), Status.SUCCESS);
    assert.is(store.flush(), Status.SUCCESS, 'Flush reports success either way');
    assert.is(store.write(nsid, 8, 2, patternBuffer(2, 4096, 2, nsid, 8), true), Status.SUCCESS, 'so does a FUA write');
    assert.is(store.writeZeroes(nsid, 0, 1, true), Status.SUCCESS, 'and a FUA Write Zeroes');
    const reopened = new PowerStore({ image: store.cut({ survive: 0 }) });
    assert.equal(versions(reopened, nsid, 0, 4, 4096), broken ? [0, 0, 0, 0] : [0, 1, 1, 1]);
    assert.equal(versions(reopened, nsid, 8, 2, 4096), broken ? [0, 0] : [2, 2]);
    reopened.close();
  }
});

test('a cut armed a few backing writes ahead strikes inside a command, which then fails', () => {
  const store = memory({ powerLoss: { seed: 4 } });
  const nsid = store.createNamespace(256, 4096);
  assert.is(store.write(nsid, 0, 1, patternBuffer(1, 4096, 1, nsid, 0), true), Status.SUCCESS);
  // A FUA write into a fresh chunk: the map page write, then the data write, then a sync.
  store.armCut(1);
  assert.is(store.powerState().cutAt, store.powerState().writes! + 1);
  assert.is(store.write(nsid, 100, 1, patternBuffer(1, 4096, 2, nsid, 100), true), Status.WRITE_FAULT, 'the power went off after the map page write');
  assert.ok(store.powerLost && !store.closed, 'the store is still open, but dead');
  assert.is(store.flush(), Status.WRITE_FAULT);
  assert.is(store.read(nsid, 0, 1, Buffer.alloc(4096)), Status.UNRECOVERED_READ_ERROR);
  const image = store.cut({ seed: 99 });
  assert.ok(image.report.automatic, 'cut() hands over the automatic cut');
  assert.is(image.report.atWrite, store.powerState().lastCut!.atWrite);
  const reopened = new PowerStore({ image });
  assert.equal(versions(reopened, nsid, 0, 1, 4096), [1]);
  const interrupted = versions(reopened, nsid, 100, 1, 4096)[0];
  assert.ok(interrupted === 0 || interrupted === 2, `the interrupted write left ${interrupted}`);
  reopened.close();

  // Seeded: cutWithinWrites picks the same point every time.
  const points = [1, 2].map(() => {
    const seeded = memory({ powerLoss: { seed: 11, cutWithinWrites: 40 } });
    const ns = seeded.createNamespace(512, 512);
    let op = 0;
    while (!seeded.powerLost && op < 100) seeded.write(ns, (op * 37) % 500, 4, patternBuffer(4, 512, ++op, ns, (op * 37) % 500));
    const at = seeded.cut().report.atWrite;
    return at;
  });
  assert.is(points[0], points[1]);
  assert.ok(points[0]! >= 1 && points[0]! <= 40);
});

test('a cut during the open leaves an image with the error; a blank image formats again', () => {
  let sawCut = false;
  for (let writes = 1; writes <= 5; writes++) {
    let image;
    try {
      const store = memory({ powerLoss: { seed: writes, cutAfterWrites: writes, survive: 0.5 } });
      store.armCut(0);
      image = store.cut();
    } catch (error) {
      image = imageOfFailedOpen(error);
      assert.ok(image !== undefined, `an open cut after ${writes} writes: ${String(error)}`);
      sawCut = true;
    }
    const reopened = new PowerStore({ image });
    assert.is(reopened.chunkBytes, 64 * KiB, 'formatted as configured');
    assert.equal(reopened.namespaces(), []);
    const nsid = reopened.createNamespace(8, 4096);
    assert.is(reopened.write(nsid, 0, 1, patternBuffer(1, 4096, 1, nsid, 0)), Status.SUCCESS);
    reopened.close();
  }
  assert.ok(sawCut, 'some cut came during the format');
});

test('file members: the cut lands on the files, which reopen by path once the image is closed', () => {
  const dir = tempDir();
  const paths = [join(dir, 'a.img'), join(dir, 'b.img')];
  const store = new PowerStore({ kind: 'file', paths, sizeBytes: 4 * MiB, chunkBytes: 64 * KiB, powerLoss: { seed: 6 } });
  const nsid = store.createNamespace(1024, 4096);
  for (let chunk = 0; chunk < 40; chunk++)
    assert.is(store.write(nsid, chunk * 16, 1, patternBuffer(1, 4096, 1, nsid, chunk * 16)), Status.SUCCESS);
  assert.is(store.flush(), Status.SUCCESS);
  for (let chunk = 0; chunk < 40; chunk++)
    assert.is(store.write(nsid, chunk * 16, 1, patternBuffer(1, 4096, 2, nsid, chunk * 16)), Status.SUCCESS);
  const image = store.cut({ survive: 0 });
  assert.equal(image.paths, paths);
  assert.is(image.members, 2);
  assert.is(storageCode(() => new EmuStore({ kind: 'file', paths })), 'EBUSY', 'the image still holds the members');
  image.close();
  const reopened = new EmuStore({ kind: 'file', paths });
  for (let chunk = 0; chunk < 40; chunk++) assert.equal(versions(reopened as PowerStore, nsid, chunk * 16, 1, 4096), [1]);
  reopened.close();
});

test('a full cache writes its oldest data back: that part survives a cut', () => {
  const store = memory({ powerLoss: { seed: 8, cacheBytes: 16 * KiB } });
  const nsid = store.createNamespace(64, 4096);
  assert.is(store.flush(), Status.SUCCESS);
  for (let op = 1; op <= 8; op++) assert.is(store.write(nsid, op, 1, patternBuffer(1, 4096, op, nsid, op)), Status.SUCCESS);
  const state = store.powerState();
  assert.ok(state.writtenBack! >= 4 && state.pendingBytes! <= 16 * KiB, JSON.stringify(state));
  assert.ok(state.dirtyBlocks! <= 5, `undo images of written-back blocks are dropped: ${JSON.stringify(state)}`);
  const reopened = new PowerStore({ image: store.cut({ survive: 0 }) });
  const found = versions(reopened, nsid, 1, 8, 4096);
  assert.equal(found.slice(0, 4), [1, 2, 3, 4], `the oldest writes were written back: ${found}`);
  assert.equal(found.slice(6), [0, 0], `the newest were still in the cache: ${found}`);
  reopened.close();
});

test('exitCode: the process dies with its power, and the files recover', () => {
  const dir = tempDir();
  const child = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'sim', 'exit-on-cut.ts'), dir], { encoding: 'utf8' });
  assert.is(child.status, 86, `the child exited ${child.status}: ${child.stderr}`);
  const acknowledged = Math.max(0, ...[...child.stdout.matchAll(/flushed (\d+)/g)].map((match) => Number(match[1])));
  assert.ok(acknowledged > 0, child.stdout);
  const store = new EmuStore({ kind: 'file', paths: [join(dir, 'pool.img')] });
  const [ns] = store.namespaces();
  assert.ok(ns !== undefined);
  const found = versions(store as PowerStore, ns!.nsid, 0, acknowledged, 4096);
  assert.equal(found, Array.from({ length: acknowledged }, (_, i) => i + 1), 'every flushed write is there');
  store.close();
});

test.after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

test.run();
