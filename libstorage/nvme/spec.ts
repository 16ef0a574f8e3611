// NVMe layouts for the TypeScript side: controller registers, queue entries,
// opcodes, PRP/SGL rules and the I/O and queue-management command fields.
// status.ts and identify.ts hold the rest and are re-exported from here.
//
// Every number exported by these modules (plain constants and the members of
// the enum-like objects) is declared again in addon/include/offpath/nvme_spec.h
// and compared at test time (test/10.nvme.spec.test.ts), so a change on one
// side without the other fails the build's tests rather than corrupting a queue.
//
// Naming: *_OFFSET is a byte offset inside the structure named by the prefix,
// *_SIZE_BYTES a size, *_SHIFT / *_MASK a bit field (mask is right-aligned:
// apply it after shifting). Zero-based wire fields (queue sizes, NLB, NUMD...)
// keep their wire value in encoders; the caller subtracts one.
// Everything on the wire is little-endian.

import {
  type Flag,
  type U64,
  flagBit,
  getBits,
  getBits64,
  hex2,
  invertEnum,
  putBits,
  putBits64,
  readU64,
  viewOf,
  writeU64,
} from './bits.js';
import { type StatusFieldDecoded, decodeStatusField } from './status.js';

export * from './bits.js';
export * from './status.js';
export * from './identify.js';

// ---------------------------------------------------------------------------
// Controller registers (BAR0)

export const REG_CAP_OFFSET = 0x00;
export const REG_VS_OFFSET = 0x08;
export const REG_INTMS_OFFSET = 0x0c;
export const REG_INTMC_OFFSET = 0x10;
export const REG_CC_OFFSET = 0x14;
export const REG_CSTS_OFFSET = 0x1c;
export const REG_NSSR_OFFSET = 0x20;
export const REG_AQA_OFFSET = 0x24;
export const REG_ASQ_OFFSET = 0x28;
export const REG_ACQ_OFFSET = 0x30;
export const REG_CMBLOC_OFFSET = 0x38;
export const REG_CMBSZ_OFFSET = 0x3c;

/** Doorbells start right after the 4 KiB register block. */
export const DOORBELL_BASE_OFFSET = 0x1000;
/** Doorbell stride is this many bytes shifted left by CAP.DSTRD. */
export const DOORBELL_STRIDE_BASE_BYTES = 4;
/** Writing "NVMe" in ASCII to NSSR starts an NVM subsystem reset. */
export const NSSR_RESET_VALUE = 0x4e564d65;

export function doorbellStrideBytes(dstrd: number): number {
  return DOORBELL_STRIDE_BASE_BYTES << dstrd;
}

export function sqTailDoorbellOffset(qid: number, dstrd: number): number {
  return DOORBELL_BASE_OFFSET + 2 * qid * doorbellStrideBytes(dstrd);
}

export function cqHeadDoorbellOffset(qid: number, dstrd: number): number {
  return DOORBELL_BASE_OFFSET + (2 * qid + 1) * doorbellStrideBytes(dstrd);
}

// CAP is 64 bits wide; its decoders take a bigint.
export const CAP_MQES_SHIFT = 0;
export const CAP_MQES_MASK = 0xffff;
export const CAP_CQR_SHIFT = 16;
export const CAP_CQR_MASK = 0x1;
export const CAP_AMS_SHIFT = 17;
export const CAP_AMS_MASK = 0x3;
export const CAP_TO_SHIFT = 24;
export const CAP_TO_MASK = 0xff;
export const CAP_DSTRD_SHIFT = 32;
export const CAP_DSTRD_MASK = 0xf;
export const CAP_NSSRS_SHIFT = 36;
export const CAP_NSSRS_MASK = 0x1;
export const CAP_CSS_SHIFT = 37;
export const CAP_CSS_MASK = 0xff;
export const CAP_BPS_SHIFT = 45;
export const CAP_BPS_MASK = 0x1;
export const CAP_MPSMIN_SHIFT = 48;
export const CAP_MPSMIN_MASK = 0xf;
export const CAP_MPSMAX_SHIFT = 52;
export const CAP_MPSMAX_MASK = 0xf;
export const CAP_PMRS_SHIFT = 56;
export const CAP_PMRS_MASK = 0x1;
export const CAP_CMBS_SHIFT = 57;
export const CAP_CMBS_MASK = 0x1;
/** CAP.TO counts in these units: the worst-case wait for CSTS.RDY to follow CC.EN. */
export const CAP_TO_UNIT_MS = 500;

/** Bits of CAP.CSS (command sets the controller implements). */
export const CapCss = {
  NVM: 0x01,
  IO_COMMAND_SETS: 0x40,
  ADMIN_ONLY: 0x80,
} as const;

/** Bits of CAP.AMS (optional arbitration mechanisms; round robin is always there). */
export const CapAms = {
  WEIGHTED_ROUND_ROBIN_URGENT: 0x1,
  VENDOR_SPECIFIC: 0x2,
} as const;

export interface CapFields {
  /** Zero-based: the largest queue has mqes + 1 entries. */
  mqes: number;
  cqr: boolean;
  ams: number;
  to: number;
  dstrd: number;
  nssrs: boolean;
  css: number;
  bps: boolean;
  mpsmin: number;
  mpsmax: number;
  pmrs: boolean;
  cmbs: boolean;
}

export function decodeCap(raw: bigint): CapFields {
  return {
    mqes: getBits64(raw, CAP_MQES_SHIFT, CAP_MQES_MASK),
    cqr: getBits64(raw, CAP_CQR_SHIFT, CAP_CQR_MASK) === 1,
    ams: getBits64(raw, CAP_AMS_SHIFT, CAP_AMS_MASK),
    to: getBits64(raw, CAP_TO_SHIFT, CAP_TO_MASK),
    dstrd: getBits64(raw, CAP_DSTRD_SHIFT, CAP_DSTRD_MASK),
    nssrs: getBits64(raw, CAP_NSSRS_SHIFT, CAP_NSSRS_MASK) === 1,
    css: getBits64(raw, CAP_CSS_SHIFT, CAP_CSS_MASK),
    bps: getBits64(raw, CAP_BPS_SHIFT, CAP_BPS_MASK) === 1,
    mpsmin: getBits64(raw, CAP_MPSMIN_SHIFT, CAP_MPSMIN_MASK),
    mpsmax: getBits64(raw, CAP_MPSMAX_SHIFT, CAP_MPSMAX_MASK),
    pmrs: getBits64(raw, CAP_PMRS_SHIFT, CAP_PMRS_MASK) === 1,
    cmbs: getBits64(raw, CAP_CMBS_SHIFT, CAP_CMBS_MASK) === 1,
  };
}

