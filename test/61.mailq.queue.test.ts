// The mail queue as a library, on a VSA of the emulator: layout and
// checksums, size classes and extents, lease / ack / nack / timeout with
// backoff, restart (acked never returns, ids never repeat), crash leftovers
// never half-visible, a full queue, and one shard per worker thread.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { open } from '../libstorage/index.js';
import { crc32c } from '../examples/mailq/crc32c.js';
import {
  EntryState,
  FLAG_EXTENT,
  HEADER_BYTES,
  decodeSuperblock,
  encodeEnvelope,
  encodeSuperblock,
  planLayout,
  readHeader,
  slotIdOf,
  writeHeader,
  type EntryHeader,
} from '../examples/mailq/layout.js';
import { MailQueue } from '../examples/mailq/queue.js';
import { MailqError, type Lease } from '../examples/mailq/shard.js';
import { tsWorker } from './helpers/child.js';
import { closeFixture, openFixture, type VsaFixture } from './helpers/vsa.js';

let f: VsaFixture;
let queue: MailQueue | undefined;

test.before(async () => {
  f = await openFixture(8192, { queues: 3 });
});
test.after(async () => {
  await queue?.close();
  await closeFixture(f);
});

const SMALL = { shards: 1, slots: [16, 8, 4], extentBytesPerShard: 1 << 20 };

