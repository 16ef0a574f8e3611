// Bad input to the addon: typed errors carrying errno names, never a crash.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StorageError } from '../libstorage/errors.js';
import { native } from '../libstorage/native.js';

function throwsWith(fn: () => unknown, check: (error: any) => boolean, label: string) {
  try {
    fn();
  } catch (error) {
    assert.ok(check(error), `${label}: unexpected ${String(error)}`);
    return error as any;
  }
  assert.unreachable(`${label}: did not throw`);
}

const storage = (code: string) => (error: any) => error instanceof StorageError && error.code === code;

test('a closed fd is EBADF with the syscall named', () => {
  const error = throwsWith(() => native.ftruncate(999_999, 4096), storage('EBADF'), 'ftruncate');
  assert.is(error.syscall, 'ftruncate');
  assert.is(error.errno, 9);
  throwsWith(() => native.eventfdSignal(999_999), storage('EBADF'), 'eventfdSignal');
  throwsWith(() => native.peerCredentials(999_999), storage('EBADF'), 'peerCredentials');
  throwsWith(() => native.mmap(999_999, 4096), storage('EBADF'), 'mmap');
});

test('arguments of the wrong type are TypeError', () => {
  throwsWith(() => native.ftruncate('3' as any, 4096), (e) => e instanceof TypeError, 'fd string');
  throwsWith(() => native.mmap(0, 1.5), (e) => e instanceof TypeError, 'fractional length');
  throwsWith(() => native.memfdCreate(42 as any), (e) => e instanceof TypeError, 'memfd name');
  throwsWith(() => native.seqpacketSend(0, 'text' as any), (e) => e instanceof TypeError, 'send string');
  throwsWith(() => native.dmaAlloc(4096, { hugepage: 'always' as any }), (e) => e instanceof TypeError, 'hugepage mode');
  throwsWith(() => new native.FdWatcher(0, 'callback' as any), (e) => e instanceof TypeError, 'watcher callback');
});

test('arguments out of range are RangeError', () => {
  throwsWith(() => native.ftruncate(-1, 4096), (e) => e instanceof RangeError, 'negative fd');
  throwsWith(() => native.mmap(0, 0), (e) => e instanceof RangeError, 'zero length');
  const fd = native.memfdCreate('args');
  native.ftruncate(fd, 8192);
  throwsWith(() => native.mmap(fd, 4096, 100), (e) => e instanceof RangeError, 'unaligned offset');
  const buffer = native.mmap(fd, 8192);
  throwsWith(() => native.store32Release(buffer, 2, 1), (e) => e instanceof RangeError, 'unaligned doorbell');
  throwsWith(() => native.store32Release(buffer, 8192, 1), (e) => e instanceof RangeError, 'doorbell past end');
  throwsWith(() => native.store32Release(buffer, 0, 2 ** 32), (e) => e instanceof RangeError, 'value > u32');
  throwsWith(() => native.seqpacketConnect('x'.repeat(200)), (e) => e instanceof RangeError, 'long path');
  native.munmap(buffer);
  native.closeFd(fd);
});

test('mapping past the end of a file is refused, not a later SIGBUS', () => {
  const fd = native.memfdCreate('short');
  native.ftruncate(fd, 4096);
  throwsWith(() => native.mmap(fd, 8192), storage('ERANGE'), 'mmap past EOF');
  native.closeFd(fd);
});

test('errno from a missing socket path is ENOENT', () => {
  const error = throwsWith(() => native.seqpacketConnect('/nonexistent/offpath.sock'), storage('ENOENT'), 'connect');
  assert.is(error.syscall, 'connect');
  assert.match(error.message, /ENOENT/);
});

test('an empty message is refused (it would read as end of stream)', () => {
  const [a, b] = native.seqpacketPair();
  throwsWith(() => native.seqpacketSend(a, new Uint8Array(0)), (e) => e instanceof RangeError, 'empty send');
  native.closeFd(a);
  native.closeFd(b);
});

test.run();
