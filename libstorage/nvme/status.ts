// NVMe completion status: the 16-bit STATUS field of a completion queue entry
// (also found in the Error Information log) and the status code tables.
// Mirrored in addon/include/offpath/nvme_spec.h; see spec.ts for the contract.

import { type Flag, flagBit, getBits, hex2, invertEnum, putBits } from './bits.js';

// STATUS field bits. The phase tag shares the field so one 16-bit read tells
// a poller both "is this entry new" and "did it fail".
export const STATUS_PHASE_SHIFT = 0;
export const STATUS_PHASE_MASK = 0x1;
export const STATUS_SC_SHIFT = 1;
export const STATUS_SC_MASK = 0xff;
export const STATUS_SCT_SHIFT = 9;
export const STATUS_SCT_MASK = 0x7;
/** Command Retry Delay: selects one of Identify Controller CRDT1..3 (0 = retry at once). */
export const STATUS_CRD_SHIFT = 12;
export const STATUS_CRD_MASK = 0x3;
export const STATUS_MORE_SHIFT = 14;
export const STATUS_MORE_MASK = 0x1;
export const STATUS_DNR_SHIFT = 15;
export const STATUS_DNR_MASK = 0x1;

export const StatusCodeType = {
  GENERIC: 0x0,
  COMMAND_SPECIFIC: 0x1,
  MEDIA_DATA_INTEGRITY: 0x2,
  PATH: 0x3,
  VENDOR_SPECIFIC: 0x7,
} as const;
export type StatusCodeType = (typeof StatusCodeType)[keyof typeof StatusCodeType];

/** SCT 0. Codes from 0x80 up belong to the NVM command set. */
export const GenericStatus = {
  SUCCESS: 0x00,
  INVALID_OPCODE: 0x01,
  INVALID_FIELD: 0x02,
  CID_CONFLICT: 0x03,
  DATA_TRANSFER_ERROR: 0x04,
  ABORTED_POWER_LOSS: 0x05,
  INTERNAL_ERROR: 0x06,
  ABORTED_BY_REQUEST: 0x07,
  ABORTED_SQ_DELETION: 0x08,
  ABORTED_FAILED_FUSED: 0x09,
  ABORTED_MISSING_FUSED: 0x0a,
  INVALID_NAMESPACE_OR_FORMAT: 0x0b,
  COMMAND_SEQUENCE_ERROR: 0x0c,
  INVALID_SGL_SEGMENT_DESCRIPTOR: 0x0d,
  INVALID_NUMBER_OF_SGL_DESCRIPTORS: 0x0e,
  DATA_SGL_LENGTH_INVALID: 0x0f,
  METADATA_SGL_LENGTH_INVALID: 0x10,
  SGL_DESCRIPTOR_TYPE_INVALID: 0x11,
  INVALID_USE_OF_CMB: 0x12,
  PRP_OFFSET_INVALID: 0x13,
  ATOMIC_WRITE_UNIT_EXCEEDED: 0x14,
  OPERATION_DENIED: 0x15,
  SGL_OFFSET_INVALID: 0x16,
  HOST_ID_INCONSISTENT_FORMAT: 0x18,
  KEEP_ALIVE_EXPIRED: 0x19,
  INVALID_KEEP_ALIVE_TIMEOUT: 0x1a,
  ABORTED_PREEMPT: 0x1b,
  SANITIZE_FAILED: 0x1c,
  SANITIZE_IN_PROGRESS: 0x1d,
  SGL_DATA_BLOCK_GRANULARITY_INVALID: 0x1e,
  COMMAND_NOT_SUPPORTED_FOR_CMB_QUEUE: 0x1f,
  NS_WRITE_PROTECTED: 0x20,
  COMMAND_INTERRUPTED: 0x21,
  TRANSIENT_TRANSPORT_ERROR: 0x22,
  LBA_OUT_OF_RANGE: 0x80,
  CAPACITY_EXCEEDED: 0x81,
  NAMESPACE_NOT_READY: 0x82,
  RESERVATION_CONFLICT: 0x83,
  FORMAT_IN_PROGRESS: 0x84,
} as const;

/** SCT 1. Codes from 0x80 up belong to the NVM command set. */
export const CommandSpecificStatus = {
  COMPLETION_QUEUE_INVALID: 0x00,
  INVALID_QUEUE_IDENTIFIER: 0x01,
  INVALID_QUEUE_SIZE: 0x02,
  ABORT_COMMAND_LIMIT_EXCEEDED: 0x03,
  ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED: 0x05,
  INVALID_FIRMWARE_SLOT: 0x06,
  INVALID_FIRMWARE_IMAGE: 0x07,
  INVALID_INTERRUPT_VECTOR: 0x08,
  INVALID_LOG_PAGE: 0x09,
  INVALID_FORMAT: 0x0a,
  FIRMWARE_REQUIRES_CONVENTIONAL_RESET: 0x0b,
  INVALID_QUEUE_DELETION: 0x0c,
  FEATURE_ID_NOT_SAVEABLE: 0x0d,
  FEATURE_NOT_CHANGEABLE: 0x0e,
  FEATURE_NOT_NAMESPACE_SPECIFIC: 0x0f,
  FIRMWARE_REQUIRES_SUBSYSTEM_RESET: 0x10,
  FIRMWARE_REQUIRES_RESET: 0x11,
  FIRMWARE_REQUIRES_MAX_TIME_VIOLATION: 0x12,
  FIRMWARE_ACTIVATION_PROHIBITED: 0x13,
  OVERLAPPING_RANGE: 0x14,
  NAMESPACE_INSUFFICIENT_CAPACITY: 0x15,
  NAMESPACE_ID_UNAVAILABLE: 0x16,
  NAMESPACE_ALREADY_ATTACHED: 0x18,
  NAMESPACE_IS_PRIVATE: 0x19,
  NAMESPACE_NOT_ATTACHED: 0x1a,
  THIN_PROVISIONING_NOT_SUPPORTED: 0x1b,
  CONTROLLER_LIST_INVALID: 0x1c,
  DEVICE_SELF_TEST_IN_PROGRESS: 0x1d,
  BOOT_PARTITION_WRITE_PROHIBITED: 0x1e,
  INVALID_CONTROLLER_IDENTIFIER: 0x1f,
  INVALID_SECONDARY_CONTROLLER_STATE: 0x20,
  INVALID_NUMBER_OF_CONTROLLER_RESOURCES: 0x21,
  INVALID_RESOURCE_IDENTIFIER: 0x22,
  SANITIZE_PROHIBITED_WHILE_PMR_ENABLED: 0x23,
  ANA_GROUP_IDENTIFIER_INVALID: 0x24,
  ANA_ATTACH_FAILED: 0x25,
  CONFLICTING_ATTRIBUTES: 0x80,
  INVALID_PROTECTION_INFORMATION: 0x81,
  ATTEMPTED_WRITE_TO_READ_ONLY_RANGE: 0x82,
} as const;

