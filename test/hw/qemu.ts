/**
 * Boots the guest under QEMU TCG (nested KVM hangs in early boot here): q35
 * with an emulated Intel IOMMU (interrupt remapping on, or VFIO_SET_IOMMU
 * fails with EPERM), the host root and the results share over virtio-9p, and
 * an NVMe subsystem whose controller offers SR-IOV with flexible resources
 * and whose namespaces start detached, each backed by a raw image file.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import type { Kernel, NamespaceImage } from './image.js';
import { HOST_ROOT_TAG, SHARE_TAG } from './initramfs.js';

export interface BootOptions {
  kernel: Kernel;
  initrd: string;
  shareDir: string;
  namespaces: NamespaceImage[];
  /** QEMU is killed after this long. */
  timeoutMs: number;
  /** The serial console goes here as it arrives, and to consoleLog. */
  onConsole?: (chunk: string) => void;
  consoleLog: string;
  memoryMiB?: number;
  cpus?: number;
}

export interface BootResult {
  /** QEMU's own exit code (0 after the guest powered off). */
  qemuStatus: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  elapsedMs: number;
  console: string;
}

export const NVME_SERIAL = 'OFFPATHHW0';

export function qemuArgs(options: BootOptions): string[] {
  const args = [
    '-machine', 'q35,kernel-irqchip=split',
    '-accel', 'tcg,thread=multi',
    '-cpu', 'max',
    '-m', String(options.memoryMiB ?? 1024),
    '-smp', String(options.cpus ?? 2),
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-serial', 'stdio', '-monitor', 'none',
    '-kernel', options.kernel.vmlinuz,
    '-initrd', options.initrd,
    '-append', 'console=ttyS0 intel_iommu=on quiet loglevel=3 panic=-1',
    '-device', 'intel-iommu,intremap=on',
    '-virtfs', `local,path=/,mount_tag=${HOST_ROOT_TAG},security_model=none,readonly=on,multidevs=remap`,
    '-virtfs', `local,path=${options.shareDir},mount_tag=${SHARE_TAG},security_model=none,multidevs=remap`,
    '-device', 'pcie-root-port,id=rp0,chassis=1',
    '-device', 'nvme-subsys,id=subsys0',
    '-device', `nvme,serial=${NVME_SERIAL},subsys=subsys0,bus=rp0,sriov_max_vfs=4,sriov_vq_flexible=16,sriov_vi_flexible=8`,
  ];
  for (const ns of options.namespaces) {
    args.push('-drive', `if=none,id=nvm${ns.nsid},file=${ns.path},format=raw,cache=writeback,discard=unmap`);
    args.push('-device', `nvme-ns,drive=nvm${ns.nsid},nsid=${ns.nsid},logical_block_size=${ns.blockBytes},physical_block_size=${ns.blockBytes},shared=false,detached=true`);
  }
  return args;
}

export function boot(options: BootOptions): Promise<BootResult> {
  const started = Date.now();
  const log = createWriteStream(options.consoleLog);
  return new Promise((resolve, reject) => {
    const child = spawn('qemu-system-x86_64', qemuArgs(options), { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let timedOut = false;
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output += text;
      log.write(text);
      options.onConsole?.(text);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      log.end();
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      log.end();
      resolve({ qemuStatus: code, signal, timedOut, elapsedMs: Date.now() - started, console: output });
    });
  });
}
