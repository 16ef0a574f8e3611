/**
 * `open({ vfio })` for the guest suite, which also inspects the driver, the
 * transport and the I/O queue's interrupt under the Vsa.
 */
import type { NvmeController } from '../../../libstorage/driver/controller.js';
import type { VfioTarget, VfioTransport } from '../../../libstorage/transport/vfio/vfio-transport.js';
import { open, type OpenOptions, type Vsa } from '../../../libstorage/vsa.js';

export async function openVfio(
  target: VfioTarget,
  options: OpenOptions = {},
): Promise<{ vsa: Vsa; controller: NvmeController; transport: VfioTransport; interruptFd: number }> {
  const vsa = await open({ vfio: target }, options);
  return { vsa, controller: vsa.controller, transport: vsa.controller.transport as VfioTransport, interruptFd: vsa.interruptFd };
}
