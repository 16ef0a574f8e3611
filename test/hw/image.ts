/**
 * What the VM rig needs on the host, fetched once: Debian packages (QEMU,
 * static busybox, nvme-cli, cpio, kmod), Debian's own kernel unpacked from its
 * .deb under build/hw/kernel (never installed), and fresh sparse images that
 * back the emulated controller's namespaces.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Debian packages the rig runs on the host (the guest shares the host root, so nvme-cli too). */
export const HOST_PACKAGES = ['qemu-system-x86', 'busybox-static', 'nvme-cli', 'cpio', 'kmod'];

export class RigError extends Error {
  override name = 'RigError';
}

export interface Kernel {
  version: string;
  vmlinuz: string;
  /** The unpacked tree; modules under lib/modules/<version>. */
  root: string;
}

function run(command: string, args: string[], options: { cwd?: string } = {}): string {
  const result = spawnSync(command, args, { cwd: options.cwd, encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (result.error) throw new RigError(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new RigError(`${command} ${args.join(' ')} exited with ${result.status}:\n${(result.stderr || result.stdout).trim()}`);
  }
  return result.stdout;
}

function missingPackages(names: string[]): string[] {
  const result = spawnSync('dpkg-query', ['-W', '-f', '${Package} ${Status}\n', ...names], { encoding: 'utf8' });
  if (result.error) throw new RigError('dpkg-query not found: the VM rig needs a Debian-based host (apt-get)');
  const installed = new Set(
    result.stdout
      .split('\n')
      .filter((line) => line.endsWith(' installed'))
      .map((line) => line.split(' ')[0]),
  );
  return names.filter((name) => !installed.has(name));
}

let aptUpdated = false;
function aptUpdate(log: (line: string) => void): void {
  if (aptUpdated) return;
  log('apt-get update');
  run('apt-get', ['update', '-qq']);
  aptUpdated = true;
}

/** Installs the host packages that are missing; fails loudly when it cannot. */
export function ensureHostPackages(log: (line: string) => void): void {
  const missing = missingPackages(HOST_PACKAGES);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new RigError(`missing packages ${missing.join(' ')}; install them as root: apt-get install -y --no-install-recommends ${missing.join(' ')}`);
  }
  try {
    aptUpdate(log);
    log(`apt-get install ${missing.join(' ')}`);
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing]);
  } catch (error) {
    throw new RigError(`cannot install ${missing.join(' ')}, which the VM rig needs: ${(error as Error).message.replace(/\s*\n\s*/g, ' ')}`);
  }
  const still = missingPackages(HOST_PACKAGES);
  if (still.length > 0) throw new RigError(`apt-get did not install ${still.join(' ')}`);
}

/** The kernel package linux-image-amd64 points at, e.g. linux-image-6.1.0-26-amd64. */
function kernelPackageName(log: (line: string) => void): string {
  const depends = (): string | undefined => {
    const out = spawnSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8' }).stdout ?? '';
    return /Depends:\s*(linux-image-[0-9][^\s]*)/.exec(out)?.[1];
  };
  let name = depends();
  if (!name) {
    aptUpdate(log);
    name = depends();
  }
  if (!name) throw new RigError('apt-cache cannot resolve linux-image-amd64 (no Debian package lists?)');
  return name;
}

/** Debian's kernel, unpacked under cacheDir/kernel/<package> with modules.dep built. */
export function ensureKernel(cacheDir: string, log: (line: string) => void): Kernel {
  const kernelDir = join(cacheDir, 'kernel');
  // Reuse any unpacked kernel first: no apt round trip when offline.
  const cached = existsSync(kernelDir) ? readdirSync(kernelDir).filter((name) => existsSync(join(kernelDir, name, '.complete'))) : [];
  const packageName = cached.length > 0 ? cached.sort().at(-1)! : kernelPackageName(log);
  const root = join(kernelDir, packageName);
  if (!existsSync(join(root, '.complete'))) {
    rmSync(root, { recursive: true, force: true });
    const download = join(cacheDir, 'download');
    mkdirSync(download, { recursive: true });
    log(`apt-get download ${packageName}`);
    try {
      run('apt-get', ['download', '-qq', packageName], { cwd: download });
    } catch {
      aptUpdate(log);
      run('apt-get', ['download', '-qq', packageName], { cwd: download });
    }
    const deb = readdirSync(download).find((name) => name.startsWith(`${packageName}_`) && name.endsWith('.deb'));
    if (!deb) throw new RigError(`apt-get download left no ${packageName} .deb in ${download}`);
    mkdirSync(root, { recursive: true });
    run('dpkg', ['-x', join(download, deb), root]);
    rmSync(join(download, deb));
  }
  const modules = join(root, 'lib', 'modules');
  const version = existsSync(modules) ? readdirSync(modules)[0] : undefined;
  const vmlinuz = version ? join(root, 'boot', `vmlinuz-${version}`) : '';
  if (!version || !existsSync(vmlinuz)) throw new RigError(`${packageName} unpacked without boot/vmlinuz-* or lib/modules/*`);
  if (!existsSync(join(modules, version, 'modules.dep'))) run('depmod', ['-b', root, version]);
  writeFileSync(join(root, '.complete'), `${packageName}\n`);
  return { version, vmlinuz, root };
}

export interface NamespaceImage {
  nsid: number;
  path: string;
  bytes: number;
  /** Logical block size: 512 for odd nsids, 4096 for even ones (both shapes get exercised). */
  blockBytes: 512 | 4096;
}

/** Fresh all-zero sparse images, one per namespace (recreated every run so no old data passes a check). */
export function freshNamespaceImages(dir: string, count: number, bytes: number): NamespaceImage[] {
  mkdirSync(dir, { recursive: true });
  const images: NamespaceImage[] = [];
  for (let nsid = 1; nsid <= count; nsid++) {
    const path = join(dir, `ns${nsid}.img`);
    rmSync(path, { force: true });
    writeFileSync(path, '');
    truncateSync(path, bytes);
    images.push({ nsid, path, bytes, blockBytes: nsid % 2 ? 512 : 4096 });
  }
  return images;
}

/** Exits loudly unless QEMU's x86 system emulator runs here. */
export function qemuVersion(): string {
  try {
    return execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0]!;
  } catch (error) {
    throw new RigError(`qemu-system-x86_64 does not run: ${(error as Error).message}`);
  }
}
