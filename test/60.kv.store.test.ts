// The KV library on a VSA, without the network: the entry format and its
// checksum, recovery (index rebuilt, torn tail discarded — including a frame
// torn in the middle of its blocks —, stale frames beyond a recovered end
// never resurrected), the log wrapping around the VSA with compaction and
// trim, group commit, values read back from the VSA, expiry.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32, crc32Table } from '../examples/kv/crc.js';
import { FRAME_HEADER_BYTES, RecordType, decodeSuperblock, encodeSuperblock, peekFrame, recordBytes, records, sealFrame, writeRecordHeader } from '../examples/kv/format.js';
import { KvError, KvStore } from '../examples/kv/store.js';
import { closeFixture, openFixture, type VsaFixture } from './helpers/vsa.js';

const BLOCK = 4096;
const LOG_START = 2 * BLOCK;
let fixture: VsaFixture | undefined;

const value = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 0xff));

/** A new, empty log on the fixture's VSA (the superblocks cleared, then formatted on open). */
async function fresh(options = {}): Promise<KvStore> {
  await fixture!.vsa.writeZeroes(0, 2 * BLOCK);
  return KvStore.open(fixture!.vsa, options);
}

async function reopen(store: KvStore, options = {}): Promise<KvStore> {
  await store.close();
  return KvStore.open(fixture!.vsa, options);
}

test.after(() => closeFixture(fixture));

test('CRC-32: the native and the table implementation agree (check value 0xCBF43926)', () => {
  const check = Buffer.from('123456789');
  assert.is(crc32Table(check), 0xcbf43926);
  assert.is(crc32(check), 0xcbf43926);
  const data = value(10_000, 3);
  assert.is(crc32(data), crc32Table(data));
  assert.is(crc32(data.subarray(5000), crc32(data.subarray(0, 5000))), crc32(data));
});

test('format: superblock and frame round trip; any changed byte is caught', () => {
  const sb = { blockBytes: 4096, formatId: 0xdeadbeef, counter: 7, generation: 3, logStart: 8192, logBytes: 1 << 30, tailLsn: 2 ** 40 + 4096, tailSeq: 2 ** 33 + 5 };
  const block = Buffer.alloc(4096);
  encodeSuperblock(sb, block);
  assert.equal(decodeSuperblock(block), sb);
  block[70] ^= 1;
  assert.is(decodeSuperblock(block), null);

  const frame = Buffer.alloc(3 * 4096);
  let at = FRAME_HEADER_BYTES;
  writeRecordHeader(frame, at, RecordType.Set, 3, 9000, 1234.5);
  frame.write('key', at + 24);
  value(9000, 1).copy(frame, at + 27);
  at += recordBytes(3, 9000);
  writeRecordHeader(frame, at, RecordType.Del, 3, 0, 0);
  frame.write('old', at + 24);
  at += recordBytes(3, 0);
  const header = { formatId: 42, generation: 2, seq: 9, lsn: 81920, frameBlocks: 3, payloadBytes: at - FRAME_HEADER_BYTES, recordCount: 2 };
  sealFrame(frame, 0, header);
  const peeked = peekFrame(frame, 0, 42)!;
  assert.equal(peeked, header);
  const list = [...records(frame, 0, peeked)];
  assert.equal(list.map((r) => [r.type, frame.toString('latin1', r.keyStart, r.keyStart + r.keyLength), r.valueLength, r.expireAt]), [
    [RecordType.Set, 'key', 9000, 1234.5],
    [RecordType.Del, 'old', 0, 0],
  ]);
  assert.is(peekFrame(frame, 0, 43), null, 'another format id');
});

test('set, get, delete, expiry; the index is rebuilt from the log on reopen', async () => {
  fixture = await openFixture(1024); // 4 MiB
  let now = 1_000_000;
  let store = await KvStore.open(fixture.vsa, { now: () => now });
  await store.set('a', 'alpha');
  await store.set(Buffer.from([0, 255, 10]), value(20_000, 1)); // binary key, multi-block value
  await store.set('gone', 'x');
  assert.ok(await store.delete('gone'));
  assert.not.ok(await store.delete('never'));
  await store.set('short', 'lived', { ttlMs: 500 });
  await store.set('long', 'lived', { ttlMs: 5000 });
  now += 1000;
  assert.is(await store.get('short'), null);
  store = await reopen(store, { now: () => now });
  assert.is((await store.get('a'))!.toString(), 'alpha');
  assert.ok((await store.get(Buffer.from([0, 255, 10])))!.equals(value(20_000, 1)));
  assert.is(await store.get('gone'), null);
  assert.is(await store.get('short'), null, 'expired before the crash: stays gone');
  assert.is((await store.get('long'))!.toString(), 'lived');
  now += 10_000;
  store = await reopen(store, { now: () => now });
  assert.is(await store.get('long'), null, 'expires by the wall clock across restarts');
  assert.is(store.size, 2);
  const stats = store.stats();
  assert.ok(stats.recoveredFrames >= 5 && !stats.discardedTail);
  await store.close();
});

