/**
 * `offpath emulator`: runs the software VSIC as a process until SIGINT or
 * SIGTERM, then flushes the store and exits. Prints one line
 * `ready <socket dir>` on stdout once every controller socket listens.
 */
import { parseSizeBytes } from '../controlplane/units.js';
import { EmulatorServer, type StoreOptions } from './server.js';

export interface EmulatorCliOptions {
  socketDir: string;
  store: string;
  size?: string;
  chunk?: string;
  vfs?: string;
  pollers?: string;
  spinUs?: string;
  exitWithParent?: boolean;
}

/** `memory:256M`, `file:/a.img[,/b.img]` (with --size for new files), `block:/dev/x[,/dev/y]`. */
export function parseStoreSpec(spec: string, size?: string, chunk?: string): StoreOptions {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const rest = colon < 0 ? '' : spec.slice(colon + 1);
  const chunkBytes = chunk === undefined ? undefined : parseSizeBytes(chunk);
  const common = chunkBytes === undefined ? {} : { chunkBytes };
  if (kind === 'memory') return { kind, sizeBytes: parseSizeBytes(rest || size || '256M'), ...common };
  if (kind === 'file' || kind === 'block') {
    const paths = rest.split(',').filter(Boolean);
    if (paths.length === 0) throw new RangeError(`--store ${kind}: needs at least one path`);
    return { kind, paths, ...(size === undefined ? {} : { sizeBytes: parseSizeBytes(size) }), ...common };
  }
  throw new RangeError(`--store must be memory:SIZE, file:PATH[,PATH] or block:DEV[,DEV], not ${JSON.stringify(spec)}`);
}

/**
 * OFFPATH_EMU_TEST_MODES='{"powerLoss":{...},"faults":{...}}': the store's
 * test modes (docs/emulator-store.md); never set in production.
 */
export function storeTestModes(json = process.env.OFFPATH_EMU_TEST_MODES): Pick<StoreOptions, 'powerLoss' | 'faults'> {
  if (!json) return {};
  const modes = JSON.parse(json) as Record<string, unknown>;
  for (const key of Object.keys(modes)) {
    if (key !== 'powerLoss' && key !== 'faults') throw new RangeError(`OFFPATH_EMU_TEST_MODES: unknown key ${JSON.stringify(key)}`);
  }
  return modes as Pick<StoreOptions, 'powerLoss' | 'faults'>;
}

export function runEmulator(options: EmulatorCliOptions): EmulatorServer {
  const server = new EmulatorServer({
    socketDir: options.socketDir,
    store: { ...parseStoreSpec(options.store, options.size, options.chunk), ...storeTestModes() },
    secondaryControllers: options.vfs === undefined ? 4 : Number(options.vfs),
    pollers: options.pollers === undefined ? 1 : Number(options.pollers),
    spinUs: options.spinUs === undefined ? 50 : Number(options.spinUs),
    log: process.stderr.isTTY || process.env.OFFPATH_LOG ? (event) => process.stderr.write(`${JSON.stringify(event)}\n`) : undefined,
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (options.exitWithParent) {
    // The supervisor holds the other end of our stdin: if it dies, even by
    // SIGKILL, we read end-of-file and leave rather than hold the store.
    process.stdin.on('end', stop);
    process.stdin.on('close', stop);
    process.stdin.resume();
  }
  process.stdout.write(`ready ${server.socketDir}\n`);
  return server;
}
