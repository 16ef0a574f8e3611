/**
 * offpath — the data-plane library. Applications import this module:
 *
 *   import { open } from 'offpath';
 *   const vsa = await open('/run/offpath/vf-1.sock');
 *   const buffer = vsa.alloc(4096);           // registered memory: zero copy
 *   await vsa.write(0, buffer, { fua: true });
 *   await vsa.read(0, buffer);
 *   await vsa.close();
 */
export { StorageError } from './errors.js';
export type { NvmeStatusDetail, StorageErrorDetail } from './errors.js';
export { open, openQueue, Vsa } from './vsa.js';
export type { OpenOptions, QueueHandle, VsaTarget } from './vsa.js';
export { VsaQueue } from './io/vsa-queue.js';
export type { VsaRange, WriteOptions } from './io/vsa-queue.js';
export type { IoCallback } from './io/request.js';
