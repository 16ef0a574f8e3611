// Small helpers for tests that speak raw NVMe through the driver.
import type { CommandResult, NvmeController } from '../../libstorage/driver/controller.js';
import type { DmaBuffer, DmaRegion } from '../../libstorage/dma.js';
import { NvmOpcode, rwSqe, type SqeFields } from '../../libstorage/nvme/spec.js';
import { decodeStatusField, statusName } from '../../libstorage/nvme/status.js';
import type { QueuePair } from '../../libstorage/queue/queue-pair.js';

/** 'SUCCESS' or the status name, with '+DNR' when Do Not Retry is set. */
export function statusOf(result: CommandResult): string {
  const { sct, sc, dnr } = decodeStatusField(result.status16);
  return statusName(sct, sc) + (dnr ? '+DNR' : '');
}

export function pattern(lengthBytes: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(lengthBytes);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < lengthBytes; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

export interface IoContext {
  controller: NvmeController;
  queue: QueuePair;
  region: DmaRegion;
  nsid: number;
}

/**
 * A read or write of `blocks` blocks at `slba` over a contiguous buffer: PRP1,
 * and PRP2 as the second page or (beyond two pages) a PRP list built here.
 */
export async function rw(
  io: IoContext,
  opc: number,
  slba: number,
  blocks: number,
  buffer: DmaBuffer,
  extra: Partial<SqeFields> & { fua?: boolean } = {},
): Promise<CommandResult> {
  const { fua, ...rest } = extra;
  const firstPageBytes = 4096 - (buffer.iova % 4096);
  const pages: number[] = [];
  for (let at = buffer.iova + firstPageBytes; at < buffer.iova + buffer.bytes.length; at += 4096) pages.push(at);
  let list: DmaBuffer | undefined;
  let prp2 = pages[0] ?? 0;
  if (pages.length > 1) {
    list = io.region.alloc(pages.length * 8);
    const view = new DataView(list.bytes.buffer, list.bytes.byteOffset, list.bytes.byteLength);
    pages.forEach((page, i) => view.setBigUint64(i * 8, BigInt(page), true));
    prp2 = list.iova;
  }
  try {
    return await io.controller.submit(io.queue, {
      ...rwSqe({ opc, cid: 0, nsid: io.nsid, slba, nlb: blocks - 1, fua: fua ?? false, prp1: buffer.iova, prp2 }),
      ...rest,
    });
  } finally {
    if (list) io.region.release(list);
  }
}

export const Read = NvmOpcode.READ;
export const Write = NvmOpcode.WRITE;
