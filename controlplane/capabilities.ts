/**
 * Capabilities: unforgeable grants to attach one VSA with given rights. The
 * token is 192 random bits shown once; only its SHA-256 is stored, in a file
 * of its own named after a short public id (for listing and revoking).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCode } from '../libstorage/control-protocol.js';
import { StateFolder } from './state-files.js';

export type Rights = 'r' | 'rw';

export interface CapabilityRecord {
  id: string;
  /** SHA-256 of the token, hex. */
  hash: string;
  vsa: string;
  rights: Rights;
  /** Only this local user may redeem it (checked with SO_PEERCRED). */
  uid?: number;
  /** Milliseconds since the epoch. */
  expiresAt?: number;
  iops?: number;
  bytesPerSecond?: number;
  createdAt: number;
  revokedAt?: number;
}

export interface GrantRequest {
  vsa: string;
  rights: Rights;
  uid?: number;
  expiresAt?: number;
  iops?: number;
  bytesPerSecond?: number;
}

const TOKEN_PREFIX = 'opcap_';

function hashOf(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class CapabilityError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export class Capabilities {
  private readonly files: StateFolder;

  constructor(folder: string) {
    this.files = new StateFolder(folder);
  }

  /** Creates a capability; the token is returned once and never stored. */
  grant(request: GrantRequest, now = Date.now()): { token: string; record: CapabilityRecord } {
    const id = randomBytes(6).toString('hex');
    const token = `${TOKEN_PREFIX}${id}_${randomBytes(24).toString('base64url')}`;
    const record: CapabilityRecord = { id, hash: hashOf(token), createdAt: now, ...request };
    this.files.write(id, record);
    return { token, record };
  }

  list(): CapabilityRecord[] {
    return this.files.list<CapabilityRecord>();
  }

  get(id: string): CapabilityRecord | undefined {
    return /^[0-9a-f]{12}$/.test(id) ? this.files.read<CapabilityRecord>(id) : undefined;
  }

  revoke(id: string, now = Date.now()): CapabilityRecord {
    const record = this.get(id);
    if (!record) throw new CapabilityError(ErrorCode.CAP_UNKNOWN, `no capability ${id}`);
    if (record.revokedAt === undefined) {
      record.revokedAt = now;
      this.files.write(id, record);
    }
    return record;
  }

  /** Drops every capability naming a VSA (it is being deleted). */
  forgetVsa(vsa: string): void {
    for (const record of this.list()) if (record.vsa === vsa) this.files.remove(record.id);
  }

  /** The record a token redeems, or a CapabilityError saying exactly why not. */
  redeem(token: unknown, peerUid: number, now = Date.now()): CapabilityRecord {
    const match = typeof token === 'string' ? /^opcap_([0-9a-f]{12})_[A-Za-z0-9_-]{32}$/.exec(token) : null;
    const record = match ? this.get(match[1]!) : undefined;
    // Compare hashes in constant time; an unknown id and a wrong secret look alike.
    const expected = Buffer.from(record?.hash ?? '0'.repeat(64), 'hex');
    const actual = Buffer.from(hashOf(typeof token === 'string' ? token : ''), 'hex');
    if (!record || !timingSafeEqual(expected, actual)) throw new CapabilityError(ErrorCode.CAP_UNKNOWN, 'capability not recognised');
    if (record.revokedAt !== undefined) throw new CapabilityError(ErrorCode.CAP_REVOKED, `capability ${record.id} was revoked`);
    if (record.expiresAt !== undefined && now >= record.expiresAt) {
      throw new CapabilityError(ErrorCode.CAP_EXPIRED, `capability ${record.id} expired at ${new Date(record.expiresAt).toISOString()}`);
    }
    if (record.uid !== undefined && record.uid !== peerUid) {
      throw new CapabilityError(ErrorCode.CAP_WRONG_USER, `capability ${record.id} is for uid ${record.uid}, not ${peerUid}`);
    }
    return record;
  }
}
