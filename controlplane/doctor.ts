/**
 * `offpath doctor`: what this host offers a user-space storage stack, checked
 * for real (each probe performs the operation it reports on).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { native } from '../libstorage/native.js';

export interface Probe {
  name: string;
  ok: boolean;
  detail: string;
}

function probe(name: string, run: () => string): Probe {
  try {
    return { name, ok: true, detail: run() };
  } catch (error) {
    const detail = error instanceof Error ? ((error as { code?: string }).code ?? error.message) : String(error);
    return { name, ok: false, detail };
  }
}

function readTrimmed(path: string): string {
  return readFileSync(path, 'utf8').trim();
}

/** SR-IOV capable PCI functions and how many VFs each has enabled. */
function sriovDevices(): string {
  const root = '/sys/bus/pci/devices';
  const found = readdirSync(root)
    .filter((address) => existsSync(`${root}/${address}/sriov_totalvfs`))
    .map((address) => `${address} (${readTrimmed(`${root}/${address}/sriov_numvfs`)}/${readTrimmed(`${root}/${address}/sriov_totalvfs`)} VFs)`);
  if (found.length === 0) throw new Error('no SR-IOV capable PCI function; the emulator serves as the VSIC');
  return found.join(', ');
}

export function runDoctor(): Probe[] {
  return [
    probe('native addon', () => `loaded (${Object.keys(native).length} exports)`),
    probe('shared memory (memfd + mmap)', () => {
      const fd = native.memfdCreate('offpath-doctor');
      native.ftruncate(fd, 4096);
      const buffer = native.mmap(fd, 4096);
      native.store32Fenced(buffer, 0, 0x4f464650);
      const value = native.load32Acquire(buffer, 0);
      native.munmap(buffer);
      native.closeFd(fd);
      if (value !== 0x4f464650) throw new Error('mapped memory did not read back');
      return 'read back through a MAP_SHARED mapping';
    }),
    probe('eventfd', () => {
      const fd = native.eventfdCreate();
      native.eventfdSignal(fd, 3);
      const count = native.eventfdRead(fd);
      native.closeFd(fd);
      if (count !== 3) throw new Error(`counter read ${count}, expected 3`);
      return 'signal and read';
    }),
    probe('fd passing (SOCK_SEQPACKET, SCM_RIGHTS)', () => {
      const [a, b] = native.seqpacketPair();
      const passed = native.eventfdCreate();
      native.seqpacketSend(a, Buffer.from('fd'), [passed]);
      const message = native.seqpacketRecv(b)!;
      for (const fd of [a, b, passed, ...message.fds]) native.closeFd(fd);
      if (message.fds.length !== 1) throw new Error('no fd arrived');
      return 'one fd passed';
    }),
    probe('DMA memory (hugepages)', () => {
      const region = native.dmaAlloc(4096, { hugepage: 'prefer' });
      native.munmap(region.buffer);
      native.closeFd(region.fd);
      return region.hugepage ? '2 MiB hugepages' : '4 KiB pages (no hugetlb pool: vm.nr_hugepages is 0)';
    }),
    probe('VFIO', () => {
      if (!existsSync('/dev/vfio/vfio')) throw new Error('/dev/vfio/vfio missing (modprobe vfio-pci)');
      return `${readdirSync('/dev/vfio').length - 1} IOMMU group(s) bound`;
    }),
    probe('SR-IOV NVMe', sriovDevices),
  ];
}
