/** Turns a failed completion into a StorageError named after its NVMe status. */
import { StorageError } from '../errors.js';
import { decodeStatusField, statusName } from '../nvme/status.js';

export function statusError(status16: number, command: string, vsa?: string): StorageError {
  const { sct, sc, dnr, more } = decodeStatusField(status16);
  const name = statusName(sct, sc);
  const where = vsa === undefined ? '' : ` on VSA ${vsa}`;
  return new StorageError(name, `${command}${where} failed: ${name} (SCT ${sct}, SC 0x${sc.toString(16)}${dnr ? ', do not retry' : ''})`, {
    status: { sct, sc, dnr, more },
    command,
    ...(vsa === undefined ? {} : { vsa }),
  });
}
