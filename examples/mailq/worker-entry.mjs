// Worker-thread entry of the mail queue server: loads the module named in
// workerData.entry — through tsx when it is TypeScript (running from the
// sources: workers do not inherit --import loaders on Node 20).
import { workerData } from 'node:worker_threads';

if (workerData.entry.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(workerData.entry);
