#!/usr/bin/env node
/**
 * The `offpath` command line. `--json` prints one JSON document on stdout;
 * otherwise human tables. Errors are one line on stderr and a sysexits code:
 * 0 ok, 1 failure, 64 usage, 69 daemon unreachable, 77 permission denied.
 */
import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runEmulator, type EmulatorCliOptions } from '../emulator/main.js';
import { StorageError } from '../libstorage/errors.js';
import { packageRoot } from '../libstorage/native.js';
import { defaultSocketPath } from '../libstorage/control-protocol.js';
import { DaemonClient } from './client.js';
import { Daemon } from './daemon.js';
import { runDoctor } from './doctor.js';
import { table } from './table.js';
import { formatBytes, parseSizeBytes } from './units.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 64;
export const EXIT_UNAVAILABLE = 69;
export const EXIT_PERMISSION = 77;

class UsageError extends Error {}

const { version } = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };

const program = new Command('offpath')
  .description('kernel-bypass storage for Node.js: VSAs, VSICs and capabilities')
  .version(version)
  .option('--socket <path>', 'daemon socket', defaultSocketPath())
  .option('--json', 'print one JSON document on stdout')
  .exitOverride();

function globals(): { socket: string; json: boolean } {
  const options = program.opts<{ socket: string; json?: boolean }>();
  return { socket: options.socket, json: options.json === true };
}

/** Runs one daemon call and prints its result as JSON or through `human`. */
async function daemonCall(method: string, params: Record<string, unknown>, human: (result: any) => string): Promise<void> {
  const { socket, json } = globals();
  let client: DaemonClient;
  try {
    client = DaemonClient.connect(socket);
  } catch (error) {
    const code = (error as StorageError).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') {
      throw Object.assign(new Error(`cannot reach the offpath daemon at ${socket} (${code}); start it with: npm start`), { exitCode: EXIT_UNAVAILABLE });
    }
    throw error;
  }
  try {
    const result = await client.call(method, params);
    process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : human(result));
  } finally {
    client.close();
  }
}

