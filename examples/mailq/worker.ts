/**
 * A shard worker thread: opens its own queue pair from the handle the main
 * thread made, recovers its shard (nobody else touches those entries), and
 * runs SMTP sessions on the connections the main thread passes it (as file
 * descriptors) plus the shard's delivery worker.
 *
 * Messages from the main thread: {type: 'socket', fd}, {type: 'stats'},
 * {type: 'stop'}. To it: {type: 'ready', stats}, {type: 'stats', stats},
 * {type: 'stopped'}, {type: 'log', event}, {type: 'error', message}.
 */
import { Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { openQueue, type QueueHandle } from '../../libstorage/index.js';
import { ShardHost, type HostOptions } from './host.js';
import type { Superblock } from './layout.js';
import { MailQueueShard, type ShardOptions } from './shard.js';

export interface WorkerData {
  handle: QueueHandle;
  superblock: Superblock;
  index: number;
  shardOptions: ShardOptions;
  hostOptions: Omit<HostOptions, 'log'>;
}

const port = parentPort!;
const data = (workerData as { data: WorkerData }).data;

try {
  const io = openQueue(data.handle);
  const shard = await MailQueueShard.open(io, data.superblock, data.index, data.shardOptions);
  const host = new ShardHost(shard, { ...data.hostOptions, log: (event) => port.postMessage({ type: 'log', event }) });
  port.on('message', (message: { type: string; fd?: number }) => {
    if (message.type === 'socket') {
      host.addSocket(new Socket({ fd: message.fd!, readable: true, writable: true }));
    } else if (message.type === 'stats') {
      port.postMessage({ type: 'stats', stats: host.stats() });
    } else if (message.type === 'stop') {
      void host
        .stop()
        .then(() => io.close())
        .then(() => {
          port.postMessage({ type: 'stopped', stats: host.stats() });
          port.close();
        });
    }
  });
  port.postMessage({ type: 'ready', stats: host.stats() });
} catch (error) {
  port.postMessage({ type: 'error', message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  port.close();
}