/** Closes the queue and the VSA (as a process exit would) and opens both again. */
async function reopen(options: Parameters<typeof MailQueue.open>[1] = {}): Promise<MailQueue> {
  await queue?.close();
  queue = undefined;
  await f.vsa.close();
  f.vsa = await open(f.path);
  queue = await MailQueue.open(f.vsa, options);
  return queue;
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');

test('crc32c, superblock and entry headers: what was not written whole never validates', () => {
  assert.is(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.is(crc32c(Buffer.from('56789'), crc32c(Buffer.from('1234'))), 0xe3069283);
  const sb = planLayout(32 << 20, 4096, { shards: 2, slots: [5, 3, 2], extentBytesPerShard: 1 << 20 });
  assert.equal(
    sb.classes.map((c) => c.slotsPerShard),
    [8, 3, 2],
    '1 KiB slots come in whole blocks per shard',
  );
  const block = encodeSuperblock(sb);
  const back = decodeSuperblock(block)!;
  assert.equal(back.classes, sb.classes);
  assert.equal([...back.uuid], [...sb.uuid]);
  block[100] ^= 1;
  assert.is(decodeSuperblock(block), null);
  const bytes = new Uint8Array(1024);
  const header: EntryHeader = {
    state: EntryState.Queued,
    classIndex: 0,
    flags: 0,
    epoch: 3,
    counter: 7,
    recordBytes: 10,
    recordCrc: 123,
    attempts: 2,
    extentBytes: 0,
    extentOffset: 0,
    notBefore: 1_700_000_000_000,
    enqueuedAt: 1_700_000_000_001,
    slotId: slotIdOf(0, 5),
  };
  writeHeader(bytes, 0, sb.seed, header);
  assert.equal(readHeader(bytes, 0, sb.seed), header);
  assert.is(readHeader(bytes, 0, sb.seed ^ 1), null, "another format's header");
  for (const at of [4, 8, 20, 40, 59]) {
    const torn = bytes.slice();
    torn[at] ^= 0x10;
    assert.is(readHeader(torn, 0, sb.seed), null, `byte ${at} flipped`);
  }
});

test('formats a blank VSA, refuses a foreign one, finds the layout again', async () => {
  await f.vsa.write(0, Buffer.alloc(4096, 0x41));
  try {
    await MailQueue.open(f.vsa, { layout: SMALL });
    assert.unreachable('opened a VSA holding something else');
  } catch (error) {
    assert.instance(error, MailqError);
    assert.is((error as MailqError).code, 'ECORRUPT');
  }
  queue = await MailQueue.open(f.vsa, { layout: SMALL, format: 'always' });
  assert.is(queue.superblock.shards, 1);
  const uuid = [...queue.superblock.uuid];
  await reopen({ format: 'never' });
  assert.equal([...queue!.superblock.uuid], uuid);
  assert.is(queue!.shards[0]!.epoch, 2, 'every open starts a new epoch');
});

test('each message lands in the smallest entry class that holds it; large ones in extents; intact after restart', async () => {
  queue = await reopen({ layout: SMALL, format: 'always' });
  const sizes = [1, 800, 1000, 3000, 4100, 16000, 17000, 300_000];
  const sent = new Map<string, Uint8Array>();
  for (const size of sizes) {
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i++) data[i] = (i * 31 + size) & 0xff;
    sent.set(await queue.enqueue({ from: 'a@example.org', to: ['b@example.net'], size }, data), data);
  }
  await reopen();
  const peeked = await queue!.peek();
  assert.is(peeked.length, sizes.length);
  const placement = peeked.map((m) => (m.extentBytes ? `extent ${m.extentBytes}` : `${m.slotBytes}`));
  // Record = 4-byte length + envelope JSON (~50 bytes) + data; entry = 64-byte header + record.
  assert.equal(placement, ['1024', '1024', '4096', '4096', '16384', '16384', 'extent 32768', 'extent 311296']);
  for (const m of peeked) {
    assert.ok(m.valid);
    assert.equal(Buffer.from(m.data), Buffer.from(sent.get(m.id)!));
  }
});

test('leases in FIFO order; ack removes durably; nack and lease timeouts retry with exponential backoff', async () => {
  queue = await reopen({ layout: SMALL, format: 'always', leaseMs: 150, backoff: { baseMs: 60, maxMs: 1000 } });
  for (let i = 0; i < 3; i++) await queue.enqueue({ from: 'a@example.org', to: ['b@example.net'] }, Buffer.from(`message ${i}`));
  const first = (await queue.dequeue())!;
  assert.is(text(first.data), 'message 0');
  assert.is(first.attempts, 1);
  await first.ack();
  try {
    await first.ack();
    assert.unreachable('acked twice');
  } catch (error) {
    assert.is((error as MailqError).code, 'ELEASE');
  }
  const second = (await queue.dequeue())!;
  assert.is(text(second.data), 'message 1');
  await second.nack();
  // Backoff: attempt 1 failed → 60 ms before it is offered again.
  const third = (await queue.dequeue())!;
  assert.is(text(third.data), 'message 2');
  await third.ack();
  assert.is(await queue.dequeue(), null, 'nothing else is ready during the backoff');
  const t0 = Date.now();
  const again = (await queue.dequeue({ wait: true }))!;
  assert.is(text(again.data), 'message 1');
  assert.ok(Date.now() - t0 >= 40, `retried after ${Date.now() - t0} ms`);
  assert.is(again.attempts, 2);
  // Lease timeout (150 ms), then the backoff for attempt 2 (120 ms): offered a third time.
  const t1 = Date.now();
  const retried = (await queue.dequeue({ wait: true }))!;
  assert.is(text(retried.data), 'message 1');
  assert.is(retried.attempts, 3);
  assert.ok(Date.now() - t1 >= 200, `expired and retried after ${Date.now() - t1} ms`);
  try {
    await again.ack();
    assert.unreachable('acked an expired lease');
  } catch (error) {
    assert.is((error as MailqError).code, 'ELEASE');
  }
  await retried.ack();
  const stats = queue.stats();
  assert.is(stats.queued, 0);
  assert.is(stats.shards[0]!.leaseTimeouts, 1);
  await reopen();
  assert.is(queue!.stats().queued, 0, 'nothing acked comes back');
});

test('restart: acked messages never return, leased and nacked ones do with their attempts, ids never repeat', async () => {
  queue = await reopen({ layout: { ...SMALL, shards: 2 }, format: 'always' });
  const ids: string[] = [];
  for (let i = 0; i < 8; i++) ids.push(await queue.enqueue({ from: 'a@example.org', to: ['b@example.net'] }, Buffer.from(`restart ${i}`)));
  const leases: Lease[] = [];
  for (let i = 0; i < 4; i++) leases.push((await queue.dequeue())!);
  await leases[0]!.ack();
  await leases[1]!.ack();
  await leases[2]!.nack({ delayMs: 0 });
  // leases[3] is still held when the process "exits".
  const acked = new Set([leases[0]!.id, leases[1]!.id]);
  await reopen();
  const after = await queue!.peek();
  assert.is(after.length, 6);
  assert.ok(after.every((m) => !acked.has(m.id)));
  const attempts = Object.fromEntries(after.map((m) => [m.id, m.attempts]));
  assert.is(attempts[leases[2]!.id], 1, 'nacked: one attempt recorded');
  assert.is(attempts[leases[3]!.id], 1, 'leased when the process stopped: counted as an attempt');
  const fresh = await queue!.enqueue({ from: 'a@example.org', to: ['b@example.net'] }, Buffer.from('after restart'));
  assert.ok(!ids.includes(fresh));
  assert.match(fresh, /^\d\.2\.1$/);
  // Drain: everything comes out once, oldest first per shard.
  const seen: string[] = [];
  for (let lease = await queue!.dequeue(); lease; lease = await queue!.dequeue()) {
    seen.push(text(lease.data));
    await lease.ack();
  }
  assert.is(seen.length, 7);
  assert.is(new Set(seen).size, 7);
});

test('crash leftovers are never half-visible: torn records, missing extents, garbage and stale headers', async () => {
  queue = await reopen({ layout: SMALL, format: 'always' });
  const sb = queue.superblock;
  const keep = await queue.enqueue({ from: 'a@example.org', to: ['b@example.net'] }, Buffer.from('the one that was acknowledged'));
  await queue.close();
  queue = undefined;
  const bs = sb.blockBytes;
  const [small, medium, large] = sb.classes;
  const header = (classIndex: number, index: number, record: Uint8Array, extra: Partial<EntryHeader> = {}): EntryHeader => ({
    state: EntryState.Queued,
    classIndex,
    flags: 0,
    epoch: 1,
    counter: 100 + index,
    recordBytes: record.length,
    recordCrc: crc32c(record, sb.seed),
    attempts: 0,
    extentBytes: 0,
    extentOffset: 0,
    notBefore: 0,
    enqueuedAt: Date.now(),
    slotId: slotIdOf(classIndex, index),
    ...extra,
  });
  const record = (body: string) => {
    const envelope = encodeEnvelope({ from: 'ghost@example.org', to: ['b@example.net'] });
    const out = new Uint8Array(envelope.length + body.length);
    out.set(envelope);
    out.set(Buffer.from(body), envelope.length);
    return out;
  };
  // 1 KiB class, block 0 holds slots 0-3; slot 0 is the acknowledged message.
  const block = new Uint8Array(bs);
  await f.vsa.read(small!.offset, block);
  // Slot 1: header landed, record did not (a torn enqueue).
  const r1 = record('torn record');
  writeHeader(block, 1024, sb.seed, header(0, 1, r1));
  block.set(r1.subarray(0, 5), 1024 + HEADER_BYTES);
  // Slot 2: garbage.
  block.fill(0x5a, 2048, 2048 + 200);
  // Slot 3: a whole, valid-looking entry from another format of the VSA.
  const r3 = record('stale format');
  writeHeader(block, 3072, sb.seed ^ 0xffff, header(0, 3, r3));
  block.set(r3, 3072 + HEADER_BYTES);
  await f.vsa.write(small!.offset, block);
  // 4 KiB class, slot 0: header names an extent whose data never arrived.
  const r4 = record('x'.repeat(50_000));
  const e4 = new Uint8Array(bs);
  writeHeader(e4, 0, sb.seed, header(1, 0, r4, { flags: FLAG_EXTENT, extentOffset: sb.extentOffset, extentBytes: 65536 }));
  await f.vsa.write(medium!.offset, e4);
  // 16 KiB class, slot 0: record cut off after its first block.
  const r5 = record('y'.repeat(10_000));
  const e5 = new Uint8Array(3 * bs);
  writeHeader(e5, 0, sb.seed, header(2, 0, r5));
  e5.set(r5.subarray(0, bs - HEADER_BYTES), HEADER_BYTES);
  await f.vsa.write(large!.offset, e5);

  await reopen();
  const left = await queue!.peek();
  assert.equal(
    left.map((m) => m.id),
    [keep],
  );
  assert.is(text(left[0]!.data), 'the one that was acknowledged');
  assert.ok(queue!.stats().shards[0]!.discarded >= 3);
  // The slots are free again and reusable; the survivor is untouched by writes to its block.
  for (let i = 0; i < 6; i++) await queue!.enqueue({ from: 'a@example.org', to: ['b@example.net'] }, Buffer.from(`reuse ${i}`));
  await reopen();
  assert.is((await queue!.peek()).length, 7);
  assert.is(text((await queue!.peek())[0]!.data), 'the one that was acknowledged');
});

test('a full queue and an oversized message are refused; nothing is half-stored', async () => {
  queue = await reopen({ layout: { shards: 1, slots: [4, 1, 1], extentBytesPerShard: 64 * 1024 }, format: 'always' });
  const small = Buffer.alloc(100, 1);
  let stored = 0;
  let refusal: unknown;
  try {
    for (;;) {
      await queue.enqueue({ from: 'a@example.org', to: ['b@example.net'] }, small);
      stored++;
    }
  } catch (error) {
    refusal = error;
  }
  assert.is((refusal as MailqError).code, 'EFULL');
  assert.is(stored, 6, '4 + 1 + 1 entries');
  try {
    await queue.enqueue({ from: 'a@example.org', to: ['b@example.net'] }, Buffer.alloc(200 * 1024));
    assert.unreachable('stored a message larger than the extent space');
  } catch (error) {
    assert.is((error as MailqError).code, 'ETOOBIG');
  }
  const lease = (await queue.dequeue())!;
  await lease.ack();
  await queue.enqueue({ from: 'a@example.org', to: ['b@example.net'] }, small);
  await reopen();
  const all = await queue!.peek();
  assert.is(all.length, 6);
  assert.ok(all.every((m) => m.valid && m.data.length === 100));
});

test('one shard per worker thread: each owns its entries and its queue pair, no locks', async () => {
  queue = await reopen({ layout: { shards: 2, slots: [64, 32, 8], extentBytesPerShard: 1 << 20 }, format: 'always' });
  const sb = queue.superblock;
  await queue.close();
  queue = undefined;
  const count = 60;
  const handles = [await f.vsa.queueHandle({ queueEntries: 64, poolBytes: 2 << 20 }), await f.vsa.queueHandle({ queueEntries: 64, poolBytes: 2 << 20 })];
  const results = await Promise.all(
    handles.map(
      (handle, index) =>
        new Promise<{ index: number; ids: string[]; epoch: number }>((resolve, reject) => {
          const worker = tsWorker(new URL('./fixtures/mailq-shard-worker.ts', import.meta.url), { handle, superblock: sb, index, count });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  for (const r of results) {
    assert.is(r.ids.length, count);
    assert.ok(r.ids.every((id) => id.startsWith(`${r.index}.${r.epoch}.`)));
  }
  await reopen();
  const all = await queue!.peek();
  assert.is(all.length, 2 * count);
  for (const m of all) {
    const shard = Number(m.id.split('.')[0]);
    assert.is(m.envelope.from, `worker${shard}@example.org`);
    assert.match(text(m.data), new RegExp(`^(shard ${shard} message \\d+ )+$`));
  }
});

test.run();
