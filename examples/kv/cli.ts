#!/usr/bin/env node
/**
 * offpath-kv: the key-value server on a VSA.
 *
 *   node --import tsx examples/kv/cli.ts serve --capability TOKEN [--daemon SOCKET]
 *        [--port 6379] [--host 127.0.0.1] [--durability crash|power] [--cache 256M]
 *        [--max-inflight N] [--gather on|off] [--pool 64M] [--format]
 *   node --import tsx examples/kv/cli.ts serve --vsic PATH ...    (an emulator VF socket, no daemon)
 *
 * Prints `ready <port>` on stdout once it listens; logs go to stderr.
 * SIGTERM / SIGINT: stop accepting, wait for acknowledgements, close the VSA.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { open, StorageError, type Vsa } from '../../libstorage/index.js';
import { parseSizeBytes } from '../../controlplane/units.js';
import { KvServer } from './server.js';
import { KvStore, type Durability } from './store.js';

const USAGE = `usage: offpath-kv serve (--capability TOKEN [--daemon SOCKET] | --vsic PATH)
                       [--port 6379] [--host 127.0.0.1] [--durability crash|power]
                       [--cache 256M] [--max-inflight N] [--gather on|off] [--pool 64M] [--format]`;

function usage(message: string): never {
  process.stderr.write(`offpath-kv: ${message}\n${USAGE}\n`);
  process.exit(64);
}

function log(message: string): void {
  process.stderr.write(`${new Date().toISOString()} offpath-kv[${process.pid}] ${message}\n`);
}

/** A VF socket whose previous holder just died answers EBUSY until the emulator has reset it. */
async function openVsic(path: string, poolBytes: number): Promise<Vsa> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await open(path, { poolBytes, name: 'kv' });
    } catch (error) {
      const code = (error as StorageError).code;
      if (Date.now() > deadline || (code !== 'EBUSY' && code !== 'ECONNREFUSED')) throw error;
      await sleep(50);
    }
  }
}

async function serve(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      capability: { type: 'string' },
      daemon: { type: 'string' },
      vsic: { type: 'string' },
      port: { type: 'string', default: '6379' },
      host: { type: 'string', default: '127.0.0.1' },
      durability: { type: 'string', default: 'crash' },
      cache: { type: 'string', default: '256M' },
      'max-inflight': { type: 'string' },
      gather: { type: 'string' },
      pool: { type: 'string', default: '64M' },
      format: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if ((values.capability === undefined) === (values.vsic === undefined)) usage('give exactly one of --capability and --vsic');
  const durability = values.durability as Durability;
  if (durability !== 'crash' && durability !== 'power') usage('--durability must be crash or power');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) usage('--port must be a TCP port');
  let cacheBytes: number;
  let poolBytes: number;
  try {
    cacheBytes = parseSizeBytes(values.cache!);
    poolBytes = parseSizeBytes(values.pool!);
  } catch (error) {
    usage((error as Error).message);
  }
  const maxInflight = values['max-inflight'] === undefined ? undefined : Number(values['max-inflight']);
  if (values.gather !== undefined && values.gather !== 'on' && values.gather !== 'off') usage('--gather must be on or off');
  const gather = values.gather === undefined ? {} : { gather: values.gather === 'on' };

  const vsa = values.capability !== undefined
    ? await open({ capability: values.capability, ...(values.daemon ? { daemon: values.daemon } : {}) }, { poolBytes })
    : await openVsic(values.vsic!, poolBytes);
  const started = Date.now();
  const store = await KvStore.open(vsa, { durability, cacheBytes, format: values.format, ...(maxInflight ? { maxInflight } : {}), ...gather });
  const stats = store.stats();
  log(
    `VSA ${vsa.name}: ${vsa.size} bytes, ${vsa.blockSize}-byte blocks; log of ${stats.logBytes} bytes recovered in ${Date.now() - started} ms: ` +
      `${stats.recoveredFrames} frames, ${stats.keys} keys${stats.discardedTail ? ', a torn or unacknowledged tail discarded' : ''}; durability ${durability}`,
  );
  const server = new KvServer(store, { port, host: values.host!, log });
  const listening = await server.listen();
  process.stdout.write(`ready ${listening}\n`);
  log(`listening on ${values.host}:${listening}`);

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await server.close();
    await store.close();
    await vsa.close();
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop(0));
  process.on('SIGINT', () => void stop(0));
  // The VSA can fail with nothing in flight (revoked, deleted, the VSIC gone): stop then too.
  const watchdog = setInterval(() => {
    const failure = store.failed ?? vsa.failed;
    if (failure && !stopping) {
      log(`stopping: ${failure.message}`);
      void stop(1);
    }
  }, 100);
  watchdog.unref();
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'serve') {
  serve(rest).catch((error) => {
    process.stderr.write(`offpath-kv: ${(error as Error).message}\n`);
    process.exit(1);
  });
} else if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
  process.stdout.write(`${USAGE}\n`);
} else {
  usage(`unknown command ${command}`);
}
