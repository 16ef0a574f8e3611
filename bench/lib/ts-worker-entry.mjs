// Worker-thread entry for benchmarks: Node 20 does not hand --import loaders
// to workers, so register tsx here, then load the TypeScript module named in
// workerData.entry (the same approach as the tests' worker helper).
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