export interface CapInput {
  mqes?: number;
  cqr?: Flag;
  ams?: number;
  to?: number;
  dstrd?: number;
  nssrs?: Flag;
  css?: number;
  bps?: Flag;
  mpsmin?: number;
  mpsmax?: number;
  pmrs?: Flag;
  cmbs?: Flag;
}

/** Builds a CAP value (an emulator presents this; a driver only reads it). */
export function encodeCap(f: CapInput): bigint {
  return (
    putBits64(f.mqes ?? 0, CAP_MQES_SHIFT, CAP_MQES_MASK) |
    putBits64(flagBit(f.cqr), CAP_CQR_SHIFT, CAP_CQR_MASK) |
    putBits64(f.ams ?? 0, CAP_AMS_SHIFT, CAP_AMS_MASK) |
    putBits64(f.to ?? 0, CAP_TO_SHIFT, CAP_TO_MASK) |
    putBits64(f.dstrd ?? 0, CAP_DSTRD_SHIFT, CAP_DSTRD_MASK) |
    putBits64(flagBit(f.nssrs), CAP_NSSRS_SHIFT, CAP_NSSRS_MASK) |
    putBits64(f.css ?? 0, CAP_CSS_SHIFT, CAP_CSS_MASK) |
    putBits64(flagBit(f.bps), CAP_BPS_SHIFT, CAP_BPS_MASK) |
    putBits64(f.mpsmin ?? 0, CAP_MPSMIN_SHIFT, CAP_MPSMIN_MASK) |
    putBits64(f.mpsmax ?? 0, CAP_MPSMAX_SHIFT, CAP_MPSMAX_MASK) |
    putBits64(flagBit(f.pmrs), CAP_PMRS_SHIFT, CAP_PMRS_MASK) |
    putBits64(flagBit(f.cmbs), CAP_CMBS_SHIFT, CAP_CMBS_MASK)
  );
}

export function capTimeoutMs(cap: Pick<CapFields, 'to'>): number {
  return cap.to * CAP_TO_UNIT_MS;
}

export const CC_EN_SHIFT = 0;
export const CC_EN_MASK = 0x1;
export const CC_CSS_SHIFT = 4;
export const CC_CSS_MASK = 0x7;
export const CC_MPS_SHIFT = 7;
export const CC_MPS_MASK = 0xf;
export const CC_AMS_SHIFT = 11;
export const CC_AMS_MASK = 0x7;
export const CC_SHN_SHIFT = 14;
export const CC_SHN_MASK = 0x3;
export const CC_IOSQES_SHIFT = 16;
export const CC_IOSQES_MASK = 0xf;
export const CC_IOCQES_SHIFT = 20;
export const CC_IOCQES_MASK = 0xf;

/** Values of CC.CSS. */
export const CcCss = {
  NVM: 0x0,
  ALL_SUPPORTED: 0x6,
  ADMIN_ONLY: 0x7,
} as const;

/** Values of CC.AMS. */
export const CcAms = {
  ROUND_ROBIN: 0x0,
  WEIGHTED_ROUND_ROBIN_URGENT: 0x1,
  VENDOR_SPECIFIC: 0x7,
} as const;

/** Values of CC.SHN. */
export const ShutdownNotification = {
  NONE: 0x0,
  NORMAL: 0x1,
  ABRUPT: 0x2,
} as const;

export interface CcFields {
  en: boolean;
  css: number;
  mps: number;
  ams: number;
  shn: number;
  iosqes: number;
  iocqes: number;
}

export interface CcInput {
  en?: Flag;
  css?: number;
  mps?: number;
  ams?: number;
  shn?: number;
  iosqes?: number;
  iocqes?: number;
}

export function decodeCc(raw: number): CcFields {
  return {
    en: getBits(raw, CC_EN_SHIFT, CC_EN_MASK) === 1,
    css: getBits(raw, CC_CSS_SHIFT, CC_CSS_MASK),
    mps: getBits(raw, CC_MPS_SHIFT, CC_MPS_MASK),
    ams: getBits(raw, CC_AMS_SHIFT, CC_AMS_MASK),
    shn: getBits(raw, CC_SHN_SHIFT, CC_SHN_MASK),
    iosqes: getBits(raw, CC_IOSQES_SHIFT, CC_IOSQES_MASK),
    iocqes: getBits(raw, CC_IOCQES_SHIFT, CC_IOCQES_MASK),
  };
}

export function encodeCc(f: CcInput): number {
  return (
    (putBits(flagBit(f.en), CC_EN_SHIFT, CC_EN_MASK) |
      putBits(f.css ?? 0, CC_CSS_SHIFT, CC_CSS_MASK) |
      putBits(f.mps ?? 0, CC_MPS_SHIFT, CC_MPS_MASK) |
      putBits(f.ams ?? 0, CC_AMS_SHIFT, CC_AMS_MASK) |
      putBits(f.shn ?? 0, CC_SHN_SHIFT, CC_SHN_MASK) |
      putBits(f.iosqes ?? 0, CC_IOSQES_SHIFT, CC_IOSQES_MASK) |
      putBits(f.iocqes ?? 0, CC_IOCQES_SHIFT, CC_IOCQES_MASK)) >>>
    0
  );
}

export const CSTS_RDY_SHIFT = 0;
export const CSTS_RDY_MASK = 0x1;
export const CSTS_CFS_SHIFT = 1;
export const CSTS_CFS_MASK = 0x1;
export const CSTS_SHST_SHIFT = 2;
export const CSTS_SHST_MASK = 0x3;
export const CSTS_NSSRO_SHIFT = 4;
export const CSTS_NSSRO_MASK = 0x1;
export const CSTS_PP_SHIFT = 5;
export const CSTS_PP_MASK = 0x1;

