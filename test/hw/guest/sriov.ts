/**
 * Setting up SR-IOV VFs of an NVMe PF the way an operator would, with the
 * kernel's nvme driver on the PF, nvme-cli and sysfs: create the VFs with
 * driver autoprobe off, assign flexible queue and interrupt resources to
 * each secondary controller and bring it online (Virtualization Management),
 * attach namespaces (Namespace Attachment), bind VFs to vfio-pci or nvme.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

const PCI = '/sys/bus/pci/devices';
/** PCI class of an NVMe controller (mass storage, NVM, NVMe). */
const NVME_CLASS = '0x010802';

export interface Pf {
  address: string;
  /** /dev/nvmeN of the kernel driver on the PF. */
  ctrl: string;
  totalVfs: number;
}

export interface SecondaryController {
  scid: number;
  vfn: number;
  online: boolean;
  queues: number;
  interrupts: number;
}

export function nvme(args: string[]): string {
  return execFileSync('nvme', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const sysfs = (path: string) => readFileSync(path, 'utf8').trim();

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The first NVMe PF that offers VFs, once the kernel driver has it. */
export async function findPf(): Promise<Pf> {
  const address = readdirSync(PCI).find(
    (name) => sysfs(`${PCI}/${name}/class`) === NVME_CLASS && existsSync(`${PCI}/${name}/sriov_totalvfs`) && Number(sysfs(`${PCI}/${name}/sriov_totalvfs`)) > 0,
  );
  if (!address) throw new Error('no NVMe controller with SR-IOV found');
  const ctrl = await waitFor(`the nvme driver on ${address}`, () => {
    const dir = `${PCI}/${address}/nvme`;
    const name = existsSync(dir) ? readdirSync(dir)[0] : undefined;
    return name && existsSync(`/dev/${name}`) ? `/dev/${name}` : undefined;
  });
  return { address, ctrl, totalVfs: Number(sysfs(`${PCI}/${address}/sriov_totalvfs`)) };
}

export function secondaryControllers(pf: Pf): SecondaryController[] {
  const list = JSON.parse(nvme(['list-secondary', pf.ctrl, '-o', 'json'])) as { 'secondary-controllers': Array<Record<string, number>> };
  return list['secondary-controllers'].map((entry) => ({
    scid: entry['secondary-controller-identifier']!,
    vfn: entry['virtual-function-number']!,
    online: entry['secondary-controller-state'] === 1,
    queues: entry['num-virtual-queues']!,
    interrupts: entry['num-virtual-interrupts']!,
  }));
}

/** Creates `count` VFs with no driver bound (autoprobe off). */
export function enableVfs(pf: Pf, count: number): string[] {
  writeFileSync(`${PCI}/${pf.address}/sriov_drivers_autoprobe`, '0');
  if (Number(sysfs(`${PCI}/${pf.address}/sriov_numvfs`)) !== count) {
    writeFileSync(`${PCI}/${pf.address}/sriov_numvfs`, '0');
    writeFileSync(`${PCI}/${pf.address}/sriov_numvfs`, String(count));
  }
  return Array.from({ length: count }, (_, i) => basename(readlinkSync(`${PCI}/${pf.address}/virtfn${i}`)));
}

/** Assigns VQ and VI resources to a secondary controller, then brings it online. */
export function bringOnline(pf: Pf, scid: number, queues: number, interrupts: number): void {
  const c = String(scid);
  nvme(['virt-mgmt', pf.ctrl, '-c', c, '-r', '0', '-a', '8', '-n', String(queues)]);
  nvme(['virt-mgmt', pf.ctrl, '-c', c, '-r', '1', '-a', '8', '-n', String(interrupts)]);
  nvme(['virt-mgmt', pf.ctrl, '-c', c, '-a', '9']);
}

export function attachNamespace(pf: Pf, nsid: number, cntlid: number): void {
  nvme(['attach-ns', pf.ctrl, '-n', String(nsid), '-c', String(cntlid)]);
}

/** The driver bound to a PCI function, or undefined. */
export function driverOf(address: string): string | undefined {
  const link = `${PCI}/${address}/driver`;
  return existsSync(link) ? basename(readlinkSync(link)) : undefined;
}

/** Binds a function to `driver` ('vfio-pci' or 'nvme') through driver_override. */
export async function bindDriver(address: string, driver: string): Promise<void> {
  const current = driverOf(address);
  if (current === driver) return;
  if (current) writeFileSync(`${PCI}/${address}/driver/unbind`, address);
  writeFileSync(`${PCI}/${address}/driver_override`, driver);
  writeFileSync('/sys/bus/pci/drivers_probe', address);
  await waitFor(`${address} bound to ${driver}`, () => driverOf(address) === driver);
}

/**
 * The block device of namespace `nsid` behind the kernel nvme driver on a
 * function: /dev/nvmeXnY (with native multipath, the head device named
 * after the subsystem, not the controller).
 */
export async function blockDeviceOf(address: string, nsid: number, timeoutMs = 20_000): Promise<string> {
  return waitFor(
    `namespace ${nsid} of ${address} as a block device`,
    () => {
      const dir = `${PCI}/${address}/nvme`;
      const ctrl = existsSync(dir) ? readdirSync(dir)[0] : undefined;
      if (!ctrl) return undefined;
      for (const entry of readdirSync(`/sys/class/nvme/${ctrl}`)) {
        if (!/^nvme\d+(c\d+)?n\d+$/.test(entry)) continue;
        const nsidFile = `/sys/class/nvme/${ctrl}/${entry}/nsid`;
        if (!existsSync(nsidFile) || Number(sysfs(nsidFile)) !== nsid) continue;
        const head = entry.replace(/c\d+n/, 'n');
        if (existsSync(`/dev/${head}`)) return `/dev/${head}`;
      }
      return undefined;
    },
    timeoutMs,
  );
}
