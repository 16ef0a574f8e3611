/**
 * StorageError: the one error class offpath throws for failures of storage
 * operations, with a stable `.code`:
 *  - an errno name from the operating system ('EBADF', 'ENOENT', ...),
 *  - an NVMe status name from the device ('LBA_OUT_OF_RANGE', ...),
 *  - or a library condition ('ECLOSED', 'ETIMEDOUT', 'ENOTMAPPED', ...).
 * Bad arguments are TypeError/RangeError instead and never reach a device.
 */
export interface NvmeStatusDetail {
  /** Status Code Type (CQE status bits 11:9). */
  sct: number;
  /** Status Code (CQE status bits 8:1). */
  sc: number;
  /** Do Not Retry: the same command will fail again. */
  dnr: boolean;
  /** More: the controller has more detail in the Error Information log. */
  more: boolean;
}

export interface StorageErrorDetail {
  errno?: number;
  syscall?: string;
  status?: NvmeStatusDetail;
  /** The NVMe command that failed, e.g. 'Read'. */
  command?: string;
  /** The VSA the command addressed. */
  vsa?: string;
  cause?: unknown;
}

export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code: string;
  errno?: number;
  syscall?: string;
  status?: NvmeStatusDetail;
  command?: string;
  vsa?: string;

  constructor(code: string, message: string, detail: StorageErrorDetail = {}) {
    super(message, detail.cause === undefined ? undefined : { cause: detail.cause });
    this.code = code;
    if (detail.errno !== undefined) this.errno = detail.errno;
    if (detail.syscall !== undefined) this.syscall = detail.syscall;
    if (detail.status !== undefined) this.status = detail.status;
    if (detail.command !== undefined) this.command = detail.command;
    if (detail.vsa !== undefined) this.vsa = detail.vsa;
  }
}