test('group commit: 2000 concurrent sets go out in a few frames, every one acknowledged', async () => {
  const store = await KvStore.open(fixture!.vsa, {});
  const before = store.stats().batchesWritten;
  await Promise.all(Array.from({ length: 2000 }, (_, i) => store.set(`g:${i}`, value(100, i))));
  const batches = store.stats().batchesWritten - before;
  assert.ok(batches <= 10, `${batches} writes for 2000 sets`);
  for (let i = 0; i < 2000; i += 97) assert.ok((await store.get(`g:${i}`))!.equals(value(100, i)));
  await store.close();
});

test('a multi-key DEL of absent keys stages nothing, and nothing waits for it (sync, close)', async () => {
  const store = await KvStore.open(fixture!.vsa, {});
  await store.set('present', 'x');
  const before = store.stagedSeq;
  const keys = ['absent:1', 'absent:2'].map((key) => Buffer.from(key));
  const seqs = store.atomic(recordBytes(8, 0) * 2, () => keys.map((key) => store.remove(key.toString('latin1'), key)), true);
  assert.equal(seqs, [0, 0]);
  assert.is(store.stagedSeq, before, 'the empty group is nothing to wait for');
  const timeout = new Promise((resolve) => setTimeout(() => resolve('timed out'), 2000).unref());
  assert.is(await Promise.race([store.sync().then(() => 'synced'), timeout]), 'synced');
  assert.is(await Promise.race([store.close().then(() => 'closed'), timeout]), 'closed');
});

/** LSN of the frame holding the newest change, and its VSA offset. */
function lastFrameOffset(store: KvStore): number {
  const stats = store.stats();
  return stats.head; // the next frame would start here; callers step back
}

test('a torn last frame (its middle block never written) is discarded on reopen, and older ones stay', async () => {
  let store = await fresh();
  await store.set('before', 'intact');
  const headBefore = lastFrameOffset(store);
  await store.set('torn', value(5 * BLOCK, 9)); // one frame of 6 blocks
  const headAfter = lastFrameOffset(store);
  assert.is(headAfter - headBefore, 6 * BLOCK);
  await store.close();
  // Put back a block the frame overwrote as it was before: a torn write.
  const logBytes = fixture!.vsa.size - LOG_START;
  const torn = LOG_START + ((headBefore + 3 * BLOCK) % logBytes);
  await fixture!.vsa.write(torn, new Uint8Array(BLOCK));
  store = await KvStore.open(fixture!.vsa, {});
  assert.is((await store.get('before'))!.toString(), 'intact');
  assert.is(await store.get('torn'), null, 'the torn value is not half-visible');
  assert.ok(store.stats().discardedTail);
  assert.is(store.stats().head, headBefore, 'the log goes on where the torn frame began');
  await store.set('after', 'new');
  store = await reopen(store);
  assert.is((await store.get('after'))!.toString(), 'new');
  assert.is(await store.get('torn'), null);
  await store.close();
});

test('frames beyond a torn one are never resurrected after new writes (generations)', async () => {
  let store = await fresh();
  await store.set('a', value(10, 1));
  const torn = store.stats().head;
  await store.set('b', value(10, 2)); // frame 2: will be torn
  await store.set('c', value(10, 3)); // frame 3: intact, but after a hole
  await store.close();
  await fixture!.vsa.write(LOG_START + torn, new Uint8Array(BLOCK)); // destroy frame 2
  store = await KvStore.open(fixture!.vsa, {});
  assert.is(await store.get('b'), null);
  assert.is(await store.get('c'), null, 'nothing after the hole');
  // The next frame takes frame 2's place with the same seq and size; old frame 3 now follows it.
  await store.set('d', value(10, 4));
  assert.is(store.stats().head, torn + BLOCK);
  store = await reopen(store);
  assert.ok((await store.get('d'))!.equals(value(10, 4)));
  assert.is(await store.get('c'), null, 'the stale frame 3 (older generation) is not replayed');
  await store.close();
});

test('an atomic group of large records torn in the middle: none of it is visible', async () => {
  let store = await fresh();
  const head = store.stats().head;
  const a = Buffer.from('m:a');
  const b = Buffer.from('m:b');
  const seq = store.atomic(recordBytes(3, 3 * BLOCK) * 2, () => {
    store.put('m:a', a, value(3 * BLOCK, 1), 0);
    return store.put('m:b', b, value(3 * BLOCK, 2), 0);
  });
  await store.durable(seq);
  const frameBytes = store.stats().head - head;
  assert.ok(frameBytes >= 7 * BLOCK, 'both records in one frame');
  await store.close();
  await fixture!.vsa.write(LOG_START + head + frameBytes - 2 * BLOCK, value(BLOCK, 5)); // scribble over the second record
  store = await KvStore.open(fixture!.vsa, {});
  assert.is(await store.get('m:a'), null);
  assert.is(await store.get('m:b'), null);
  await store.close();
});

