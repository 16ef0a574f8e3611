/**
 * One queue pair per worker thread, checked the same way on every transport
 * (test/41 on the emulator, the VM suite on a VF): each worker writes its own
 * stripe of the VSA through its own queue pair and reads it back; then the
 * calling thread reads every stripe through its own queue.
 */
import assert from 'node:assert/strict';
import type { Vsa } from '../../libstorage/vsa.js';
import { tsWorker } from '../helpers/child.js';
import { pattern } from '../helpers/nvme.js';
import { sameBytes } from './data-checks.js';

export async function checkWorkerStripes(vsa: Vsa, workers: number, stripeBlocks: number): Promise<void> {
  const handles = [];
  for (let i = 0; i < workers; i++) handles.push(await vsa.queueHandle({ queueEntries: 64, poolBytes: 1 << 20 }));
  assert.equal(new Set(handles.map((h) => h.sqid)).size, workers, 'distinct queue ids');
  const results = await Promise.all(
    handles.map(
      (handle, index) =>
        new Promise<{ index: number; mismatches: number }>((resolve, reject) => {
          const worker = tsWorker(new URL('../fixtures/vsa-worker.ts', import.meta.url), { handle, index, stripeBlocks });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  assert.ok(
    results.every((r) => r.mismatches === 0),
    `every worker reads back its stripe: ${JSON.stringify(results)}`,
  );
  const block = vsa.blockSize;
  const buffer = Buffer.alloc(block);
  for (let index = 0; index < workers; index++) {
    await vsa.read((index * stripeBlocks + 5) * block, buffer);
    sameBytes(buffer, pattern(block, index * 100000 + 5), `stripe ${index} through the main queue`);
  }
}
