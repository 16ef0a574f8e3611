#!/usr/bin/env node
/**
 * The `offpath` command line. Exit codes follow sysexits: 0 ok, 1 failure,
 * 64 usage, 69 daemon unreachable, 77 permission denied.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../libstorage/native.js';
import { runEmulator, type EmulatorCliOptions } from '../emulator/main.js';
import { runDoctor } from './doctor.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 64;

const { version } = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };

const program = new Command('offpath')
  .description('kernel-bypass storage for Node.js: VSAs, VSICs and capabilities')
  .version(version)
  .exitOverride();

program
  .command('doctor')
  .description('check what this host offers: addon, shared memory, eventfd, fd passing, hugepages, VFIO, SR-IOV')
  .option('--json', 'print one JSON document')
  .action((options: { json?: boolean }) => {
    const probes = runDoctor();
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ probes }, null, 2)}\n`);
    } else {
      const width = Math.max(...probes.map((p) => p.name.length));
      for (const p of probes) process.stdout.write(`${p.ok ? 'ok  ' : 'no  '} ${p.name.padEnd(width)}  ${p.detail}\n`);
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
  .action((options: EmulatorCliOptions) => {
    runEmulator(options);
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  } else {
    process.stderr.write(`offpath: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = (error as { exitCode?: number }).exitCode ?? EXIT_FAILURE;
  }
}
