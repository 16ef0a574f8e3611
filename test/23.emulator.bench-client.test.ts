// The native benchmark client (bench/lib/native-client.ts) is itself correct:
// it completes what it submits without errors against a real emulator, what
// it writes reads back (checked by the client and by the JS driver), it
// carries ring positions across runs, and it gives up instead of hanging.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NativeQueueClient } from '../bench/lib/native-client.js';
import { openBenchVf, startEmulatorProcess, type BenchEmulator, type BenchVf } from '../bench/lib/emulator.js';
import { StorageError } from '../libstorage/errors.js';
import { Read, Write, rw, statusOf } from './helpers/nvme.js';

const LBA_COUNT = 64;

let emulator: BenchEmulator;
let vf: BenchVf;
let client: NativeQueueClient;

test.before(async () => {
  emulator = await startEmulatorProcess({ storeSpec: 'memory:16M' });
  vf = await openBenchVf(emulator, { lbaCount: LBA_COUNT, queueEntries: 16, spareQueuePairs: 1 });
  client = new NativeQueueClient(vf);
});

test.after(async () => {
  await vf?.close();
  await emulator?.stop();
});

/** The client's stamp: word i of block `lba` (bench_client.cc StampWord). */
function stampWord(lba: number, i: number): bigint {
  return ((BigInt(lba) << 12n) | BigInt(i)) ^ 0x6f66667061746821n;
}

test('writes ~200 stamped blocks and reads them back, with no errors', () => {
  const written = client.run({ op: 'write', queueDepth: 8, commands: 200, sequential: true, stamp: true });
  assert.is(written.completed, 200);
  assert.is(written.statusErrors, 0);
  assert.is(written.strayCompletions, 0);
  assert.ok(written.latency.count === 200 && written.latency.p50Ns > 0 && written.latency.p99Ns >= written.latency.p50Ns);
  assert.ok(written.clientCpuNs > 0 && written.elapsedNs > 0);

  // The ring wrapped (16 entries) many times; a second run continues from it.
  const read = client.run({ op: 'read', queueDepth: 15, commands: 200, stamp: true, seed: 7 });
  assert.is(read.completed, 200);
  assert.is(read.statusErrors, 0);
  assert.is(read.verifyErrors, 0, 'every block read back is the one written');
  const qd1 = client.run({ op: 'read', queueDepth: 1, commands: 50, stamp: true });
  assert.is(qd1.completed, 50);
  assert.is(qd1.verifyErrors, 0);
});

test('the JS driver reads what the client wrote, and the client what JS wrote', async () => {
  // Queue 2 is driven by the JS driver, as applications do.
  const queue = await vf.controller.createQueuePair(2, 8);
  const region = await vf.controller.newRegion(8192);
  const buffer = region.alloc(4096);
  const io = { controller: vf.controller, queue, region, nsid: vf.nsid };
  const words = new BigUint64Array(buffer.bytes.buffer, buffer.bytes.byteOffset, 512);

  const read = await rw(io, Read, 37, 1, buffer);
  assert.is(statusOf(read), 'SUCCESS');
  for (const i of [0, 1, 255, 511]) assert.is(words[i], stampWord(37, i), `word ${i} of LBA 37`);

  // Overwrite LBA 5 from JS, first with garbage the client must notice...
  buffer.bytes.fill(0xee);
  assert.is(statusOf(await rw(io, Write, 5, 1, buffer)), 'SUCCESS');
  const bad = client.run({ op: 'read', queueDepth: 4, commands: LBA_COUNT, sequential: true, stamp: true });
  assert.is(bad.verifyErrors, 1, 'exactly LBA 5 is wrong');
  // ...then with its stamp.
  for (let i = 0; i < 512; i++) words[i] = stampWord(5, i);
  assert.is(statusOf(await rw(io, Write, 5, 1, buffer)), 'SUCCESS');
  const good = client.run({ op: 'read', queueDepth: 4, commands: LBA_COUNT, sequential: true, stamp: true });
  assert.is(good.completed, LBA_COUNT);
  assert.is(good.verifyErrors, 0);
});

test('a queue that never completes times out instead of hanging', () => {
  const started = Date.now();
  const dead = new NativeQueueClient({
    ...vf,
    // Queue 9 was never created: the emulator ignores its doorbell.
    queue: { ...vf.queue, sqid: 9, sqRing: { bytes: new Uint8Array(16 * 64), iova: 0 }, cqRing: { bytes: new Uint8Array(16 * 16), iova: 0 } } as never,
  });
  try {
    dead.run({ op: 'read', queueDepth: 1, commands: 1, timeoutMs: 200 });
    assert.unreachable('completed on a queue that does not exist');
  } catch (error) {
    assert.instance(error, StorageError);
    assert.is((error as StorageError).code, 'ETIMEDOUT');
  }
  assert.ok(Date.now() - started < 2000);
});

test.run();