/** SCT 2. */
export const MediaStatus = {
  WRITE_FAULT: 0x80,
  UNRECOVERED_READ_ERROR: 0x81,
  END_TO_END_GUARD: 0x82,
  END_TO_END_APPLICATION_TAG: 0x83,
  END_TO_END_REFERENCE_TAG: 0x84,
  COMPARE_FAILURE: 0x85,
  ACCESS_DENIED: 0x86,
  DEALLOCATED_OR_UNWRITTEN_BLOCK: 0x87,
} as const;

/** SCT 3. */
export const PathStatus = {
  INTERNAL_PATH_ERROR: 0x00,
  ASYMMETRIC_ACCESS_PERSISTENT_LOSS: 0x01,
  ASYMMETRIC_ACCESS_INACCESSIBLE: 0x02,
  ASYMMETRIC_ACCESS_TRANSITION: 0x03,
  CONTROLLER_PATHING_ERROR: 0x60,
  HOST_PATHING_ERROR: 0x70,
  COMMAND_ABORTED_BY_HOST: 0x71,
} as const;

const STATUS_NAMES: ReadonlyMap<number, ReadonlyMap<number, string>> = new Map([
  [StatusCodeType.GENERIC, invertEnum(GenericStatus)],
  [StatusCodeType.COMMAND_SPECIFIC, invertEnum(CommandSpecificStatus)],
  [StatusCodeType.MEDIA_DATA_INTEGRITY, invertEnum(MediaStatus)],
  [StatusCodeType.PATH, invertEnum(PathStatus)],
]);

/**
 * A stable UPPER_SNAKE name for logs and error codes, e.g. 'LBA_OUT_OF_RANGE';
 * codes we do not know (vendor ones included) read like 'SCT1_SC0x42'.
 */
export function statusName(sct: number, sc: number): string {
  return STATUS_NAMES.get(sct)?.get(sc) ?? `SCT${sct}_SC${hex2(sc)}`;
}

export interface StatusFieldDecoded {
  phase: number;
  sc: number;
  sct: number;
  crd: number;
  more: boolean;
  dnr: boolean;
}

export interface StatusFieldInput {
  phase?: number;
  sc?: number;
  sct?: number;
  crd?: number;
  more?: Flag;
  dnr?: Flag;
}

export function decodeStatusField(status16: number): StatusFieldDecoded {
  return {
    phase: getBits(status16, STATUS_PHASE_SHIFT, STATUS_PHASE_MASK),
    sc: getBits(status16, STATUS_SC_SHIFT, STATUS_SC_MASK),
    sct: getBits(status16, STATUS_SCT_SHIFT, STATUS_SCT_MASK),
    crd: getBits(status16, STATUS_CRD_SHIFT, STATUS_CRD_MASK),
    more: getBits(status16, STATUS_MORE_SHIFT, STATUS_MORE_MASK) === 1,
    dnr: getBits(status16, STATUS_DNR_SHIFT, STATUS_DNR_MASK) === 1,
  };
}

export function encodeStatusField(f: StatusFieldInput): number {
  return (
    putBits(f.phase ?? 0, STATUS_PHASE_SHIFT, STATUS_PHASE_MASK) |
    putBits(f.sc ?? 0, STATUS_SC_SHIFT, STATUS_SC_MASK) |
    putBits(f.sct ?? 0, STATUS_SCT_SHIFT, STATUS_SCT_MASK) |
    putBits(f.crd ?? 0, STATUS_CRD_SHIFT, STATUS_CRD_MASK) |
    putBits(flagBit(f.more), STATUS_MORE_SHIFT, STATUS_MORE_MASK) |
    putBits(flagBit(f.dnr), STATUS_DNR_SHIFT, STATUS_DNR_MASK)
  );
}

/** True when SCT and SC are both zero, whatever the phase tag and the other bits. */
export function statusIsSuccess(status16: number): boolean {
  return (
    getBits(status16, STATUS_SC_SHIFT, STATUS_SC_MASK) === GenericStatus.SUCCESS &&
    getBits(status16, STATUS_SCT_SHIFT, STATUS_SCT_MASK) === StatusCodeType.GENERIC
  );
}

/** Name of the status held in a raw 16-bit STATUS field. */
export function statusFieldName(status16: number): string {
  return statusName(
    getBits(status16, STATUS_SCT_SHIFT, STATUS_SCT_MASK),
    getBits(status16, STATUS_SC_SHIFT, STATUS_SC_MASK),
  );
}
