/**
 * The guest's initramfs: static busybox, the kernel modules the rig needs
 * (with their dependencies, in load order, from modules.dep) and an /init
 * that mounts the host root read-only over 9p, mounts the read-write results
 * share over its host path, chroots into the host root, runs the command
 * script the host left in the share, records its exit status and powers off.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { RigError, type Kernel } from './image.js';

/** Modules the guest loads; their dependencies come along. */
export const GUEST_MODULES = ['9p', '9pnet_virtio', 'virtio_pci', 'nvme', 'vfio_pci', 'vfio_iommu_type1'];

/** 9p mount tags, shared with qemu.ts. */
export const HOST_ROOT_TAG = 'hostroot';
export const SHARE_TAG = 'results';

/** In the share: the command script (host → guest), its exit status and output (guest → host). */
export const SHARE_COMMAND = 'command.sh';
export const SHARE_STATUS = 'status';
export const SHARE_OUTPUT = 'output.log';

const normal = (name: string) => name.replace(/-/g, '_');
const moduleName = (path: string) => normal(basename(path).replace(/\.ko(\.xz|\.zst)?$/, ''));

/** Module files of `wanted` and all they depend on, each after its dependencies. */
export function moduleLoadOrder(kernel: Kernel, wanted: string[]): string[] {
  const dir = join(kernel.root, 'lib', 'modules', kernel.version);
  const deps = new Map<string, { file: string; needs: string[] }>();
  for (const line of readFileSync(join(dir, 'modules.dep'), 'utf8').split('\n')) {
    const [file, rest] = line.split(':');
    if (!file || rest === undefined) continue;
    deps.set(moduleName(file), { file, needs: rest.trim().split(/\s+/).filter(Boolean).map(moduleName) });
  }
  const builtin = new Set(readFileSync(join(dir, 'modules.builtin'), 'utf8').split('\n').filter(Boolean).map(moduleName));
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    const entry = deps.get(name);
    if (!entry) {
      if (builtin.has(name)) return;
      throw new RigError(`kernel ${kernel.version} has no module ${name}`);
    }
    for (const need of entry.needs) visit(need);
    order.push(join(dir, entry.file));
  };
  for (const name of wanted.map(normal)) visit(name);
  return order;
}

function initScript(repoRoot: string, shareDir: string): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do insmod /modules/$m || echo "init: insmod $m failed"; done
mkdir -p /newroot /share
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro ${HOST_ROOT_TAG} /newroot || echo "init: cannot mount the host root"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ${SHARE_TAG} /share || echo "init: cannot mount the share"
mount -o bind /share /newroot${shareDir}
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/shm /newroot/dev/pts
ln -sf /proc/self/fd /newroot/dev/fd
mount -t tmpfs tmpfs /newroot/dev/shm
mount -t tmpfs tmpfs /newroot/run
mkdir -p /newroot/run/tmp
# Scratch space is /run/tmp (TMPDIR). A tmpfs over /tmp too, unless the
# checkout itself lives under /tmp (CI clones anywhere): it would hide it.
case "${repoRoot}" in /tmp/*) ;; *) mount -t tmpfs tmpfs /newroot/tmp ;; esac
echo "init: ready after $(cut -d' ' -f1 /proc/uptime) s"
(
  chroot /newroot /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    HOME=/run/tmp TMPDIR=/run/tmp TERM=dumb OFFPATH_HW_GUEST=1 OFFPATH_HW_SHARE=${shareDir} \\
    /bin/sh -c 'cd ${repoRoot} && exec /bin/sh ${shareDir}/${SHARE_COMMAND}'
  echo $? > /share/${SHARE_STATUS}
) 2>&1 | tee /share/${SHARE_OUTPUT}
echo "init: done after $(cut -d' ' -f1 /proc/uptime) s, status $(cat /share/${SHARE_STATUS})"
sync
umount /newroot${shareDir} /share 2>/dev/null
poweroff -f
`;
}

/**
 * Builds buildDir/initrd.cpio (uncompressed newc: nothing to gain from
 * compressing a few MB the kernel reads from memory).
 */
export function buildInitramfs(kernel: Kernel, buildDir: string, repoRoot: string, shareDir: string): string {
  if (/[\s'"\\$`]/.test(repoRoot + shareDir)) throw new RigError('the repository path must not contain spaces or shell quoting characters');
  const stage = join(buildDir, 'initramfs');
  rmSync(stage, { recursive: true, force: true });
  for (const dir of ['bin', 'modules', 'proc', 'sys', 'dev']) mkdirSync(join(stage, dir), { recursive: true });
  copyFileSync('/bin/busybox', join(stage, 'bin', 'busybox'));
  chmodSync(join(stage, 'bin', 'busybox'), 0o755);
  const names: string[] = [];
  for (const file of moduleLoadOrder(kernel, GUEST_MODULES)) {
    const name = basename(file).replace(/\.(xz|zst)$/, '');
    if (file.endsWith('.xz')) writeFileSync(join(stage, 'modules', name), execFileSync('xz', ['-dc', file]));
    else if (file.endsWith('.zst')) writeFileSync(join(stage, 'modules', name), execFileSync('zstd', ['-dc', file]));
    else copyFileSync(file, join(stage, 'modules', name));
    names.push(name);
  }
  writeFileSync(join(stage, 'modules', 'order'), names.join('\n') + '\n');
  writeFileSync(join(stage, 'init'), initScript(repoRoot, shareDir), { mode: 0o755 });
  const output = join(buildDir, 'initrd.cpio');
  execFileSync('sh', ['-c', `cd '${stage}' && find . | cpio --quiet -o -H newc > '${output}'`]);
  return output;
}
