/**
 * offpath-mailq: a durable mail queue on a VSA, with an SMTP receiver and a
 * Maildir delivery worker.
 *
 *   offpath-mailq serve --capability TOKEN [--port 2525] [--maildir ./Maildir] ...
 *   offpath-mailq inspect --capability TOKEN [--json]
 *
 * `--vf SOCKET` opens an emulator VF socket directly instead of redeeming a
 * capability (tests and benchmarks without the daemon). Logs are NDJSON on
 * stderr, one line per event (never per message); the first line on stdout
 * is `listening HOST:PORT`.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { open, type VsaTarget } from '../../libstorage/index.js';
import { parseSizeBytes } from '../../controlplane/units.js';
import { MailQueue } from './queue.js';
import { MailqServer } from './server.js';

const EXIT_USAGE = 64;

function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new InvalidArgumentError(`not a duration: ${text} (e.g. 500ms, 30s, 5m, 1h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 'ms']!;
  return Number(match[1]) * unit;
}

function parseInteger(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new InvalidArgumentError(`not a non-negative integer: ${text}`);
  return value;
}

function parseSize(text: string): number {
  try {
    return parseSizeBytes(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function parseSlots(text: string): number[] {
  const slots = text.split(',').map((part) => parseInteger(part));
  if (slots.length !== 3 || slots.some((n) => n < 1)) throw new InvalidArgumentError('--slots takes three counts: 1K,4K,16K (per shard)');
  return slots;
}

interface TargetOptions {
  capability?: string;
  daemon?: string;
  vf?: string;
}

function targetOf(options: TargetOptions): VsaTarget {
  if (options.capability && options.vf) throw new InvalidArgumentError('give --capability or --vf, not both');
  if (options.capability) return options.daemon ? { capability: options.capability, daemon: options.daemon } : { capability: options.capability };
  if (options.vf) return options.vf;
  throw new InvalidArgumentError('give --capability TOKEN (or --vf SOCKET for an emulator VF)');
}

/**
 * Keeps the process alive while `work` runs: an idle VSA holds no reference
 * on the event loop, so nothing else would while the controller comes up.
 */
async function alive<T>(work: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1 << 30);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** One shard per core, leaving one for the clients and the device (at least one, at most four). */
function defaultShards(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

const log = (event: Record<string, unknown>) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);

const program = new Command('offpath-mailq')
  .description('a durable mail queue on an offpath VSA: SMTP in, Maildir out')
  .showHelpAfterError()
  .exitOverride((error) => {
    process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);
  });

program
  .command('serve')
  .description('receive mail over SMTP into the queue and deliver it to a Maildir')
  .option('--capability <token>', 'capability for the VSA (from `offpath grant`)')
  .option('--daemon <socket>', 'the offpath daemon socket (default $OFFPATH_SOCKET or .offpath/daemon.sock)')
  .option('--vf <socket>', 'an emulator VF socket instead of a capability')
  .option('--port <n>', 'SMTP port (0: any free port)', parseInteger, 2525)
  .option('--host <address>', 'address to listen on', '127.0.0.1')
  .option('--hostname <name>', 'the name in SMTP replies (default: this machine\'s)')
  .option('--maildir <dir>', 'deliver into this Maildir', 'Maildir')
  .option('--no-deliver', 'receive and queue only')
  .option('--delivery-concurrency <n>', 'deliveries in flight per shard', parseInteger, 4)
  .option('--shards <n>', 'threads (shards) of a new queue (default: CPUs − 1, at most 4, at least 1)', parseInteger, defaultShards())
  .addOption(new Option('--format <when>', 'format the VSA').choices(['if-blank', 'always', 'never']).default('if-blank'))
  .option('--slots <1k,4k,16k>', 'entries per shard of each size class (new queue)', parseSlots)
  .option('--extent-bytes <size>', 'extent space per shard for large messages (new queue)', parseSize)
  .option('--preallocate', 'write the entry regions at format so later writes never allocate')
  .addOption(new Option('--durability <how>', 'how enqueues become durable').choices(['flush', 'fua']).default('flush'))
  .option('--lease <duration>', 'delivery lease before a retry', parseDuration, 300_000)
  .option('--retry-base <duration>', 'first retry delay (doubles per attempt)', parseDuration, 1000)
  .option('--retry-max <duration>', 'longest retry delay', parseDuration, 3_600_000)
  .option('--max-message-size <size>', 'largest message accepted (SIZE)', parseSize, 10 << 20)
  .option('--journal <file>', 'append delivery events (D/E/A/N + queue id) to this file')
  .action(async (options) => {
    const server = await alive(() => MailqServer.start({
      target: targetOf(options),
      port: options.port,
      host: options.host,
      hostname: options.hostname,
      maildir: options.deliver ? resolve(options.maildir) : undefined,
      deliveryConcurrency: options.deliveryConcurrency,
      shards: options.shards,
      format: options.format,
      layout: {
        ...(options.slots ? { slots: options.slots } : {}),
        ...(options.extentBytes ? { extentBytesPerShard: options.extentBytes } : {}),
      },
      preallocate: options.preallocate === true,
      durability: options.durability,
      leaseMs: options.lease,
      backoff: { baseMs: options.retryBase, maxMs: options.retryMax },
      maxMessageBytes: options.maxMessageSize,
      journal: options.journal ? resolve(options.journal) : undefined,
      log,
    }));
    const { host, port } = server.address;
    process.stdout.write(`listening ${host}:${port}\n`);
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      void server
        .stats()
        .then((stats) => log({ event: 'stats', shards: stats }))
        .then(() => server.stop())
        .then(
          () => process.exit(0),
          (error) => {
            log({ event: 'stop-failed', error: String(error) });
            process.exit(1);
          },
        );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

program
  .command('inspect')
  .description('list the messages in the queue (read-only)')
  .option('--capability <token>', 'capability for the VSA')
  .option('--daemon <socket>', 'the offpath daemon socket')
  .option('--vf <socket>', 'an emulator VF socket instead of a capability')
  .option('--json', 'one JSON document')
  .action((options) => alive(async () => {
    const vsa = await open(targetOf(options));
    try {
      const queue = await MailQueue.open(vsa, { format: 'never', readOnly: true });
      const messages = await queue.peek();
      const sb = queue.superblock;
      if (options.json) {
        const rows = messages.map(({ data, ...rest }) => ({ ...rest, dataBytes: data.length }));
        process.stdout.write(`${JSON.stringify({ shards: sb.shards, classes: sb.classes, extentBytesPerShard: sb.extentBytesPerShard, messages: rows })}\n`);
      } else {
        process.stdout.write(`${vsa.name}: ${sb.shards} shards, classes ${sb.classes.map((c) => `${c.slotsPerShard}×${c.slotBytes}`).join(', ')}, extents ${sb.extentBytesPerShard} bytes per shard\n`);
        for (const m of messages) {
          process.stdout.write(`${m.id}\t${m.data.length} bytes\t${m.extentBytes ? 'extent' : `${m.slotBytes}-byte entry`}\tattempts ${m.attempts}\tfrom <${m.envelope.from}> to ${m.envelope.to.map((t) => `<${t}>`).join(' ')}\n`);
        }
        process.stdout.write(`${messages.length} messages\n`);
      }
      await queue.close();
    } finally {
      await vsa.close();
    }
  }));

program.parseAsync(process.argv).catch((error: unknown) => {
  const code = (error as { code?: string }).code;
  process.stderr.write(`offpath-mailq: ${error instanceof Error ? error.message : String(error)}${code ? ` (${code})` : ''}\n`);
  process.exit(1);
});