test('the log wraps around the VSA many times: compaction keeps live data, trims the rest', async () => {
  await closeFixture(fixture);
  fixture = await openFixture(512); // 2 MiB VSA
  let store = await KvStore.open(fixture.vsa, { cacheBytes: 0 });
  const logBytes = store.stats().logBytes;
  const live = new Map<string, Buffer>();
  let round = 0;
  while (store.stats().head < 6 * logBytes) {
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      const key = `w:${(round * 13 + i * 7) % 150}`;
      const data = value(200 + ((round * 40 + i) % 1500), round * 40 + i);
      live.set(key, data);
      writes.push(store.set(key, data));
    }
    if (round % 5 === 0) {
      const key = `w:${round % 150}`;
      live.delete(key);
      writes.push(store.delete(key).then(() => {}));
    }
    await Promise.all(writes);
    round++;
  }
  const stats = store.stats();
  assert.ok(stats.compactions > 5, `${stats.compactions} compactions`);
  assert.ok(stats.trimmedBytes > 4 * logBytes, 'freed ranges were trimmed');
  assert.ok(stats.usedBytes < logBytes, 'the log never overflows');
  for (const [key, data] of live) assert.ok((await store.get(key))!.equals(data), `${key} (read from the VSA)`);
  assert.ok(store.stats().valueReads > 0);
  store = await reopen(store, { cacheBytes: 0 });
  assert.is(store.size, live.size);
  for (const [key, data] of live) assert.ok((await store.get(key))!.equals(data), `${key} after reopen`);
  await store.close();
});

test('a full log refuses writes with FULL (and a value too large for the log with TOOBIG), then recovers', async () => {
  let store = await fresh({ cacheBytes: 0 });
  assert.throws(() => store.put('huge', Buffer.from('huge'), new Uint8Array(2 << 20), 0), (e: unknown) => e instanceof KvError && e.code === 'TOOBIG');
  let full = 0;
  for (let i = 0; i < 400 && full === 0; i++) {
    try {
      await store.set(`fill:${i}`, value(30_000, i));
    } catch (error) {
      assert.instance(error, KvError);
      assert.is((error as KvError).code, 'FULL');
      full = i;
    }
  }
  assert.ok(full > 0, 'the log filled up with live data');
  for (let i = 0; i < full; i++) await store.delete(`fill:${i}`);
  // Compaction now frees space again.
  for (let tries = 0; ; tries++) {
    try {
      await store.set('after', value(30_000, 1));
      break;
    } catch (error) {
      assert.ok(tries < 200, 'space came back');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  store = await reopen(store);
  assert.ok((await store.get('after'))!.equals(value(30_000, 1)));
  assert.is(store.size, 1);
  await store.close();
});

test('512-byte blocks: frames and superblocks follow the VSA block size; a torn frame is still caught', async () => {
  const small = await openFixture(8192, { blockBytes: 512 }); // 4 MiB of 512-byte blocks
  try {
    let store = await KvStore.open(small.vsa, {});
    await store.set('a', value(100, 1));
    const before = store.stats().head;
    await store.set('b', value(3000, 2)); // 7 blocks of 512
    assert.is(store.stats().head - before, 7 * 512);
    await store.set('c', value(10, 3));
    await store.close();
    store = await KvStore.open(small.vsa, {});
    assert.ok((await store.get('b'))!.equals(value(3000, 2)));
    assert.ok((await store.get('c'))!.equals(value(10, 3)));
    await store.close();
    await small.vsa.write(2 * 512 + before + 3 * 512, new Uint8Array(512)); // tear b in the middle
    store = await KvStore.open(small.vsa, {});
    assert.ok((await store.get('a'))!.equals(value(100, 1)));
    assert.is(await store.get('b'), null);
    assert.is(await store.get('c'), null, 'nothing after the torn frame');
    await store.close();
  } finally {
    await closeFixture(small);
  }
});

test('power durability: frames are written with FUA; a VSA holding something else is refused unless format', async () => {
  let store = await KvStore.open(fixture!.vsa, { durability: 'power' });
  await store.set('p', 'q');
  store = await reopen(store, { durability: 'power' });
  assert.is((await store.get('p'))!.toString(), 'q');
  await store.close();
  await fixture!.vsa.write(0, value(2 * BLOCK, 1));
  await KvStore.open(fixture!.vsa, {}).then(
    () => assert.unreachable('opened garbage'),
    (error) => assert.is((error as KvError).code, 'FORMAT'),
  );
  store = await KvStore.open(fixture!.vsa, { format: true });
  assert.is(store.size, 0);
  await store.close();
});

test.run();
