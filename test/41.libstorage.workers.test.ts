// One queue pair per worker thread: each drives its own rings, no locks
// shared, all against one VSA.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pattern } from './helpers/nvme.js';
import { tsWorker } from './helpers/child.js';
import { closeFixture, openFixture, type VsaFixture } from './helpers/vsa.js';

const WORKERS = 4;
const STRIPE_BLOCKS = 64;
let f: VsaFixture;

test.before(async () => {
  f = await openFixture(WORKERS * STRIPE_BLOCKS * 2, { queues: WORKERS + 1 });
});
test.after(() => closeFixture(f));

test('four workers, four queue pairs, every stripe written and read back intact', async () => {
  const handles = [];
  for (let i = 0; i < WORKERS; i++) handles.push(await f.vsa.queueHandle({ queueEntries: 64, poolBytes: 1 << 20 }));
  assert.is(new Set(handles.map((h) => h.sqid)).size, WORKERS, 'distinct queue ids');
  const results = await Promise.all(
    handles.map(
      (handle, index) =>
        new Promise<{ index: number; mismatches: number }>((resolve, reject) => {
          const worker = tsWorker(new URL('./fixtures/vsa-worker.ts', import.meta.url), { handle, index, stripeBlocks: STRIPE_BLOCKS });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  assert.ok(results.every((r) => r.mismatches === 0), JSON.stringify(results));
  // The main thread sees every worker's stripe through its own queue.
  const block = f.vsa.blockSize;
  const buffer = Buffer.alloc(block);
  for (let index = 0; index < WORKERS; index++) {
    await f.vsa.read((index * STRIPE_BLOCKS + 5) * block, buffer);
    assert.ok(buffer.equals(pattern(block, index * 100000 + 5)), `stripe ${index}`);
  }
});

test.run();