/** Values of CSTS.SHST. */
export const ShutdownStatus = {
  NORMAL: 0x0,
  OCCURRING: 0x1,
  COMPLETE: 0x2,
} as const;

export interface CstsFields {
  rdy: boolean;
  cfs: boolean;
  shst: number;
  nssro: boolean;
  pp: boolean;
}

export interface CstsInput {
  rdy?: Flag;
  cfs?: Flag;
  shst?: number;
  nssro?: Flag;
  pp?: Flag;
}

export function decodeCsts(raw: number): CstsFields {
  return {
    rdy: getBits(raw, CSTS_RDY_SHIFT, CSTS_RDY_MASK) === 1,
    cfs: getBits(raw, CSTS_CFS_SHIFT, CSTS_CFS_MASK) === 1,
    shst: getBits(raw, CSTS_SHST_SHIFT, CSTS_SHST_MASK),
    nssro: getBits(raw, CSTS_NSSRO_SHIFT, CSTS_NSSRO_MASK) === 1,
    pp: getBits(raw, CSTS_PP_SHIFT, CSTS_PP_MASK) === 1,
  };
}

export function encodeCsts(f: CstsInput): number {
  return (
    (putBits(flagBit(f.rdy), CSTS_RDY_SHIFT, CSTS_RDY_MASK) |
      putBits(flagBit(f.cfs), CSTS_CFS_SHIFT, CSTS_CFS_MASK) |
      putBits(f.shst ?? 0, CSTS_SHST_SHIFT, CSTS_SHST_MASK) |
      putBits(flagBit(f.nssro), CSTS_NSSRO_SHIFT, CSTS_NSSRO_MASK) |
      putBits(flagBit(f.pp), CSTS_PP_SHIFT, CSTS_PP_MASK)) >>>
    0
  );
}

// Both AQA sizes are zero-based entry counts.
export const AQA_ASQS_SHIFT = 0;
export const AQA_ASQS_MASK = 0xfff;
export const AQA_ACQS_SHIFT = 16;
export const AQA_ACQS_MASK = 0xfff;

export interface AqaFields {
  asqs: number;
  acqs: number;
}

export function decodeAqa(raw: number): AqaFields {
  return {
    asqs: getBits(raw, AQA_ASQS_SHIFT, AQA_ASQS_MASK),
    acqs: getBits(raw, AQA_ACQS_SHIFT, AQA_ACQS_MASK),
  };
}

export function encodeAqa(f: AqaFields): number {
  return (putBits(f.asqs, AQA_ASQS_SHIFT, AQA_ASQS_MASK) | putBits(f.acqs, AQA_ACQS_SHIFT, AQA_ACQS_MASK)) >>> 0;
}

export const VS_MAJOR_SHIFT = 16;
export const VS_MAJOR_MASK = 0xffff;
export const VS_MINOR_SHIFT = 8;
export const VS_MINOR_MASK = 0xff;
export const VS_TERTIARY_SHIFT = 0;
export const VS_TERTIARY_MASK = 0xff;

export interface VsFields {
  major: number;
  minor: number;
  tertiary: number;
}

export function decodeVs(raw: number): VsFields {
  return {
    major: getBits(raw, VS_MAJOR_SHIFT, VS_MAJOR_MASK),
    minor: getBits(raw, VS_MINOR_SHIFT, VS_MINOR_MASK),
    tertiary: getBits(raw, VS_TERTIARY_SHIFT, VS_TERTIARY_MASK),
  };
}

export function encodeVs(f: VsFields): number {
  return (
    (putBits(f.major, VS_MAJOR_SHIFT, VS_MAJOR_MASK) |
      putBits(f.minor, VS_MINOR_SHIFT, VS_MINOR_MASK) |
      putBits(f.tertiary, VS_TERTIARY_SHIFT, VS_TERTIARY_MASK)) >>>
    0
  );
}

export const CMBLOC_BIR_SHIFT = 0;
export const CMBLOC_BIR_MASK = 0x7;
export const CMBLOC_OFST_SHIFT = 12;
export const CMBLOC_OFST_MASK = 0xfffff;
export const CMBSZ_SQS_SHIFT = 0;
export const CMBSZ_SQS_MASK = 0x1;
export const CMBSZ_CQS_SHIFT = 1;
export const CMBSZ_CQS_MASK = 0x1;
export const CMBSZ_LISTS_SHIFT = 2;
export const CMBSZ_LISTS_MASK = 0x1;
export const CMBSZ_RDS_SHIFT = 3;
export const CMBSZ_RDS_MASK = 0x1;
export const CMBSZ_WDS_SHIFT = 4;
export const CMBSZ_WDS_MASK = 0x1;
export const CMBSZ_SZU_SHIFT = 8;
export const CMBSZ_SZU_MASK = 0xf;
export const CMBSZ_SZ_SHIFT = 12;
export const CMBSZ_SZ_MASK = 0xfffff;

// ---------------------------------------------------------------------------
// Queues

export const ADMIN_QUEUE_MAX_ENTRIES = 4096;
export const IO_QUEUE_MAX_ENTRIES = 65536;
/** A queue is full when tail + 1 == head, so one slot is always unused. */
export const QUEUE_MIN_ENTRIES = 2;

// Submission Queue Entry (64 bytes).
export const SQE_SIZE_BYTES = 64;
/** The value CC.IOSQES takes for 64-byte entries. */
export const SQE_SIZE_LOG2 = 6;
export const SQE_OPC_OFFSET = 0;
/** FUSE in bits 1:0 and PSDT in bits 7:6. */
export const SQE_FLAGS_OFFSET = 1;
export const SQE_CID_OFFSET = 2;
export const SQE_NSID_OFFSET = 4;
export const SQE_CDW2_OFFSET = 8;
export const SQE_CDW3_OFFSET = 12;
export const SQE_MPTR_OFFSET = 16;
export const SQE_PRP1_OFFSET = 24;
export const SQE_PRP2_OFFSET = 32;
/** SGL1 overlays PRP1 and PRP2 when PSDT selects SGLs. */
export const SQE_SGL1_OFFSET = 24;
export const SQE_CDW10_OFFSET = 40;
export const SQE_CDW11_OFFSET = 44;
export const SQE_CDW12_OFFSET = 48;
export const SQE_CDW13_OFFSET = 52;
export const SQE_CDW14_OFFSET = 56;
export const SQE_CDW15_OFFSET = 60;

