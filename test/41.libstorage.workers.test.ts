// One queue pair per worker thread: each drives its own rings, no locks
// shared, all against one VSA.
import { test } from 'uvu';
import { checkWorkerStripes } from './checks/worker-checks.js';
import { closeFixture, openFixture, type VsaFixture } from './helpers/vsa.js';

const WORKERS = 4;
const STRIPE_BLOCKS = 64;
let f: VsaFixture;

test.before(async () => {
  f = await openFixture(WORKERS * STRIPE_BLOCKS * 2, { queues: WORKERS + 1 });
});
test.after(() => closeFixture(f));

test('four workers, four queue pairs, every stripe written and read back intact', async () => {
  await checkWorkerStripes(f.vsa, WORKERS, STRIPE_BLOCKS);
});

test.run();
