// The data-plane API over the emulator: bytes in, same bytes out, for every
// shape of request a user can make; bad arguments never reach the device.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StorageError } from '../libstorage/index.js';
import { dataCheckAreas, dataChecks } from './checks/data-checks.js';
import { pattern } from './helpers/nvme.js';
import { closeFixture, openFixture, type VsaFixture } from './helpers/vsa.js';

const BLOCK = 4096;
let f: VsaFixture;

test.before(async () => {
  f = await openFixture(16384); // 64 MiB
});
test.after(() => closeFixture(f));

test('geometry', () => {
  assert.is(f.vsa.blockSize, BLOCK);
  assert.is(f.vsa.blocks, 16384);
  assert.is(f.vsa.size, 16384 * BLOCK);
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

// The checks every VSA passes, on the emulator here and on a hardware VF in the VM suite.
const areas: number[] = [];
for (const [i, check] of dataChecks.entries()) {
  test(check.name, async () => {
    if (areas.length === 0) areas.push(...dataCheckAreas(f.vsa));
    await check.run(f.vsa, areas[i]!);
  });
}

test('a trim of the whole VSA reads back zeroes', async () => {
  await f.vsa.write(1000 * BLOCK, Buffer.from(pattern(8 * BLOCK, 5)));
  await f.vsa.trim(0, f.vsa.size);
  const back = Buffer.alloc(8 * BLOCK);
  await f.vsa.read(1000 * BLOCK, back);
  assert.ok(back.every((x) => x === 0));
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