export const SQE_FUSE_SHIFT = 0;
export const SQE_FUSE_MASK = 0x3;
export const SQE_PSDT_SHIFT = 6;
export const SQE_PSDT_MASK = 0x3;

export const Fuse = {
  NORMAL: 0x0,
  FIRST: 0x1,
  SECOND: 0x2,
} as const;

/** PRP or SGL for Data Transfer: how DPTR (and MPTR) are interpreted. */
export const Psdt = {
  PRP: 0x0,
  SGL_MPTR_CONTIGUOUS: 0x1,
  SGL_MPTR_SGL: 0x2,
} as const;

// Completion Queue Entry (16 bytes). The STATUS bit layout is in status.ts.
export const CQE_SIZE_BYTES = 16;
/** The value CC.IOCQES takes for 16-byte entries. */
export const CQE_SIZE_LOG2 = 4;
export const CQE_DW0_OFFSET = 0;
export const CQE_DW1_OFFSET = 4;
export const CQE_SQHD_OFFSET = 8;
export const CQE_SQID_OFFSET = 10;
export const CQE_CID_OFFSET = 12;
export const CQE_STATUS_OFFSET = 14;

// ---------------------------------------------------------------------------
// Opcodes

export const AdminOpcode = {
  DELETE_IO_SQ: 0x00,
  CREATE_IO_SQ: 0x01,
  GET_LOG_PAGE: 0x02,
  DELETE_IO_CQ: 0x04,
  CREATE_IO_CQ: 0x05,
  IDENTIFY: 0x06,
  ABORT: 0x08,
  SET_FEATURES: 0x09,
  GET_FEATURES: 0x0a,
  ASYNC_EVENT_REQUEST: 0x0c,
  NAMESPACE_MANAGEMENT: 0x0d,
  FIRMWARE_COMMIT: 0x10,
  FIRMWARE_IMAGE_DOWNLOAD: 0x11,
  DEVICE_SELF_TEST: 0x14,
  NAMESPACE_ATTACHMENT: 0x15,
  KEEP_ALIVE: 0x18,
  DIRECTIVE_SEND: 0x19,
  DIRECTIVE_RECEIVE: 0x1a,
  VIRTUALIZATION_MANAGEMENT: 0x1c,
  DOORBELL_BUFFER_CONFIG: 0x7c,
  FORMAT_NVM: 0x80,
  SECURITY_SEND: 0x81,
  SECURITY_RECEIVE: 0x82,
  SANITIZE: 0x84,
} as const;
export type AdminOpcode = (typeof AdminOpcode)[keyof typeof AdminOpcode];
/** Admin opcodes from here up are vendor specific. */
export const ADMIN_VENDOR_OPCODE_MIN = 0xc0;

export const NvmOpcode = {
  FLUSH: 0x00,
  WRITE: 0x01,
  READ: 0x02,
  WRITE_UNCORRECTABLE: 0x04,
  COMPARE: 0x05,
  WRITE_ZEROES: 0x08,
  DATASET_MANAGEMENT: 0x09,
  VERIFY: 0x0c,
  RESERVATION_REGISTER: 0x0d,
  RESERVATION_REPORT: 0x0e,
  RESERVATION_ACQUIRE: 0x11,
  RESERVATION_RELEASE: 0x15,
} as const;
export type NvmOpcode = (typeof NvmOpcode)[keyof typeof NvmOpcode];
/** NVM command set opcodes from here up are vendor specific. */
export const NVM_VENDOR_OPCODE_MIN = 0x80;

/** Opcode bits 1:0 tell the data direction, which lets generic code skip DPTR setup. */
export const OPC_DATA_TRANSFER_SHIFT = 0;
export const OPC_DATA_TRANSFER_MASK = 0x3;
export const DataTransfer = {
  NONE: 0x0,
  HOST_TO_CONTROLLER: 0x1,
  CONTROLLER_TO_HOST: 0x2,
  BIDIRECTIONAL: 0x3,
} as const;

export const ADMIN_OPCODE_NAMES: ReadonlyMap<number, string> = invertEnum(AdminOpcode);
export const NVM_OPCODE_NAMES: ReadonlyMap<number, string> = invertEnum(NvmOpcode);

export function adminOpcodeName(opc: number): string {
  const name = ADMIN_OPCODE_NAMES.get(opc);
  if (name !== undefined) return name;
  return opc >= ADMIN_VENDOR_OPCODE_MIN ? `ADMIN_VENDOR_${hex2(opc)}` : `ADMIN_OPC_${hex2(opc)}`;
}

export function nvmOpcodeName(opc: number): string {
  const name = NVM_OPCODE_NAMES.get(opc);
  if (name !== undefined) return name;
  return opc >= NVM_VENDOR_OPCODE_MIN ? `NVM_VENDOR_${hex2(opc)}` : `NVM_OPC_${hex2(opc)}`;
}

// ---------------------------------------------------------------------------
// PRP lists

export const PRP_ENTRY_SIZE_BYTES = 8;
/** PRP1 may start anywhere inside a page as long as bits 1:0 are clear. */
export const PRP1_ALIGNMENT_BYTES = 4;
/** CC.MPS = 0 means this page size; each step doubles it. */
export const MEMORY_PAGE_SIZE_MIN_BYTES = 4096;

export function memoryPageSizeBytes(mps: number): number {
  return MEMORY_PAGE_SIZE_MIN_BYTES * 2 ** mps;
}

export function prpEntriesPerPage(pageSizeBytes: number): number {
  return pageSizeBytes / PRP_ENTRY_SIZE_BYTES;
}

export function isPrp1Aligned(address: number): boolean {
  return address % PRP1_ALIGNMENT_BYTES === 0;
}

/** Every PRP after the first (PRP2 as a data pointer, and list entries) must start a page. */
export function isPrpPageAligned(address: number, pageSizeBytes: number): boolean {
  return address % pageSizeBytes === 0;
}

