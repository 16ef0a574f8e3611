/**
 * The daemon's control protocol (docs/control-protocol.md): one JSON object
 * per SOCK_SEQPACKET message, so a reply can carry file descriptors.
 *
 *   request  { v: 1, id, method, params }
 *   reply    { v: 1, id, ok: true, result }  or  { v: 1, id, ok: false, error: { code, message } }
 *   event    { v: 1, event, ... }            (unsolicited, e.g. a revoked capability)
 */
export const PROTOCOL_VERSION = 1;

/** Methods anyone may call (authorisation is the capability itself). */
export const PUBLIC_METHODS = new Set(['hello', 'open']);
/** Methods only root or the daemon's own user may call. */
export const ADMIN_METHODS = new Set([
  'status',
  'device.list',
  'vsa.create',
  'vsa.list',
  'vsa.show',
  'vsa.resize',
  'vsa.delete',
  'cap.grant',
  'cap.list',
  'cap.revoke',
]);

/** Stable error codes a client may see, beyond errno names and NVMe status names. */
export const ErrorCode = {
  CAP_UNKNOWN: 'CAP_UNKNOWN',
  CAP_REVOKED: 'CAP_REVOKED',
  CAP_EXPIRED: 'CAP_EXPIRED',
  CAP_WRONG_USER: 'CAP_WRONG_USER',
  VSA_EXISTS: 'VSA_EXISTS',
  VSA_NOT_FOUND: 'VSA_NOT_FOUND',
  VSA_BUSY: 'VSA_BUSY',
  NO_VSIC: 'NO_VSIC',
  DEVICE_NOT_FOUND: 'DEVICE_NOT_FOUND',
  PERMISSION: 'EPERM',
  BAD_REQUEST: 'EINVAL',
  PROTOCOL: 'EPROTO',
} as const;

export function defaultSocketPath(): string {
  return process.env.OFFPATH_SOCKET ?? '.offpath/daemon.sock';
}
