/**
 * offpath — the data-plane library. Applications import this module.
 */
export { StorageError } from './errors.js';
export type { NvmeStatusDetail, StorageErrorDetail } from './errors.js';