function checkPrpArgs(offsetInPage: number, lengthBytes: number, pageSizeBytes: number): void {
  if (!Number.isInteger(pageSizeBytes) || pageSizeBytes < MEMORY_PAGE_SIZE_MIN_BYTES) {
    throw new RangeError(`page size ${pageSizeBytes} is below ${MEMORY_PAGE_SIZE_MIN_BYTES}`);
  }
  if (!Number.isInteger(offsetInPage) || offsetInPage < 0 || offsetInPage >= pageSizeBytes) {
    throw new RangeError(`offset ${offsetInPage} is outside a ${pageSizeBytes}-byte page`);
  }
  if (offsetInPage % PRP1_ALIGNMENT_BYTES !== 0) {
    throw new RangeError(`PRP1 offset ${offsetInPage} is not dword aligned`);
  }
  if (!Number.isInteger(lengthBytes) || lengthBytes < 0) {
    throw new RangeError(`length ${lengthBytes} is not a non-negative integer`);
  }
}

/** How many PRP entries (one per memory page touched) a transfer needs. */
export function prpEntriesNeeded(offsetInPage: number, lengthBytes: number, pageSizeBytes: number): number {
  checkPrpArgs(offsetInPage, lengthBytes, pageSizeBytes);
  if (lengthBytes === 0) return 0;
  return Math.ceil((offsetInPage + lengthBytes) / pageSizeBytes);
}

/**
 * How many PRP list pages a transfer needs. One or two entries fit in PRP1 and
 * PRP2; beyond that PRP2 points at a list. When a list page cannot hold all the
 * remaining entries, its last slot points at the next list page instead of data.
 * Assumes lists start at offset 0 of their page, which is how we allocate them.
 */
export function prpListPagesNeeded(offsetInPage: number, lengthBytes: number, pageSizeBytes: number): number {
  const entries = prpEntriesNeeded(offsetInPage, lengthBytes, pageSizeBytes);
  if (entries <= 2) return 0;
  const listEntries = entries - 1;
  const perPage = prpEntriesPerPage(pageSizeBytes);
  if (listEntries <= perPage) return 1;
  // Every page but the last gives up one slot to the chain pointer.
  return Math.ceil((listEntries - 1) / (perPage - 1));
}

// ---------------------------------------------------------------------------
// SGL descriptors (16 bytes)

export const SGL_DESCRIPTOR_SIZE_BYTES = 16;
export const SGL_ADDRESS_OFFSET = 0;
export const SGL_LENGTH_OFFSET = 8;
/** The SGL identifier byte: descriptor type in bits 7:4, subtype in bits 3:0. */
export const SGL_IDENTIFIER_OFFSET = 15;
export const SGL_TYPE_SHIFT = 4;
export const SGL_TYPE_MASK = 0xf;
export const SGL_SUBTYPE_SHIFT = 0;
export const SGL_SUBTYPE_MASK = 0xf;

export const SglType = {
  DATA_BLOCK: 0x0,
  BIT_BUCKET: 0x1,
  SEGMENT: 0x2,
  LAST_SEGMENT: 0x3,
  KEYED_DATA_BLOCK: 0x4,
  TRANSPORT_DATA_BLOCK: 0x5,
} as const;

export const SglSubtype = {
  ADDRESS: 0x0,
  OFFSET: 0x1,
} as const;

export interface SglFields {
  address: U64;
  length: number;
  type: number;
  subtype?: number;
}

export interface SglDecoded {
  address: bigint;
  length: number;
  type: number;
  subtype: number;
}

export function sglIdentifier(type: number, subtype = 0): number {
  return (putBits(type, SGL_TYPE_SHIFT, SGL_TYPE_MASK) | putBits(subtype, SGL_SUBTYPE_SHIFT, SGL_SUBTYPE_MASK)) >>> 0;
}

export function writeSglDescriptor(view: DataView, offset: number, f: SglFields): void {
  writeU64(view, offset + SGL_ADDRESS_OFFSET, f.address);
  view.setUint32(offset + SGL_LENGTH_OFFSET, f.length >>> 0, true);
  // Bytes 12..14 are reserved for non-keyed descriptors.
  view.setUint8(offset + 12, 0);
  view.setUint16(offset + 13, 0, true);
  view.setUint8(offset + SGL_IDENTIFIER_OFFSET, sglIdentifier(f.type, f.subtype ?? 0));
}

export function readSglDescriptor(view: DataView, offset: number): SglDecoded {
  const id = view.getUint8(offset + SGL_IDENTIFIER_OFFSET);
  return {
    address: readU64(view, offset + SGL_ADDRESS_OFFSET),
    length: view.getUint32(offset + SGL_LENGTH_OFFSET, true),
    type: getBits(id, SGL_TYPE_SHIFT, SGL_TYPE_MASK),
    subtype: getBits(id, SGL_SUBTYPE_SHIFT, SGL_SUBTYPE_MASK),
  };
}

export function encodeSglDescriptor(f: SglFields): Uint8Array {
  const bytes = new Uint8Array(SGL_DESCRIPTOR_SIZE_BYTES);
  writeSglDescriptor(viewOf(bytes), 0, f);
  return bytes;
}

// ---------------------------------------------------------------------------
// Whole entries

export interface SqeFields {
  opc: number;
  fuse?: number;
  psdt?: number;
  cid: number;
  nsid?: number;
  cdw2?: number;
  cdw3?: number;
  mptr?: U64;
  prp1?: U64;
  prp2?: U64;
  /** Written over PRP1/PRP2 when present. */
  sgl1?: SglFields;
  cdw10?: number;
  cdw11?: number;
  cdw12?: number;
  cdw13?: number;
  cdw14?: number;
  cdw15?: number;
}

export interface SqeDecoded {
  opc: number;
  fuse: number;
  psdt: number;
  cid: number;
  nsid: number;
  cdw2: number;
  cdw3: number;
  mptr: bigint;
  prp1: bigint;
  prp2: bigint;
  cdw10: number;
  cdw11: number;
  cdw12: number;
  cdw13: number;
  cdw14: number;
  cdw15: number;
}

/**
 * Writes a whole 64-byte entry, zeroing what `f` leaves out so a reused slot
 * never carries fields of the command it held before.
 */
