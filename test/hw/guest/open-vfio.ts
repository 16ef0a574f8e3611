/**
 * What `open({ vfio: { device, group } })` does once libstorage/vsa.ts takes
 * it (see docs/hardware.md): the VSIC's controller brought up over a
 * VfioTransport, the namespace found, one queue pair with its interrupt
 * vector, a Vsa with the whole I/O API. Here until vsa.ts has it.
 */
import { NvmeController } from '../../../libstorage/driver/controller.js';
import { StorageError } from '../../../libstorage/errors.js';
import { queueRegionLayout, type VsaGeometry } from '../../../libstorage/io/vsa-queue.js';
import { VfioTransport, type VfioTarget } from '../../../libstorage/transport/vfio/vfio-transport.js';
import { Vsa } from '../../../libstorage/vsa.js';

export interface VfioOpenOptions {
  nsid?: number;
  queueEntries?: number;
  poolBytes?: number;
  name?: string;
}

export async function openVfio(target: VfioTarget, options: VfioOpenOptions = {}): Promise<{ vsa: Vsa; controller: NvmeController; transport: VfioTransport; interruptFd: number }> {
  const entries = options.queueEntries ?? 256;
  const poolBytes = options.poolBytes ?? 16 << 20;
  const transport = VfioTransport.open(target);
  let controller: NvmeController | undefined;
  try {
    controller = await NvmeController.bringUp(transport, { ioQueuePairs: 64 });
    const active = await controller.activeNamespaces();
    const nsid = options.nsid ?? active[0];
    if (nsid === undefined || !active.includes(nsid)) {
      throw new StorageError('ENOENT', nsid === undefined ? 'no VSA is attached to this VSIC' : `VSA nsid ${nsid} is not attached to this VSIC`);
    }
    const ns = await controller.identifyNamespace(nsid);
    const geometry: VsaGeometry = {
      name: options.name ?? `nsid-${nsid}`,
      nsid,
      blockBytes: ns.blockSizeBytes,
      blocks: Number(ns.nsze),
      maxTransferBytes: controller.identity.maxTransferBytes,
      sgl: controller.identity.sglSupported,
    };
    const layout = queueRegionLayout(entries, poolBytes);
    const sqid = controller.allocateQueueId();
    const region = await controller.newRegion(layout.regionBytes);
    const interrupts = await controller.createIoQueues(sqid, entries, region.iova + layout.sqOffset, region.iova + layout.cqOffset, sqid);
    const interruptFd = interrupts ? await transport.interruptFd(sqid) : -1;
    return { vsa: new Vsa(controller, geometry, region, sqid, entries, interruptFd), controller, transport, interruptFd };
  } catch (error) {
    if (controller) await controller.shutdown().catch(() => {});
    transport.close();
    throw error;
  }
}
