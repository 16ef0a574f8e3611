/**
 * The VM rig: boots Debian's kernel under QEMU with an emulated SR-IOV NVMe
 * controller and Intel IOMMU, runs one command inside it (in a chroot of this
 * host's root, from the repository folder) and returns its exit status and
 * output. See docs/hardware.md.
 *
 *   node --import tsx test/hw/run.ts [guest-command...]
 *
 * Without a command it runs the guest suite (test/hw/guest/suite.ts). Exits
 * with the guest command's status, or 2 when the rig itself fails (QEMU
 * cannot be installed, the guest did not finish in time, ...).
 * OFFPATH_HW_TIMEOUT_S bounds the boot (default 420); OFFPATH_HW_QUIET=1
 * keeps the console off stdout.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RigError, ensureHostPackages, ensureKernel, freshNamespaceImages, qemuVersion, type NamespaceImage } from './image.js';
import { SHARE_COMMAND, SHARE_OUTPUT, SHARE_STATUS, buildInitramfs } from './initramfs.js';
import { boot } from './qemu.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const HW_DIR = join(REPO_ROOT, 'build', 'hw');
export const SHARE_DIR = join(HW_DIR, 'share');
export const DEFAULT_GUEST_COMMAND = ['node', '--import', 'tsx', 'test/hw/guest/suite.ts'];
/** Namespaces of the emulated subsystem: nsid 1..4, detached at boot. */
export const NAMESPACE_COUNT = 4;
export const NAMESPACE_BYTES = 64 << 20;

export interface VmRun {
  /** The guest command's exit status; null if it never reported one. */
  status: number | null;
  /** What the guest command printed (stdout and stderr). */
  output: string;
  /** The whole serial console. */
  console: string;
  timedOut: boolean;
  bootMs: number;
  totalMs: number;
  shareDir: string;
  namespaces: NamespaceImage[];
}

export interface VmOptions {
  timeoutMs?: number;
  log?: (line: string) => void;
  onConsole?: (chunk: string) => void;
}

const quote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);

/** One rig at a time per checkout: the share and images are shared state. */
function lock(): () => void {
  mkdirSync(HW_DIR, { recursive: true });
  const path = join(HW_DIR, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch {
      const owner = Number(readFileSync(path, 'utf8'));
      let alive = false;
      try {
        process.kill(owner, 0);
        alive = owner !== process.pid;
      } catch {}
      if (alive) throw new RigError(`another VM rig (pid ${owner}) is running in this checkout`);
      rmSync(path, { force: true });
    }
  }
  throw new RigError(`cannot take ${path}`);
}

/** Prepares everything (installing what is missing), boots, runs `command` in the guest. */
export async function runInVm(command: string[], options: VmOptions = {}): Promise<VmRun> {
  const started = Date.now();
  const log = options.log ?? ((line: string) => process.stderr.write(`hw: ${line}\n`));
  const unlock = lock();
  try {
    ensureHostPackages(log);
    log(qemuVersion());
    const kernel = ensureKernel(HW_DIR, log);
    rmSync(SHARE_DIR, { recursive: true, force: true });
    mkdirSync(SHARE_DIR, { recursive: true });
    const initrd = buildInitramfs(kernel, HW_DIR, REPO_ROOT, SHARE_DIR);
    const namespaces = freshNamespaceImages(join(HW_DIR, 'images'), NAMESPACE_COUNT, NAMESPACE_BYTES);
    writeFileSync(join(SHARE_DIR, SHARE_COMMAND), `exec ${command.map(quote).join(' ')}\n`);
    log(`booting Linux ${kernel.version} under TCG: ${command.join(' ')}`);
    const result = await boot({
      kernel,
      initrd,
      shareDir: SHARE_DIR,
      namespaces,
      timeoutMs: options.timeoutMs ?? 420_000,
      consoleLog: join(HW_DIR, 'console.log'),
      onConsole: options.onConsole,
    });
    const statusFile = join(SHARE_DIR, SHARE_STATUS);
    const outputFile = join(SHARE_DIR, SHARE_OUTPUT);
    const status = existsSync(statusFile) ? Number(readFileSync(statusFile, 'utf8').trim()) : null;
    const output = existsSync(outputFile) ? readFileSync(outputFile, 'utf8') : '';
    if (result.timedOut) log(`QEMU killed after ${options.timeoutMs ?? 420_000} ms`);
    else if (result.qemuStatus !== 0) log(`QEMU exited with ${result.qemuStatus ?? result.signal}`);
    return {
      status,
      output,
      console: result.console,
      timedOut: result.timedOut,
      bootMs: result.elapsedMs,
      totalMs: Date.now() - started,
      shareDir: SHARE_DIR,
      namespaces,
    };
  } finally {
    unlock();
  }
}

async function main(): Promise<void> {
  const command = process.argv.length > 2 ? process.argv.slice(2) : DEFAULT_GUEST_COMMAND;
  const quiet = process.env.OFFPATH_HW_QUIET === '1';
  let run: VmRun;
  try {
    run = await runInVm(command, {
      timeoutMs: Number(process.env.OFFPATH_HW_TIMEOUT_S ?? 420) * 1000,
      onConsole: quiet ? undefined : (chunk) => process.stdout.write(chunk),
    });
  } catch (error) {
    process.stderr.write(`hw: FAILED: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  }
  if (quiet) process.stdout.write(run.output);
  const seconds = (ms: number) => (ms / 1000).toFixed(1);
  if (run.status === null) {
    process.stderr.write(`hw: FAILED: the guest command reported no status (${run.timedOut ? 'timed out' : 'guest died'}); console in build/hw/console.log\n`);
    process.exit(2);
  }
  process.stderr.write(`hw: guest command exited ${run.status}; VM ${seconds(run.bootMs)} s, total ${seconds(run.totalMs)} s\n`);
  process.exit(run.status);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