export function writeSqe(view: DataView, offset: number, f: SqeFields): void {
  view.setUint8(offset + SQE_OPC_OFFSET, f.opc);
  view.setUint8(
    offset + SQE_FLAGS_OFFSET,
    putBits(f.fuse ?? 0, SQE_FUSE_SHIFT, SQE_FUSE_MASK) | putBits(f.psdt ?? 0, SQE_PSDT_SHIFT, SQE_PSDT_MASK),
  );
  view.setUint16(offset + SQE_CID_OFFSET, f.cid, true);
  view.setUint32(offset + SQE_NSID_OFFSET, (f.nsid ?? 0) >>> 0, true);
  view.setUint32(offset + SQE_CDW2_OFFSET, (f.cdw2 ?? 0) >>> 0, true);
  view.setUint32(offset + SQE_CDW3_OFFSET, (f.cdw3 ?? 0) >>> 0, true);
  writeU64(view, offset + SQE_MPTR_OFFSET, f.mptr ?? 0);
  if (f.sgl1 !== undefined) {
    writeSglDescriptor(view, offset + SQE_SGL1_OFFSET, f.sgl1);
  } else {
    writeU64(view, offset + SQE_PRP1_OFFSET, f.prp1 ?? 0);
    writeU64(view, offset + SQE_PRP2_OFFSET, f.prp2 ?? 0);
  }
  view.setUint32(offset + SQE_CDW10_OFFSET, (f.cdw10 ?? 0) >>> 0, true);
  view.setUint32(offset + SQE_CDW11_OFFSET, (f.cdw11 ?? 0) >>> 0, true);
  view.setUint32(offset + SQE_CDW12_OFFSET, (f.cdw12 ?? 0) >>> 0, true);
  view.setUint32(offset + SQE_CDW13_OFFSET, (f.cdw13 ?? 0) >>> 0, true);
  view.setUint32(offset + SQE_CDW14_OFFSET, (f.cdw14 ?? 0) >>> 0, true);
  view.setUint32(offset + SQE_CDW15_OFFSET, (f.cdw15 ?? 0) >>> 0, true);
}

export function encodeSqe(f: SqeFields): Uint8Array {
  const bytes = new Uint8Array(SQE_SIZE_BYTES);
  writeSqe(viewOf(bytes), 0, f);
  return bytes;
}

export function readSqe(view: DataView, offset: number): SqeDecoded {
  const flags = view.getUint8(offset + SQE_FLAGS_OFFSET);
  return {
    opc: view.getUint8(offset + SQE_OPC_OFFSET),
    fuse: getBits(flags, SQE_FUSE_SHIFT, SQE_FUSE_MASK),
    psdt: getBits(flags, SQE_PSDT_SHIFT, SQE_PSDT_MASK),
    cid: view.getUint16(offset + SQE_CID_OFFSET, true),
    nsid: view.getUint32(offset + SQE_NSID_OFFSET, true),
    cdw2: view.getUint32(offset + SQE_CDW2_OFFSET, true),
    cdw3: view.getUint32(offset + SQE_CDW3_OFFSET, true),
    mptr: readU64(view, offset + SQE_MPTR_OFFSET),
    prp1: readU64(view, offset + SQE_PRP1_OFFSET),
    prp2: readU64(view, offset + SQE_PRP2_OFFSET),
    cdw10: view.getUint32(offset + SQE_CDW10_OFFSET, true),
    cdw11: view.getUint32(offset + SQE_CDW11_OFFSET, true),
    cdw12: view.getUint32(offset + SQE_CDW12_OFFSET, true),
    cdw13: view.getUint32(offset + SQE_CDW13_OFFSET, true),
    cdw14: view.getUint32(offset + SQE_CDW14_OFFSET, true),
    cdw15: view.getUint32(offset + SQE_CDW15_OFFSET, true),
  };
}

export function decodeSqe(bytes: Uint8Array, offset = 0): SqeDecoded {
  return readSqe(viewOf(bytes), offset);
}

export interface CqeFields {
  dw0?: number;
  dw1?: number;
  sqhd: number;
  sqid: number;
  cid: number;
  /** The raw 16-bit status field, phase tag included (see encodeStatusField). */
  status: number;
}

export interface CqeDecoded extends StatusFieldDecoded {
  dw0: number;
  dw1: number;
  sqhd: number;
  sqid: number;
  cid: number;
  status: number;
}

export function writeCqe(view: DataView, offset: number, f: CqeFields): void {
  view.setUint32(offset + CQE_DW0_OFFSET, (f.dw0 ?? 0) >>> 0, true);
  view.setUint32(offset + CQE_DW1_OFFSET, (f.dw1 ?? 0) >>> 0, true);
  view.setUint16(offset + CQE_SQHD_OFFSET, f.sqhd, true);
  view.setUint16(offset + CQE_SQID_OFFSET, f.sqid, true);
  view.setUint16(offset + CQE_CID_OFFSET, f.cid, true);
  // Status last: it holds the phase tag, the bit a host polls on.
  view.setUint16(offset + CQE_STATUS_OFFSET, f.status, true);
}

export function encodeCqe(f: CqeFields): Uint8Array {
  const bytes = new Uint8Array(CQE_SIZE_BYTES);
  writeCqe(viewOf(bytes), 0, f);
  return bytes;
}

export function readCqe(view: DataView, offset: number): CqeDecoded {
  const status = view.getUint16(offset + CQE_STATUS_OFFSET, true);
  return {
    dw0: view.getUint32(offset + CQE_DW0_OFFSET, true),
    dw1: view.getUint32(offset + CQE_DW1_OFFSET, true),
    sqhd: view.getUint16(offset + CQE_SQHD_OFFSET, true),
    sqid: view.getUint16(offset + CQE_SQID_OFFSET, true),
    cid: view.getUint16(offset + CQE_CID_OFFSET, true),
    ...decodeStatusField(status),
    status,
  };
}

export function decodeCqe(bytes: Uint8Array, offset = 0): CqeDecoded {
  return readCqe(viewOf(bytes), offset);
}

// ---------------------------------------------------------------------------
// I/O commands

