/**
 * Control-plane state as ordinary files, written atomically: write a
 * temporary file, fsync it, rename it over the old one, fsync the directory.
 * A crash leaves either the old or the new version, never a torn one.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

function fsyncDirectory(folder: string): void {
  const fd = openSync(folder, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class StateFolder {
  constructor(readonly folder: string) {
    mkdirSync(folder, { recursive: true, mode: 0o700 });
  }

  private path(name: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) throw new RangeError(`bad state file name ${JSON.stringify(name)}`);
    return join(this.folder, `${name}.json`);
  }

  write(name: string, value: unknown): void {
    const path = this.path(name);
    const temporary = `${path}.tmp-${process.pid}`;
    const fd = openSync(temporary, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(value, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
    fsyncDirectory(this.folder);
  }

  read<T>(name: string): T | undefined {
    try {
      return JSON.parse(readFileSync(this.path(name), 'utf8')) as T;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  remove(name: string): void {
    rmSync(this.path(name), { force: true });
    fsyncDirectory(this.folder);
  }

  /** Every record, skipping temporaries a crash left behind. */
  list<T>(): T[] {
    return readdirSync(this.folder)
      .filter((file) => file.endsWith('.json'))
      .sort()
      .map((file) => JSON.parse(readFileSync(join(this.folder, file), 'utf8')) as T);
  }
}
