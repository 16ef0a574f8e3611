// A process whose power goes off: it opens a file-backed store in power-loss
// mode with exitCode set, then writes and flushes one block at a time,
// printing `flushed N` after each acknowledged flush, until the automatic
// cut ends the process (exit code 86). Used by test/32.emulator.store-faults.
//   node --import tsx test/sim/exit-on-cut.ts DIR
import { join } from 'node:path';
import { Status, patternBuffer } from '../fixtures/store-pattern.js';
import { PowerStore } from './power-store.js';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: exit-on-cut.ts DIR');
const store = new PowerStore({
  kind: 'file',
  paths: [join(dir, 'pool.img')],
  sizeBytes: 4 * 1024 * 1024,
  chunkBytes: 64 * 1024,
  powerLoss: { seed: 12, cutAfterWrites: 40, exitCode: 86 },
});
const nsid = store.createNamespace(256, 4096);
for (let op = 1; op <= 256; op++) {
  if (store.write(nsid, op - 1, 1, patternBuffer(1, 4096, op, nsid, op - 1)) !== Status.SUCCESS) break;
  if (store.flush() !== Status.SUCCESS) break;
  process.stdout.write(`flushed ${op}\n`);
}
// Not reached: the power goes off first.
process.exit(1);