// Read, Write, Compare, Verify and Write Zeroes share this layout: SLBA in
// CDW10 (low) and CDW11 (high), the rest in CDW12.
export const RW_CDW12_NLB_SHIFT = 0;
export const RW_CDW12_NLB_MASK = 0xffff;
/** Write Zeroes only: the controller may deallocate instead of writing. */
export const RW_CDW12_DEAC_SHIFT = 25;
export const RW_CDW12_DEAC_MASK = 0x1;
export const RW_CDW12_PRINFO_SHIFT = 26;
export const RW_CDW12_PRINFO_MASK = 0xf;
export const RW_CDW12_FUA_SHIFT = 30;
export const RW_CDW12_FUA_MASK = 0x1;
export const RW_CDW12_LR_SHIFT = 31;
export const RW_CDW12_LR_MASK = 0x1;

export interface RwFields {
  opc: number;
  cid: number;
  nsid: number;
  prp1?: U64;
  prp2?: U64;
  mptr?: U64;
  psdt?: number;
  sgl1?: SglFields;
  slba: U64;
  /** Zero-based block count, as on the wire. */
  nlb: number;
  fua?: Flag;
  lr?: Flag;
  deac?: Flag;
  prinfo?: number;
}

export function rwCdw12(f: Pick<RwFields, 'nlb' | 'fua' | 'lr' | 'deac' | 'prinfo'>): number {
  return (
    (putBits(f.nlb, RW_CDW12_NLB_SHIFT, RW_CDW12_NLB_MASK) |
      putBits(flagBit(f.deac), RW_CDW12_DEAC_SHIFT, RW_CDW12_DEAC_MASK) |
      putBits(f.prinfo ?? 0, RW_CDW12_PRINFO_SHIFT, RW_CDW12_PRINFO_MASK) |
      putBits(flagBit(f.fua), RW_CDW12_FUA_SHIFT, RW_CDW12_FUA_MASK) |
      putBits(flagBit(f.lr), RW_CDW12_LR_SHIFT, RW_CDW12_LR_MASK)) >>>
    0
  );
}

function splitU64(value: U64): [number, number] {
  const big = BigInt.asUintN(64, BigInt(value));
  return [Number(big & 0xffff_ffffn), Number(big >> 32n)];
}

export function rwSqe(f: RwFields): SqeFields {
  const [slbaLo, slbaHi] = splitU64(f.slba);
  const sqe: SqeFields = {
    opc: f.opc,
    cid: f.cid,
    nsid: f.nsid,
    cdw10: slbaLo,
    cdw11: slbaHi,
    cdw12: rwCdw12(f),
  };
  if (f.psdt !== undefined) sqe.psdt = f.psdt;
  if (f.mptr !== undefined) sqe.mptr = f.mptr;
  if (f.sgl1 !== undefined) sqe.sgl1 = f.sgl1;
  if (f.prp1 !== undefined) sqe.prp1 = f.prp1;
  if (f.prp2 !== undefined) sqe.prp2 = f.prp2;
  return sqe;
}

// Dataset Management.
/** Zero-based number of ranges. */
export const DSM_CDW10_NR_SHIFT = 0;
export const DSM_CDW10_NR_MASK = 0xff;
export const DSM_CDW11_IDR_SHIFT = 0;
export const DSM_CDW11_IDR_MASK = 0x1;
export const DSM_CDW11_IDW_SHIFT = 1;
export const DSM_CDW11_IDW_MASK = 0x1;
export const DSM_CDW11_AD_SHIFT = 2;
export const DSM_CDW11_AD_MASK = 0x1;
export const DSM_MAX_RANGES = 256;
export const DSM_RANGE_SIZE_BYTES = 16;
export const DSM_RANGE_ATTRIBUTES_OFFSET = 0;
export const DSM_RANGE_NLB_OFFSET = 4;
export const DSM_RANGE_SLBA_OFFSET = 8;

export interface DsmFields {
  cid: number;
  nsid: number;
  prp1?: U64;
  prp2?: U64;
  /** Zero-based number of ranges in the data buffer. */
  nr: number;
  idr?: Flag;
  idw?: Flag;
  ad?: Flag;
}

export function dsmSqe(f: DsmFields): SqeFields {
  return {
    opc: NvmOpcode.DATASET_MANAGEMENT,
    cid: f.cid,
    nsid: f.nsid,
    prp1: f.prp1 ?? 0,
    prp2: f.prp2 ?? 0,
    cdw10: putBits(f.nr, DSM_CDW10_NR_SHIFT, DSM_CDW10_NR_MASK),
    cdw11:
      (putBits(flagBit(f.idr), DSM_CDW11_IDR_SHIFT, DSM_CDW11_IDR_MASK) |
        putBits(flagBit(f.idw), DSM_CDW11_IDW_SHIFT, DSM_CDW11_IDW_MASK) |
        putBits(flagBit(f.ad), DSM_CDW11_AD_SHIFT, DSM_CDW11_AD_MASK)) >>>
      0,
  };
}

export interface DsmRange {
  attributes?: number;
  /** Length in logical blocks; unlike most counts this one is not zero-based. */
  nlb: number;
  slba: U64;
}

export function writeDsmRange(view: DataView, offset: number, r: DsmRange): void {
  view.setUint32(offset + DSM_RANGE_ATTRIBUTES_OFFSET, (r.attributes ?? 0) >>> 0, true);
  view.setUint32(offset + DSM_RANGE_NLB_OFFSET, r.nlb >>> 0, true);
  writeU64(view, offset + DSM_RANGE_SLBA_OFFSET, r.slba);
}

export function readDsmRange(view: DataView, offset: number): { attributes: number; nlb: number; slba: bigint } {
  return {
    attributes: view.getUint32(offset + DSM_RANGE_ATTRIBUTES_OFFSET, true),
    nlb: view.getUint32(offset + DSM_RANGE_NLB_OFFSET, true),
    slba: readU64(view, offset + DSM_RANGE_SLBA_OFFSET),
  };
}

export function encodeDsmRange(r: DsmRange): Uint8Array {
  const bytes = new Uint8Array(DSM_RANGE_SIZE_BYTES);
  writeDsmRange(viewOf(bytes), 0, r);
  return bytes;
}

// ---------------------------------------------------------------------------
// Queue management (admin)

