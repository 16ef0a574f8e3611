// eventfd: a signal from another process wakes the event loop (uv_poll) without
// blocking it; a worker thread can block on it instead.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native, READABLE } from '../libstorage/native.js';
import { spawnFixture, tsWorker } from './helpers/child.js';

test('a signal from another process wakes a waiting event loop', async () => {
  const fd = native.eventfdCreate();
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 5);
  const woken = new Promise<number>((resolve) => {
    const watcher = new native.FdWatcher(fd, () => {
      const count = native.eventfdRead(fd);
      if (count === 0) return; // spurious readiness: keep waiting
      watcher.close();
      resolve(count);
    });
    watcher.start(READABLE);
  });
  const child = spawnFixture('eventfd-signaller.ts', ['150', '5'], [fd]);
  assert.is(await woken, 5);
  clearInterval(ticker);
  assert.ok(ticks >= 5, `the event loop kept running while it waited (${ticks} ticks)`);
  assert.is((await child.done).trim(), 'signalled');
  assert.is(native.eventfdRead(fd), 0, 'the read cleared the counter');
  native.closeFd(fd);
});

test('signals add up until read; a read with nothing pending returns 0', () => {
  const fd = native.eventfdCreate(2);
  assert.ok(native.eventfdSignal(fd));
  assert.ok(native.eventfdSignal(fd, 10));
  assert.is(native.eventfdRead(fd), 13);
  assert.is(native.eventfdRead(fd), 0);
  native.closeFd(fd);
});

test('pollFd times out, then a worker blocked on it is woken by the main thread', async () => {
  const fd = native.eventfdCreate();
  const started = Date.now();
  assert.is(native.pollFd(fd, READABLE, 30), 0);
  assert.ok(Date.now() - started >= 25, 'waited for the timeout');

  const worker = tsWorker(new URL('./fixtures/eventfd-worker.ts', import.meta.url), fd);
  const result = await new Promise<any>((resolve, reject) => {
    worker.on('message', (message) => {
      if (message === 'waiting') setTimeout(() => native.eventfdSignal(fd, 2), 50);
      else resolve(message);
    });
    worker.on('error', reject);
  });
  assert.equal(result, { ready: READABLE, count: 2 });
  await worker.terminate();
  native.closeFd(fd);
});

test('a watcher that is closed never calls back', async () => {
  const fd = native.eventfdCreate();
  let calls = 0;
  const watcher = new native.FdWatcher(fd, () => calls++);
  watcher.start(READABLE);
  watcher.close();
  native.eventfdSignal(fd);
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.is(calls, 0);
  assert.throws(() => watcher.start(READABLE), (e: any) => e.code === 'ECLOSED');
  native.closeFd(fd);
});

test.run();
