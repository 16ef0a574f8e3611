// SOCK_SEQPACKET across two processes: fd passing and peer credentials.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native, READABLE } from '../libstorage/native.js';
import { spawnFixture } from './helpers/child.js';

const folder = mkdtempSync(join(tmpdir(), 'offpath-sock-'));

function nextReadable(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const watcher = new native.FdWatcher(fd, (error) => {
      watcher.close();
      if (error) reject(error);
      else resolve();
    });
    watcher.start(READABLE);
  });
}

test('the listening socket is owner-only by default', () => {
  const path = join(folder, 'mode.sock');
  const fd = native.seqpacketListen(path);
  assert.is(statSync(path).mode & 0o777, 0o600);
  assert.ok(statSync(path).isSocket());
  native.closeFd(fd);
  const open = native.seqpacketListen(join(folder, 'open.sock'), { mode: 0o666 });
  assert.is(statSync(join(folder, 'open.sock')).mode & 0o777, 0o666);
  native.closeFd(open);
});

test('fds passed by another process work here; its credentials come back right', async () => {
  const path = join(folder, 'peer.sock');
  const listener = native.seqpacketListen(path);
  assert.is(native.seqpacketAccept(listener), null, 'nothing pending yet');
  const child = spawnFixture('seqpacket-peer.ts', [path]);

  await nextReadable(listener);
  const connection = native.seqpacketAccept(listener)!;
  assert.type(connection, 'number');
  const credentials = native.peerCredentials(connection);
  assert.is(credentials.pid, child.process.pid);
  assert.is(credentials.uid, process.getuid!());
  assert.is(credentials.gid, process.getgid!());

  await nextReadable(connection);
  const message = native.seqpacketRecv(connection)!;
  assert.is(message.fds.length, 2);
  const length = Number(/len (\d+)/.exec(message.data.toString())![1]);
  const [memfd, eventfd] = message.fds as [number, number];
  const page = new Uint8Array(native.mmap(memfd, 4096));
  assert.is(Buffer.from(page.subarray(0, length)).toString(), `hello from ${child.process.pid}`);

  native.eventfdSignal(eventfd, 3);
  native.seqpacketSend(connection, Buffer.from('ack'));
  assert.is((await child.done).trim(), 'eventfd 3 reply ack');

  // The peer exited: its end is closed, so the next read is end of stream.
  await nextReadable(connection);
  assert.is(native.seqpacketRecv(connection)!.data.length, 0);
  native.munmap(page.buffer as ArrayBuffer);
  for (const fd of [memfd, eventfd, connection, listener]) native.closeFd(fd);
});

test('message boundaries are kept and oversize messages are refused', () => {
  const [a, b] = native.seqpacketPair();
  native.seqpacketSend(a, Buffer.from('one'));
  native.seqpacketSend(a, Buffer.from('two!'));
  assert.is(native.seqpacketRecv(b)!.data.toString(), 'one');
  assert.is(native.seqpacketRecv(b)!.data.toString(), 'two!');
  assert.is(native.seqpacketRecv(b), null, 'would block');
  native.seqpacketSend(a, Buffer.alloc(100, 1));
  assert.throws(() => native.seqpacketRecv(b, 10), (e: any) => e.code === 'EMSGSIZE');
  const credentials = native.peerCredentials(a);
  assert.is(credentials.pid, process.pid);
  native.closeFd(a);
  native.closeFd(b);
});

test.after(() => rmSync(folder, { recursive: true, force: true }));
test.run();