export const CREATE_IO_SQ_CDW10_QID_SHIFT = 0;
export const CREATE_IO_SQ_CDW10_QID_MASK = 0xffff;
/** Zero-based entry count. */
export const CREATE_IO_SQ_CDW10_QSIZE_SHIFT = 16;
export const CREATE_IO_SQ_CDW10_QSIZE_MASK = 0xffff;
export const CREATE_IO_SQ_CDW11_PC_SHIFT = 0;
export const CREATE_IO_SQ_CDW11_PC_MASK = 0x1;
export const CREATE_IO_SQ_CDW11_QPRIO_SHIFT = 1;
export const CREATE_IO_SQ_CDW11_QPRIO_MASK = 0x3;
export const CREATE_IO_SQ_CDW11_CQID_SHIFT = 16;
export const CREATE_IO_SQ_CDW11_CQID_MASK = 0xffff;

/** Create I/O SQ QPRIO values; they only matter under weighted round robin. */
export const QueuePriority = {
  URGENT: 0x0,
  HIGH: 0x1,
  MEDIUM: 0x2,
  LOW: 0x3,
} as const;

export const CREATE_IO_CQ_CDW10_QID_SHIFT = 0;
export const CREATE_IO_CQ_CDW10_QID_MASK = 0xffff;
/** Zero-based entry count. */
export const CREATE_IO_CQ_CDW10_QSIZE_SHIFT = 16;
export const CREATE_IO_CQ_CDW10_QSIZE_MASK = 0xffff;
export const CREATE_IO_CQ_CDW11_PC_SHIFT = 0;
export const CREATE_IO_CQ_CDW11_PC_MASK = 0x1;
export const CREATE_IO_CQ_CDW11_IEN_SHIFT = 1;
export const CREATE_IO_CQ_CDW11_IEN_MASK = 0x1;
export const CREATE_IO_CQ_CDW11_IV_SHIFT = 16;
export const CREATE_IO_CQ_CDW11_IV_MASK = 0xffff;

/** Delete I/O SQ and Delete I/O CQ. */
export const DELETE_IO_QUEUE_CDW10_QID_SHIFT = 0;
export const DELETE_IO_QUEUE_CDW10_QID_MASK = 0xffff;

export const ABORT_CDW10_SQID_SHIFT = 0;
export const ABORT_CDW10_SQID_MASK = 0xffff;
export const ABORT_CDW10_CID_SHIFT = 16;
export const ABORT_CDW10_CID_MASK = 0xffff;

export interface CreateIoSqFields {
  cid: number;
  /** Queue memory; must be physically contiguous when pc is set. */
  prp1: U64;
  qid: number;
  /** Zero-based entry count. */
  qsize: number;
  pc?: Flag;
  qprio?: number;
  cqid: number;
}

export function createIoSqSqe(f: CreateIoSqFields): SqeFields {
  return {
    opc: AdminOpcode.CREATE_IO_SQ,
    cid: f.cid,
    prp1: f.prp1,
    cdw10:
      (putBits(f.qid, CREATE_IO_SQ_CDW10_QID_SHIFT, CREATE_IO_SQ_CDW10_QID_MASK) |
        putBits(f.qsize, CREATE_IO_SQ_CDW10_QSIZE_SHIFT, CREATE_IO_SQ_CDW10_QSIZE_MASK)) >>>
      0,
    cdw11:
      (putBits(flagBit(f.pc), CREATE_IO_SQ_CDW11_PC_SHIFT, CREATE_IO_SQ_CDW11_PC_MASK) |
        putBits(f.qprio ?? 0, CREATE_IO_SQ_CDW11_QPRIO_SHIFT, CREATE_IO_SQ_CDW11_QPRIO_MASK) |
        putBits(f.cqid, CREATE_IO_SQ_CDW11_CQID_SHIFT, CREATE_IO_SQ_CDW11_CQID_MASK)) >>>
      0,
  };
}

export interface CreateIoCqFields {
  cid: number;
  prp1: U64;
  qid: number;
  /** Zero-based entry count. */
  qsize: number;
  pc?: Flag;
  ien?: Flag;
  iv?: number;
}

export function createIoCqSqe(f: CreateIoCqFields): SqeFields {
  return {
    opc: AdminOpcode.CREATE_IO_CQ,
    cid: f.cid,
    prp1: f.prp1,
    cdw10:
      (putBits(f.qid, CREATE_IO_CQ_CDW10_QID_SHIFT, CREATE_IO_CQ_CDW10_QID_MASK) |
        putBits(f.qsize, CREATE_IO_CQ_CDW10_QSIZE_SHIFT, CREATE_IO_CQ_CDW10_QSIZE_MASK)) >>>
      0,
    cdw11:
      (putBits(flagBit(f.pc), CREATE_IO_CQ_CDW11_PC_SHIFT, CREATE_IO_CQ_CDW11_PC_MASK) |
        putBits(flagBit(f.ien), CREATE_IO_CQ_CDW11_IEN_SHIFT, CREATE_IO_CQ_CDW11_IEN_MASK) |
        putBits(f.iv ?? 0, CREATE_IO_CQ_CDW11_IV_SHIFT, CREATE_IO_CQ_CDW11_IV_MASK)) >>>
      0,
  };
}

/** opc is AdminOpcode.DELETE_IO_SQ or AdminOpcode.DELETE_IO_CQ. */
export function deleteIoQueueSqe(f: { opc: number; cid: number; qid: number }): SqeFields {
  return {
    opc: f.opc,
    cid: f.cid,
    cdw10: putBits(f.qid, DELETE_IO_QUEUE_CDW10_QID_SHIFT, DELETE_IO_QUEUE_CDW10_QID_MASK),
  };
}

export function abortSqe(f: { cid: number; sqid: number; abortCid: number }): SqeFields {
  return {
    opc: AdminOpcode.ABORT,
    cid: f.cid,
    cdw10:
      (putBits(f.sqid, ABORT_CDW10_SQID_SHIFT, ABORT_CDW10_SQID_MASK) |
        putBits(f.abortCid, ABORT_CDW10_CID_SHIFT, ABORT_CDW10_CID_MASK)) >>>
      0,
  };
}