function size(text: string): number {
  try {
    return parseSizeBytes(text);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function integer(text: string, what: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new UsageError(`${what} must be a non-negative integer`);
  return value;
}

/** `30m`, `12h`, `7d`, or an ISO date: milliseconds since the epoch. */
function expiry(text: string): number {
  const relative = /^(\d+)([smhd])$/.exec(text);
  if (relative) return Date.now() + Number(relative[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[relative[2] as 's']!;
  const absolute = Date.parse(text);
  if (Number.isNaN(absolute)) throw new UsageError(`--expires takes 30m, 12h, 7d or an ISO date, not ${text}`);
  return absolute;
}

function vsaRows(vsas: any[]): string {
  return table(
    ['NAME', 'SIZE', 'BLOCK', 'DEVICE', 'NSID', 'ATTACHED'],
    vsas.map((v) => [v.name, formatBytes(v.sizeBytes), v.blockBytes, v.device, v.nsid, v.attached ? `vsic ${v.attached.vsic} pid ${v.attached.pid} (${v.attached.rights})` : null]),
  );
}

function deviceRows(devices: any[]): string {
  let out = table(
    ['DEVICE', 'KIND', 'CAPACITY', 'FREE', 'VSICS ONLINE'],
    devices.map((d) => [d.name, d.kind, formatBytes(d.capacityBytes), formatBytes(d.freeBytes), `${d.vsics.filter((v: any) => v.online).length}/${d.vsics.length}`]),
  );
  const online = devices.flatMap((d) => d.vsics.filter((v: any) => v.online).map((v: any) => ({ device: d.name, ...v })));
  if (online.length > 0) {
    out += '\n' + table(
      ['DEVICE', 'VSIC', 'VSA', 'PID', 'RIGHTS', 'IOPS LIMIT', 'BYTES/S LIMIT'],
      online.map((v: any) => [v.device, v.cntlid, v.vsa, v.pid, v.rights, v.iopsLimit || 'none', v.bytesPerSecondLimit ? formatBytes(v.bytesPerSecondLimit) : 'none']),
    );
  }
  return out;
}

program
  .command('doctor')
  .description('check what this host offers: addon, shared memory, eventfd, fd passing, hugepages, VFIO, SR-IOV')
  .action(() => {
    const probes = runDoctor();
    if (globals().json) {
      process.stdout.write(`${JSON.stringify({ probes }, null, 2)}\n`);
    } else {
      process.stdout.write(table(['', 'CHECK', 'RESULT'], probes.map((p) => [p.ok ? 'ok' : 'no', p.name, p.detail])));
    }
    // The data path needs the first four; VFIO and SR-IOV are optional.
    process.exitCode = probes.slice(0, 4).every((p) => p.ok) ? EXIT_OK : EXIT_FAILURE;
  });

program
  .command('emulator')
  .description('run the software VSIC: an NVMe subsystem with SR-IOV semantics (PF + VFs) over shared memory')
  .requiredOption('--socket-dir <dir>', 'where pf.sock and vf-<n>.sock are created (owner-only)')
  .option('--store <spec>', 'memory:SIZE | file:PATH[,PATH...] | block:DEV[,DEV...]', 'memory:256M')
  .option('--size <bytes>', 'size of backing files created by the emulator, e.g. 4G')
  .option('--chunk <bytes>', 'allocation unit of the pool (thin provisioning), e.g. 1M')
  .option('--vfs <n>', 'secondary controllers (VFs)', '4')
  .option('--pollers <n>', 'poller threads', '1')
  .option('--spin-us <us>', 'how long a poller spins after its last command before it sleeps', '50')
  .option('--exit-with-parent', 'exit (flushing the store) when standard input closes: the supervising process died')
  .action((options: EmulatorCliOptions) => {
    runEmulator(options);
  });

program
  .command('daemon')
  .description('run the control plane: devices, VSAs, VSICs, capabilities')
  .requiredOption('--state <dir>', 'state directory (VSAs, capabilities, device sockets)')
  .option('--device <spec...>', 'emu:file:PATH[:SIZE] or emu:memory:SIZE (repeatable)', [])
  .option('--vfs <n>', 'VSICs per emulated device', '8')
  .action(async (options: { state: string; device: string[]; vfs: string }) => {
    // --socket or OFFPATH_SOCKET choose where to listen; otherwise DIR/daemon.sock.
    const socket = program.getOptionValueSource('socket') === 'default' && !process.env.OFFPATH_SOCKET ? undefined : globals().socket;
    if (options.device.length === 0) throw new UsageError('daemon: give at least one --device (e.g. emu:file:.offpath/emu0.img:4G)');
    const log = (event: Record<string, unknown>) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
    const daemon = new Daemon({ stateDir: options.state, devices: options.device, vfsPerDevice: integer(options.vfs, '--vfs'), log, ...(socket ? { socketPath: socket } : {}) });
    await daemon.start();
    const stop = () => void daemon.stop().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    const env = daemon.socketPath !== resolve(defaultSocketPath()) ? `OFFPATH_SOCKET=${daemon.socketPath} ` : '';
    process.stdout.write(
      `offpath daemon listening on ${daemon.socketPath}\n` +
        `next, in another terminal:\n` +
        `  ${env}npx offpath vsa create demo --size 256M\n` +
        `  ${env}npx offpath grant demo            # prints a capability token\n` +
        `  ${env}npx offpath status\n`,
    );
  });

program
  .command('status')
  .description('devices, VSICs (with QoS limits) and VSAs')
  .action(() =>
    daemonCall('status', {}, (r) => deviceRows(r.devices) + '\n' + (r.vsas.length ? vsaRows(r.vsas) : 'no VSAs\n') + `\n${r.capabilities} capabilities, ${r.sessions} VSAs open\n`),
  );

program
  .command('device')
  .description('devices')
  .command('list')
  .action(() => daemonCall('device.list', {}, (r) => deviceRows(r.devices)));

const vsa = program.command('vsa').description('virtual storage areas');
vsa
  .command('create <name>')
  .requiredOption('--size <bytes>', 'e.g. 256M, 10G')
  .option('--device <name>', 'device (default: the first)')
  .addOption(new Option('--block-size <bytes>', 'logical block size').choices(['512', '4096']).default('4096'))
  .action((name: string, options: { size: string; device?: string; blockSize: string }) =>
    daemonCall('vsa.create', { name, sizeBytes: size(options.size), device: options.device, blockBytes: Number(options.blockSize) }, (r) => vsaRows([r])),
  );
vsa.command('list').action(() => daemonCall('vsa.list', {}, (r) => (r.vsas.length ? vsaRows(r.vsas) : 'no VSAs\n')));
vsa.command('show <name>').action((name: string) => daemonCall('vsa.show', { name }, (r) => vsaRows([r])));
vsa
  .command('resize <name>')
  .requiredOption('--size <bytes>', 'new size')
  .action((name: string, options: { size: string }) => daemonCall('vsa.resize', { name, sizeBytes: size(options.size) }, (r) => vsaRows([r])));
vsa
  .command('delete <name>')
  .option('--force', 'delete even while an application has it open')
  .action((name: string, options: { force?: boolean }) => daemonCall('vsa.delete', { name, force: options.force === true }, (r) => `deleted ${r.deleted}\n`));

program
  .command('grant <vsa>')
  .description('create a capability for a VSA; prints the token once')
  .addOption(new Option('--rights <rights>', 'read-only or read-write').choices(['r', 'rw']).default('rw'))
  .option('--uid <uid>', 'only this local user may redeem it')
  .option('--expires <when>', '30m, 12h, 7d or an ISO date')
  .option('--iops <n>', 'IOPS limit of the VSIC')
  .option('--bandwidth <bytes>', 'bytes per second limit of the VSIC, e.g. 50M')
  .action((name: string, options: { rights: string; uid?: string; expires?: string; iops?: string; bandwidth?: string }) =>
    daemonCall(
      'cap.grant',
      {
        vsa: name,
        rights: options.rights,
        ...(options.uid ? { uid: integer(options.uid, '--uid') } : {}),
        ...(options.expires ? { expiresAt: expiry(options.expires) } : {}),
        ...(options.iops ? { iops: integer(options.iops, '--iops') } : {}),
        ...(options.bandwidth ? { bytesPerSecond: size(options.bandwidth) } : {}),
      },
      (r) => `${r.token}\n(capability ${r.id} for VSA ${r.vsa}, rights ${r.rights}; the token is shown only now)\n`,
    ),
  );

const cap = program.command('cap').description('capabilities');
cap.command('list').action(() =>
  daemonCall('cap.list', {}, (r) =>
    table(
      ['ID', 'VSA', 'RIGHTS', 'UID', 'EXPIRES', 'IOPS', 'BYTES/S', 'STATE'],
      r.capabilities.map((c: any) => [
        c.id,
        c.vsa,
        c.rights,
        c.uid,
        c.expiresAt ? new Date(c.expiresAt).toISOString() : null,
        c.iops,
        c.bytesPerSecond ? formatBytes(c.bytesPerSecond) : null,
        c.revokedAt ? 'revoked' : c.expiresAt && c.expiresAt <= Date.now() ? 'expired' : c.active ? 'in use' : 'valid',
      ]),
    ),
  ),
);
cap
  .command('revoke <id>')
  .description('revoke a capability: its VSIC goes offline at once')
  .action((id: string) => daemonCall('cap.revoke', { id }, (r) => `revoked ${r.id} (VSA ${r.vsa})\n`));

function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError || error instanceof RangeError || error instanceof TypeError) return EXIT_USAGE;
  const explicit = (error as { exitCode?: number }).exitCode;
  if (typeof explicit === 'number') return explicit;
  const code = (error as { code?: string }).code ?? '';
  if (code === 'EPERM' || code === 'EACCES') return EXIT_PERMISSION;
  if (code === 'EINVAL') return EXIT_USAGE;
  return EXIT_FAILURE;
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  } else {
    const code = (error as { code?: string }).code;
    process.stderr.write(`offpath: ${code && !(error as Error).message.includes(code) ? `${code}: ` : ''}${(error as Error).message ?? String(error)}\n`);
    process.exitCode = exitCodeOf(error);
  }
}
