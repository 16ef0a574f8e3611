// Worker-thread entry for tests: Node 20 does not pass --import loaders to
// workers, so register tsx here and then load the TypeScript module named in
// workerData.entry.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
