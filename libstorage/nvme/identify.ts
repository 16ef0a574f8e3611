// NVMe admin data structures and command fields: Identify, namespace and
// virtualization management, log pages, features and asynchronous events.
// Mirrored in addon/include/offpath/nvme_spec.h; see spec.ts for the contract.

import { type Flag, type U64, flagBit, getBits, putBits, readU128, readU64, viewOf, writeU64 } from './bits.js';
import type { SqeFields } from './spec.js';

// Opcodes repeated here so this module needs nothing from spec.ts at run time
// (spec.ts re-exports it); the shared test vectors pin them to AdminOpcode.
const OPC_GET_LOG_PAGE = 0x02;
const OPC_IDENTIFY = 0x06;
const OPC_SET_FEATURES = 0x09;
const OPC_GET_FEATURES = 0x0a;
const OPC_NAMESPACE_MANAGEMENT = 0x0d;
const OPC_NAMESPACE_ATTACHMENT = 0x15;
const OPC_VIRTUALIZATION_MANAGEMENT = 0x1c;
const OPC_FORMAT_NVM = 0x80;

/** NSID that addresses every namespace (or none in particular) at once. */
export const NSID_BROADCAST = 0xffffffff;

// ---------------------------------------------------------------------------
// Identify command

export const IDENTIFY_DATA_SIZE_BYTES = 4096;
export const IDENTIFY_CDW10_CNS_SHIFT = 0;
export const IDENTIFY_CDW10_CNS_MASK = 0xff;
/** Lists of controllers start at this controller identifier. */
export const IDENTIFY_CDW10_CNTID_SHIFT = 16;
export const IDENTIFY_CDW10_CNTID_MASK = 0xffff;
export const IDENTIFY_CDW11_CSI_SHIFT = 24;
export const IDENTIFY_CDW11_CSI_MASK = 0xff;

/** Controller or Namespace Structure values. */
export const Cns = {
  NS: 0x00,
  CTRL: 0x01,
  ACTIVE_NS_LIST: 0x02,
  NS_DESCRIPTOR_LIST: 0x03,
  ALLOCATED_NS_LIST: 0x10,
  ALLOCATED_NS: 0x11,
  NS_ATTACHED_CTRL_LIST: 0x12,
  CTRL_LIST: 0x13,
  PRIMARY_CTRL_CAPS: 0x14,
  SECONDARY_CTRL_LIST: 0x15,
} as const;
export type Cns = (typeof Cns)[keyof typeof Cns];

export interface IdentifyFields {
  cid: number;
  nsid?: number;
  prp1: U64;
  prp2?: U64;
  cns: number;
  cntid?: number;
  csi?: number;
}

export function identifySqe(f: IdentifyFields): SqeFields {
  return {
    opc: OPC_IDENTIFY,
    cid: f.cid,
    nsid: f.nsid ?? 0,
    prp1: f.prp1,
    prp2: f.prp2 ?? 0,
    cdw10:
      (putBits(f.cns, IDENTIFY_CDW10_CNS_SHIFT, IDENTIFY_CDW10_CNS_MASK) |
        putBits(f.cntid ?? 0, IDENTIFY_CDW10_CNTID_SHIFT, IDENTIFY_CDW10_CNTID_MASK)) >>>
      0,
    cdw11: putBits(f.csi ?? 0, IDENTIFY_CDW11_CSI_SHIFT, IDENTIFY_CDW11_CSI_MASK),
  };
}

// ---------------------------------------------------------------------------
// Identify Controller (CNS 0x01), 4096 bytes

export const IDCTRL_SIZE_BYTES = 4096;
export const IDCTRL_VID_OFFSET = 0;
export const IDCTRL_SSVID_OFFSET = 2;
export const IDCTRL_SN_OFFSET = 4;
export const IDCTRL_SN_SIZE_BYTES = 20;
export const IDCTRL_MN_OFFSET = 24;
export const IDCTRL_MN_SIZE_BYTES = 40;
export const IDCTRL_FR_OFFSET = 64;
export const IDCTRL_FR_SIZE_BYTES = 8;
export const IDCTRL_RAB_OFFSET = 72;
export const IDCTRL_IEEE_OFFSET = 73;
export const IDCTRL_IEEE_SIZE_BYTES = 3;
export const IDCTRL_CMIC_OFFSET = 76;
/** Max transfer = 2^MDTS units of CAP.MPSMIN pages; 0 means no limit. */
export const IDCTRL_MDTS_OFFSET = 77;
export const IDCTRL_CNTLID_OFFSET = 78;
export const IDCTRL_VER_OFFSET = 80;
export const IDCTRL_RTD3R_OFFSET = 84;
export const IDCTRL_RTD3E_OFFSET = 88;
export const IDCTRL_OAES_OFFSET = 92;
export const IDCTRL_CTRATT_OFFSET = 96;
export const IDCTRL_RRLS_OFFSET = 100;
export const IDCTRL_CNTRLTYPE_OFFSET = 111;
export const IDCTRL_FGUID_OFFSET = 112;
export const IDCTRL_FGUID_SIZE_BYTES = 16;
/** Command Retry Delay Times, in 100 ms units, picked by the CRD bits of a status. */
export const IDCTRL_CRDT1_OFFSET = 128;
export const IDCTRL_CRDT2_OFFSET = 130;
export const IDCTRL_CRDT3_OFFSET = 132;
export const IDCTRL_OACS_OFFSET = 256;
export const IDCTRL_ACL_OFFSET = 258;
export const IDCTRL_AERL_OFFSET = 259;
export const IDCTRL_FRMW_OFFSET = 260;
export const IDCTRL_LPA_OFFSET = 261;
export const IDCTRL_ELPE_OFFSET = 262;
export const IDCTRL_NPSS_OFFSET = 263;
export const IDCTRL_AVSCC_OFFSET = 264;
export const IDCTRL_APSTA_OFFSET = 265;
export const IDCTRL_WCTEMP_OFFSET = 266;
export const IDCTRL_CCTEMP_OFFSET = 268;
export const IDCTRL_MTFA_OFFSET = 270;
export const IDCTRL_HMPRE_OFFSET = 272;
export const IDCTRL_HMMIN_OFFSET = 276;
/** Total and unallocated NVM capacity, 128-bit byte counts: what namespace management carves up. */
export const IDCTRL_TNVMCAP_OFFSET = 280;
export const IDCTRL_UNVMCAP_OFFSET = 296;
export const IDCTRL_NVMCAP_SIZE_BYTES = 16;
export const IDCTRL_RPMBS_OFFSET = 312;
export const IDCTRL_EDSTT_OFFSET = 316;
export const IDCTRL_DSTO_OFFSET = 318;
export const IDCTRL_FWUG_OFFSET = 319;
export const IDCTRL_KAS_OFFSET = 320;
export const IDCTRL_HCTMA_OFFSET = 322;
export const IDCTRL_MNTMT_OFFSET = 324;
export const IDCTRL_MXTMT_OFFSET = 326;
export const IDCTRL_SANICAP_OFFSET = 328;
export const IDCTRL_SQES_OFFSET = 512;
export const IDCTRL_CQES_OFFSET = 513;
export const IDCTRL_MAXCMD_OFFSET = 514;
export const IDCTRL_NN_OFFSET = 516;
export const IDCTRL_ONCS_OFFSET = 520;
export const IDCTRL_FUSES_OFFSET = 522;
export const IDCTRL_FNA_OFFSET = 524;
export const IDCTRL_VWC_OFFSET = 525;
export const IDCTRL_AWUN_OFFSET = 526;
export const IDCTRL_AWUPF_OFFSET = 528;
export const IDCTRL_NVSCC_OFFSET = 530;
export const IDCTRL_NWPC_OFFSET = 531;
export const IDCTRL_ACWU_OFFSET = 532;
export const IDCTRL_SGLS_OFFSET = 536;
export const IDCTRL_MNAN_OFFSET = 540;
export const IDCTRL_SUBNQN_OFFSET = 768;
export const IDCTRL_SUBNQN_SIZE_BYTES = 256;
export const IDCTRL_PSD_OFFSET = 2048;
export const IDCTRL_PSD_COUNT = 32;
export const IDCTRL_VS_OFFSET = 3072;
export const IDCTRL_VS_SIZE_BYTES = 1024;

// SQES / CQES: required (min) and maximum entry sizes, as log2 of bytes.
export const IDCTRL_QES_MIN_SHIFT = 0;
export const IDCTRL_QES_MIN_MASK = 0xf;
export const IDCTRL_QES_MAX_SHIFT = 4;
export const IDCTRL_QES_MAX_MASK = 0xf;
export const IDCTRL_VWC_PRESENT_SHIFT = 0;
export const IDCTRL_VWC_PRESENT_MASK = 0x1;
/** 0: no SGLs, 1: SGLs with byte alignment, 2: SGLs with dword alignment. */
export const IDCTRL_SGLS_SUPPORT_SHIFT = 0;
export const IDCTRL_SGLS_SUPPORT_MASK = 0x3;

/** Bits of CMIC. */
export const IdctrlCmic = {
  MULTI_PORT: 0x1,
  MULTI_CONTROLLER: 0x2,
  SRIOV_VIRTUAL_FUNCTION: 0x4,
  ANA_REPORTING: 0x8,
} as const;

/** Bits of OACS (optional admin commands). */
export const IdctrlOacs = {
  SECURITY: 0x001,
  FORMAT_NVM: 0x002,
  FIRMWARE: 0x004,
  NAMESPACE_MANAGEMENT: 0x008,
  DEVICE_SELF_TEST: 0x010,
  DIRECTIVES: 0x020,
  NVME_MI: 0x040,
  VIRTUALIZATION_MANAGEMENT: 0x080,
  DOORBELL_BUFFER_CONFIG: 0x100,
} as const;

/** Bits of ONCS (optional NVM commands). */
export const IdctrlOncs = {
  COMPARE: 0x01,
  WRITE_UNCORRECTABLE: 0x02,
  DATASET_MANAGEMENT: 0x04,
  WRITE_ZEROES: 0x08,
  SAVE_SELECT: 0x10,
  RESERVATIONS: 0x20,
  TIMESTAMP: 0x40,
  VERIFY: 0x80,
} as const;

/** Values of CNTRLTYPE. */
export const ControllerType = {
  IO: 0x1,
  DISCOVERY: 0x2,
  ADMIN: 0x3,
} as const;

// Power State Descriptor, 32 bytes each, IDCTRL_PSD_COUNT of them.
export const PSD_SIZE_BYTES = 32;
/** Maximum power, in centiwatts (or 0.0001 W when the scale flag is set). */
export const PSD_MP_OFFSET = 0;
/** Bit 0: max power scale; bit 1: non-operational state. */
export const PSD_FLAGS_OFFSET = 3;
export const PSD_ENLAT_OFFSET = 4;
export const PSD_EXLAT_OFFSET = 8;
export const PSD_RRT_OFFSET = 12;
export const PSD_RRL_OFFSET = 13;
export const PSD_RWT_OFFSET = 14;
export const PSD_RWL_OFFSET = 15;

/** Identify strings are ASCII, padded with spaces, not NUL terminated. */
export function readAsciiField(view: DataView, offset: number, sizeBytes: number): string {
  let text = '';
  for (let i = 0; i < sizeBytes; i++) text += String.fromCharCode(view.getUint8(offset + i));
  return text.replace(/[ \0]+$/, '');
}

export function writeAsciiField(view: DataView, offset: number, sizeBytes: number, text: string): void {
  for (let i = 0; i < sizeBytes; i++) {
    const code = i < text.length ? text.charCodeAt(i) : 0x20;
    view.setUint8(offset + i, code < 0x20 || code > 0x7e ? 0x3f : code);
  }
}

/** Largest transfer one command may move; Infinity when the controller sets no limit. */
export function maxTransferBytes(mdts: number, minPageSizeBytes: number): number {
  return mdts === 0 ? Infinity : minPageSizeBytes * 2 ** mdts;
}

// ---------------------------------------------------------------------------
// Identify Namespace (CNS 0x00 / 0x11), 4096 bytes

export const IDNS_SIZE_BYTES = 4096;
export const IDNS_NSZE_OFFSET = 0;
export const IDNS_NCAP_OFFSET = 8;
export const IDNS_NUSE_OFFSET = 16;
export const IDNS_NSFEAT_OFFSET = 24;
/** Zero-based number of LBA formats. */
export const IDNS_NLBAF_OFFSET = 25;
export const IDNS_FLBAS_OFFSET = 26;
export const IDNS_MC_OFFSET = 27;
export const IDNS_DPC_OFFSET = 28;
export const IDNS_DPS_OFFSET = 29;
export const IDNS_NMIC_OFFSET = 30;
export const IDNS_RESCAP_OFFSET = 31;
export const IDNS_FPI_OFFSET = 32;
export const IDNS_DLFEAT_OFFSET = 33;
export const IDNS_NAWUN_OFFSET = 34;
export const IDNS_NAWUPF_OFFSET = 36;
export const IDNS_NACWU_OFFSET = 38;
export const IDNS_NABSN_OFFSET = 40;
export const IDNS_NABO_OFFSET = 42;
export const IDNS_NABSPF_OFFSET = 44;
export const IDNS_NOIOB_OFFSET = 46;
export const IDNS_NVMCAP_OFFSET = 48;
export const IDNS_NVMCAP_SIZE_BYTES = 16;
export const IDNS_NPWG_OFFSET = 64;
export const IDNS_NPWA_OFFSET = 66;
export const IDNS_NPDG_OFFSET = 68;
export const IDNS_NPDA_OFFSET = 70;
export const IDNS_NOWS_OFFSET = 72;
export const IDNS_ANAGRPID_OFFSET = 92;
export const IDNS_NSATTR_OFFSET = 99;
export const IDNS_NVMSETID_OFFSET = 100;
export const IDNS_ENDGID_OFFSET = 102;
export const IDNS_NGUID_OFFSET = 104;
export const IDNS_NGUID_SIZE_BYTES = 16;
export const IDNS_EUI64_OFFSET = 120;
export const IDNS_EUI64_SIZE_BYTES = 8;
export const IDNS_LBAF_OFFSET = 128;
export const IDNS_LBAF_COUNT = 16;
export const IDNS_VS_OFFSET = 384;
export const IDNS_VS_SIZE_BYTES = 3712;

export const IDNS_NSFEAT_THIN_PROVISIONING_SHIFT = 0;
export const IDNS_NSFEAT_THIN_PROVISIONING_MASK = 0x1;
/** FLBAS: index of the LBA format in use, and whether metadata is interleaved with data. */
export const IDNS_FLBAS_FORMAT_SHIFT = 0;
export const IDNS_FLBAS_FORMAT_MASK = 0xf;
export const IDNS_FLBAS_EXTENDED_SHIFT = 4;
export const IDNS_FLBAS_EXTENDED_MASK = 0x1;
/** DPS: protection information type (0 = none) and whether it sits first in metadata. */
export const IDNS_DPS_PIT_SHIFT = 0;
export const IDNS_DPS_PIT_MASK = 0x7;
export const IDNS_DPS_FIRST_SHIFT = 3;
export const IDNS_DPS_FIRST_MASK = 0x1;
/** NMIC bit 0: the namespace may be attached to more than one controller. */
export const IDNS_NMIC_SHARED_SHIFT = 0;
export const IDNS_NMIC_SHARED_MASK = 0x1;

// LBA Format entry (4 bytes, read as one dword).
export const LBAF_SIZE_BYTES = 4;
/** Metadata bytes per block. */
export const LBAF_MS_SHIFT = 0;
export const LBAF_MS_MASK = 0xffff;
/** log2 of the data bytes per block; 9 means 512-byte blocks. */
export const LBAF_LBADS_SHIFT = 16;
export const LBAF_LBADS_MASK = 0xff;
/** Relative performance, 0 best to 3 degraded. */
export const LBAF_RP_SHIFT = 24;
export const LBAF_RP_MASK = 0x3;

export interface LbaFormat {
  ms: number;
  lbads: number;
  rp: number;
}

export function decodeLbaf(raw: number): LbaFormat {
  return {
    ms: getBits(raw, LBAF_MS_SHIFT, LBAF_MS_MASK),
    lbads: getBits(raw, LBAF_LBADS_SHIFT, LBAF_LBADS_MASK),
    rp: getBits(raw, LBAF_RP_SHIFT, LBAF_RP_MASK),
  };
}

export function encodeLbaf(f: LbaFormat): number {
  return (
    (putBits(f.ms, LBAF_MS_SHIFT, LBAF_MS_MASK) |
      putBits(f.lbads, LBAF_LBADS_SHIFT, LBAF_LBADS_MASK) |
      putBits(f.rp, LBAF_RP_SHIFT, LBAF_RP_MASK)) >>>
    0
  );
}

export interface IdentifyNamespaceSummary {
  nsze: bigint;
  ncap: bigint;
  nuse: bigint;
  nsfeat: number;
  nlbaf: number;
  flbas: number;
  dps: number;
  nmic: number;
  lbafs: LbaFormat[];
  /** The LBA format FLBAS selects. */
  lbaf: LbaFormat;
  blockSizeBytes: number;
}

export function readIdentifyNamespace(view: DataView, offset = 0): IdentifyNamespaceSummary {
  const nlbaf = view.getUint8(offset + IDNS_NLBAF_OFFSET);
  const flbas = view.getUint8(offset + IDNS_FLBAS_OFFSET);
  const lbafs: LbaFormat[] = [];
  for (let i = 0; i < Math.min(nlbaf + 1, IDNS_LBAF_COUNT); i++) {
    lbafs.push(decodeLbaf(view.getUint32(offset + IDNS_LBAF_OFFSET + i * LBAF_SIZE_BYTES, true)));
  }
  const index = getBits(flbas, IDNS_FLBAS_FORMAT_SHIFT, IDNS_FLBAS_FORMAT_MASK);
  const lbaf = decodeLbaf(view.getUint32(offset + IDNS_LBAF_OFFSET + index * LBAF_SIZE_BYTES, true));
  return {
    nsze: readU64(view, offset + IDNS_NSZE_OFFSET),
    ncap: readU64(view, offset + IDNS_NCAP_OFFSET),
    nuse: readU64(view, offset + IDNS_NUSE_OFFSET),
    nsfeat: view.getUint8(offset + IDNS_NSFEAT_OFFSET),
    nlbaf,
    flbas,
    dps: view.getUint8(offset + IDNS_DPS_OFFSET),
    nmic: view.getUint8(offset + IDNS_NMIC_OFFSET),
    lbafs,
    lbaf,
    blockSizeBytes: 2 ** lbaf.lbads,
  };
}

/**
 * Namespace Management (create) takes a host buffer shaped like Identify
 * Namespace in which only these fields are read; the rest must be zero.
 */
export interface NamespaceCreateData {
  nsze: U64;
  ncap: U64;
  flbas: number;
  dps?: number;
  nmic?: Flag;
}

export function writeNamespaceCreateData(view: DataView, offset: number, f: NamespaceCreateData): void {
  for (let i = 0; i < IDNS_SIZE_BYTES; i += 4) view.setUint32(offset + i, 0, true);
  writeU64(view, offset + IDNS_NSZE_OFFSET, f.nsze);
  writeU64(view, offset + IDNS_NCAP_OFFSET, f.ncap);
  view.setUint8(offset + IDNS_FLBAS_OFFSET, f.flbas);
  view.setUint8(offset + IDNS_DPS_OFFSET, f.dps ?? 0);
  view.setUint8(offset + IDNS_NMIC_OFFSET, putBits(flagBit(f.nmic), IDNS_NMIC_SHARED_SHIFT, IDNS_NMIC_SHARED_MASK));
}

export function encodeNamespaceCreateData(f: NamespaceCreateData): Uint8Array {
  const bytes = new Uint8Array(IDNS_SIZE_BYTES);
  writeNamespaceCreateData(viewOf(bytes), 0, f);
  return bytes;
}

// ---------------------------------------------------------------------------
// Namespace lists and identification descriptors

/** Active / allocated namespace ID lists: ascending u32 NSIDs, zero-terminated. */
export const NS_LIST_SIZE_BYTES = 4096;
export const NS_LIST_MAX_ENTRIES = 1024;

export function readNamespaceList(view: DataView, offset = 0): number[] {
  const ids: number[] = [];
  for (let i = 0; i < NS_LIST_MAX_ENTRIES; i++) {
    const nsid = view.getUint32(offset + i * 4, true);
    if (nsid === 0) break;
    ids.push(nsid);
  }
  return ids;
}

export const NS_ID_DESC_HEADER_SIZE_BYTES = 4;
export const NS_ID_DESC_NIDT_OFFSET = 0;
export const NS_ID_DESC_NIDL_OFFSET = 1;
export const NS_ID_DESC_NID_OFFSET = 4;
export const NS_ID_DESC_LIST_SIZE_BYTES = 4096;

/** Namespace Identifier Types. */
export const Nidt = {
  EUI64: 0x1,
  NGUID: 0x2,
  UUID: 0x3,
  CSI: 0x4,
} as const;

/** The NIDL each identifier type must carry. */
export const NidtLengthBytes = {
  EUI64: 8,
  NGUID: 16,
  UUID: 16,
  CSI: 1,
} as const;

/** Writes one descriptor and returns the offset just past it. */
export function writeNsIdDescriptor(view: DataView, offset: number, nidt: number, nid: Uint8Array): number {
  view.setUint8(offset + NS_ID_DESC_NIDT_OFFSET, nidt);
  view.setUint8(offset + NS_ID_DESC_NIDL_OFFSET, nid.length);
  view.setUint16(offset + 2, 0, true);
  for (let i = 0; i < nid.length; i++) view.setUint8(offset + NS_ID_DESC_NID_OFFSET + i, nid[i] ?? 0);
  return offset + NS_ID_DESC_HEADER_SIZE_BYTES + nid.length;
}

export function readNsIdDescriptors(view: DataView, offset = 0): Array<{ nidt: number; nid: Uint8Array }> {
  const out: Array<{ nidt: number; nid: Uint8Array }> = [];
  let at = offset;
  const end = offset + Math.min(NS_ID_DESC_LIST_SIZE_BYTES, view.byteLength - offset);
  while (at + NS_ID_DESC_HEADER_SIZE_BYTES <= end) {
    const nidt = view.getUint8(at + NS_ID_DESC_NIDT_OFFSET);
    const nidl = view.getUint8(at + NS_ID_DESC_NIDL_OFFSET);
    // A zero type ends the list.
    if (nidt === 0 || at + NS_ID_DESC_HEADER_SIZE_BYTES + nidl > end) break;
    const nid = new Uint8Array(view.buffer, view.byteOffset + at + NS_ID_DESC_NID_OFFSET, nidl).slice();
    out.push({ nidt, nid });
    at += NS_ID_DESC_HEADER_SIZE_BYTES + nidl;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Controller lists (Identify CNS 0x12 / 0x13, and the Namespace Attachment data)

export const CTRL_LIST_SIZE_BYTES = 4096;
export const CTRL_LIST_COUNT_OFFSET = 0;
export const CTRL_LIST_IDS_OFFSET = 2;
export const CTRL_LIST_MAX_ENTRIES = 2047;

export function writeControllerList(view: DataView, offset: number, ids: readonly number[]): void {
  if (ids.length > CTRL_LIST_MAX_ENTRIES) {
    throw new RangeError(`controller list holds at most ${CTRL_LIST_MAX_ENTRIES} ids`);
  }
  for (let i = 0; i < CTRL_LIST_SIZE_BYTES; i += 4) view.setUint32(offset + i, 0, true);
  view.setUint16(offset + CTRL_LIST_COUNT_OFFSET, ids.length, true);
  ids.forEach((id, i) => view.setUint16(offset + CTRL_LIST_IDS_OFFSET + 2 * i, id, true));
}

export function readControllerList(view: DataView, offset = 0): number[] {
  const count = Math.min(view.getUint16(offset + CTRL_LIST_COUNT_OFFSET, true), CTRL_LIST_MAX_ENTRIES);
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(view.getUint16(offset + CTRL_LIST_IDS_OFFSET + 2 * i, true));
  return ids;
}

// ---------------------------------------------------------------------------
// Secondary Controller List (CNS 0x15): one entry per SR-IOV virtual function

export const SECLIST_SIZE_BYTES = 4096;
export const SECLIST_NUMID_OFFSET = 0;
export const SECLIST_ENTRIES_OFFSET = 32;
export const SECLIST_MAX_ENTRIES = 127;
export const SECLIST_ENTRY_SIZE_BYTES = 32;
export const SECLIST_ENTRY_SCID_OFFSET = 0;
export const SECLIST_ENTRY_PCID_OFFSET = 2;
export const SECLIST_ENTRY_SCS_OFFSET = 4;
export const SECLIST_ENTRY_VFN_OFFSET = 8;
export const SECLIST_ENTRY_NVQ_OFFSET = 10;
export const SECLIST_ENTRY_NVI_OFFSET = 12;
export const SECLIST_ENTRY_SCS_ONLINE_SHIFT = 0;
export const SECLIST_ENTRY_SCS_ONLINE_MASK = 0x1;

export interface SecondaryControllerEntry {
  scid: number;
  pcid: number;
  online: boolean;
  vfn: number;
  nvq: number;
  nvi: number;
}

export interface SecondaryControllerEntryInput {
  scid: number;
  pcid: number;
  online?: Flag;
  vfn: number;
  nvq: number;
  nvi: number;
}

export function writeSecondaryControllerEntry(view: DataView, offset: number, e: SecondaryControllerEntryInput): void {
  for (let i = 0; i < SECLIST_ENTRY_SIZE_BYTES; i += 4) view.setUint32(offset + i, 0, true);
  view.setUint16(offset + SECLIST_ENTRY_SCID_OFFSET, e.scid, true);
  view.setUint16(offset + SECLIST_ENTRY_PCID_OFFSET, e.pcid, true);
  view.setUint8(
    offset + SECLIST_ENTRY_SCS_OFFSET,
    putBits(flagBit(e.online), SECLIST_ENTRY_SCS_ONLINE_SHIFT, SECLIST_ENTRY_SCS_ONLINE_MASK),
  );
  view.setUint16(offset + SECLIST_ENTRY_VFN_OFFSET, e.vfn, true);
  view.setUint16(offset + SECLIST_ENTRY_NVQ_OFFSET, e.nvq, true);
  view.setUint16(offset + SECLIST_ENTRY_NVI_OFFSET, e.nvi, true);
}

export function readSecondaryControllerEntry(view: DataView, offset: number): SecondaryControllerEntry {
  return {
    scid: view.getUint16(offset + SECLIST_ENTRY_SCID_OFFSET, true),
    pcid: view.getUint16(offset + SECLIST_ENTRY_PCID_OFFSET, true),
    online:
      getBits(view.getUint8(offset + SECLIST_ENTRY_SCS_OFFSET), SECLIST_ENTRY_SCS_ONLINE_SHIFT, SECLIST_ENTRY_SCS_ONLINE_MASK) === 1,
    vfn: view.getUint16(offset + SECLIST_ENTRY_VFN_OFFSET, true),
    nvq: view.getUint16(offset + SECLIST_ENTRY_NVQ_OFFSET, true),
    nvi: view.getUint16(offset + SECLIST_ENTRY_NVI_OFFSET, true),
  };
}

export function writeSecondaryControllerList(
  view: DataView,
  offset: number,
  entries: readonly SecondaryControllerEntryInput[],
): void {
  if (entries.length > SECLIST_MAX_ENTRIES) {
    throw new RangeError(`secondary controller list holds at most ${SECLIST_MAX_ENTRIES} entries`);
  }
  for (let i = 0; i < SECLIST_SIZE_BYTES; i += 4) view.setUint32(offset + i, 0, true);
  view.setUint8(offset + SECLIST_NUMID_OFFSET, entries.length);
  entries.forEach((e, i) =>
    writeSecondaryControllerEntry(view, offset + SECLIST_ENTRIES_OFFSET + i * SECLIST_ENTRY_SIZE_BYTES, e),
  );
}

export function readSecondaryControllerList(view: DataView, offset = 0): SecondaryControllerEntry[] {
  const count = Math.min(view.getUint8(offset + SECLIST_NUMID_OFFSET), SECLIST_MAX_ENTRIES);
  const entries: SecondaryControllerEntry[] = [];
  for (let i = 0; i < count; i++) {
    entries.push(readSecondaryControllerEntry(view, offset + SECLIST_ENTRIES_OFFSET + i * SECLIST_ENTRY_SIZE_BYTES));
  }
  return entries;
}

// ---------------------------------------------------------------------------
// Primary Controller Capabilities (CNS 0x14): the flexible queue (VQ) and
// interrupt (VI) resources the primary controller can hand to secondaries.

export const PRICAP_SIZE_BYTES = 4096;
export const PRICAP_CNTLID_OFFSET = 0;
export const PRICAP_PORTID_OFFSET = 2;
export const PRICAP_CRT_OFFSET = 4;
export const PRICAP_VQFRT_OFFSET = 32;
export const PRICAP_VQRFA_OFFSET = 36;
export const PRICAP_VQRFAP_OFFSET = 40;
export const PRICAP_VQPRT_OFFSET = 42;
export const PRICAP_VQFRSM_OFFSET = 44;
export const PRICAP_VQGRAN_OFFSET = 46;
export const PRICAP_VIFRT_OFFSET = 64;
export const PRICAP_VIRFA_OFFSET = 68;
export const PRICAP_VIRFAP_OFFSET = 72;
export const PRICAP_VIPRT_OFFSET = 74;
export const PRICAP_VIFRSM_OFFSET = 76;
export const PRICAP_VIGRAN_OFFSET = 78;

/** Bits of CRT (controller resource types supported). */
export const PricapCrt = {
  VQ: 0x1,
  VI: 0x2,
} as const;

export interface PrimaryControllerCaps {
  cntlid: number;
  portid: number;
  crt: number;
  vqfrt: number;
  vqrfa: number;
  vqrfap: number;
  vqprt: number;
  vqfrsm: number;
  vqgran: number;
  vifrt: number;
  virfa: number;
  virfap: number;
  viprt: number;
  vifrsm: number;
  vigran: number;
}

export function readPrimaryControllerCaps(view: DataView, offset = 0): PrimaryControllerCaps {
  return {
    cntlid: view.getUint16(offset + PRICAP_CNTLID_OFFSET, true),
    portid: view.getUint16(offset + PRICAP_PORTID_OFFSET, true),
    crt: view.getUint8(offset + PRICAP_CRT_OFFSET),
    vqfrt: view.getUint32(offset + PRICAP_VQFRT_OFFSET, true),
    vqrfa: view.getUint32(offset + PRICAP_VQRFA_OFFSET, true),
    vqrfap: view.getUint16(offset + PRICAP_VQRFAP_OFFSET, true),
    vqprt: view.getUint16(offset + PRICAP_VQPRT_OFFSET, true),
    vqfrsm: view.getUint16(offset + PRICAP_VQFRSM_OFFSET, true),
    vqgran: view.getUint16(offset + PRICAP_VQGRAN_OFFSET, true),
    vifrt: view.getUint32(offset + PRICAP_VIFRT_OFFSET, true),
    virfa: view.getUint32(offset + PRICAP_VIRFA_OFFSET, true),
    virfap: view.getUint16(offset + PRICAP_VIRFAP_OFFSET, true),
    viprt: view.getUint16(offset + PRICAP_VIPRT_OFFSET, true),
    vifrsm: view.getUint16(offset + PRICAP_VIFRSM_OFFSET, true),
    vigran: view.getUint16(offset + PRICAP_VIGRAN_OFFSET, true),
  };
}

// ---------------------------------------------------------------------------
// Namespace Management / Namespace Attachment

/** Result: CQE DW0 carries the NSID of a created namespace. */
export const NS_MGMT_CDW10_SEL_SHIFT = 0;
export const NS_MGMT_CDW10_SEL_MASK = 0xf;
export const NsManagementSel = {
  CREATE: 0x0,
  DELETE: 0x1,
} as const;

/** The data buffer is a controller list. */
export const NS_ATTACH_CDW10_SEL_SHIFT = 0;
export const NS_ATTACH_CDW10_SEL_MASK = 0xf;
export const NsAttachmentSel = {
  ATTACH: 0x0,
  DETACH: 0x1,
} as const;

export interface NsSelectFields {
  cid: number;
  sel: number;
  /** 0 for create, the target namespace otherwise. */
  nsid?: number;
  prp1?: U64;
  prp2?: U64;
}

export function nsManagementSqe(f: NsSelectFields): SqeFields {
  return {
    opc: OPC_NAMESPACE_MANAGEMENT,
    cid: f.cid,
    nsid: f.nsid ?? 0,
    prp1: f.prp1 ?? 0,
    prp2: f.prp2 ?? 0,
    cdw10: putBits(f.sel, NS_MGMT_CDW10_SEL_SHIFT, NS_MGMT_CDW10_SEL_MASK),
  };
}

export function nsAttachmentSqe(f: NsSelectFields): SqeFields {
  return {
    opc: OPC_NAMESPACE_ATTACHMENT,
    cid: f.cid,
    nsid: f.nsid ?? 0,
    prp1: f.prp1 ?? 0,
    prp2: f.prp2 ?? 0,
    cdw10: putBits(f.sel, NS_ATTACH_CDW10_SEL_SHIFT, NS_ATTACH_CDW10_SEL_MASK),
  };
}

// ---------------------------------------------------------------------------
// Virtualization Management

export const VIRT_MGMT_CDW10_ACT_SHIFT = 0;
export const VIRT_MGMT_CDW10_ACT_MASK = 0xf;
export const VIRT_MGMT_CDW10_RT_SHIFT = 8;
export const VIRT_MGMT_CDW10_RT_MASK = 0x7;
export const VIRT_MGMT_CDW10_CNTLID_SHIFT = 16;
export const VIRT_MGMT_CDW10_CNTLID_MASK = 0xffff;
export const VIRT_MGMT_CDW11_NR_SHIFT = 0;
export const VIRT_MGMT_CDW11_NR_MASK = 0xffff;

export const VirtMgmtAction = {
  PRIMARY_FLEXIBLE_ALLOCATION: 0x1,
  SECONDARY_OFFLINE: 0x7,
  SECONDARY_ASSIGN: 0x8,
  SECONDARY_ONLINE: 0x9,
} as const;

export const VirtResourceType = {
  VQ: 0x0,
  VI: 0x1,
} as const;

export interface VirtMgmtFields {
  cid: number;
  act: number;
  rt?: number;
  cntlid: number;
  /** Number of resources to assign or allocate (not zero-based). */
  nr?: number;
}

export function virtMgmtSqe(f: VirtMgmtFields): SqeFields {
  return {
    opc: OPC_VIRTUALIZATION_MANAGEMENT,
    cid: f.cid,
    cdw10:
      (putBits(f.act, VIRT_MGMT_CDW10_ACT_SHIFT, VIRT_MGMT_CDW10_ACT_MASK) |
        putBits(f.rt ?? 0, VIRT_MGMT_CDW10_RT_SHIFT, VIRT_MGMT_CDW10_RT_MASK) |
        putBits(f.cntlid, VIRT_MGMT_CDW10_CNTLID_SHIFT, VIRT_MGMT_CDW10_CNTLID_MASK)) >>>
      0,
    cdw11: putBits(f.nr ?? 0, VIRT_MGMT_CDW11_NR_SHIFT, VIRT_MGMT_CDW11_NR_MASK),
  };
}

// ---------------------------------------------------------------------------
// Get Log Page

export const GET_LOG_PAGE_CDW10_LID_SHIFT = 0;
export const GET_LOG_PAGE_CDW10_LID_MASK = 0xff;
/** Bits 14:8 since NVMe 2.0; older revisions define 11:8 and reserve the rest as zero. */
export const GET_LOG_PAGE_CDW10_LSP_SHIFT = 8;
export const GET_LOG_PAGE_CDW10_LSP_MASK = 0x7f;
/** Retain Asynchronous Event: reading the log does not re-arm the event. */
export const GET_LOG_PAGE_CDW10_RAE_SHIFT = 15;
export const GET_LOG_PAGE_CDW10_RAE_MASK = 0x1;
/** NUMD is a zero-based dword count split over NUMDL (low 16 bits) and NUMDU. */
export const GET_LOG_PAGE_CDW10_NUMDL_SHIFT = 16;
export const GET_LOG_PAGE_CDW10_NUMDL_MASK = 0xffff;
export const GET_LOG_PAGE_CDW11_NUMDU_SHIFT = 0;
export const GET_LOG_PAGE_CDW11_NUMDU_MASK = 0xffff;
export const GET_LOG_PAGE_CDW11_LSI_SHIFT = 16;
export const GET_LOG_PAGE_CDW11_LSI_MASK = 0xffff;

export const LogPageId = {
  ERROR: 0x01,
  SMART_HEALTH: 0x02,
  FIRMWARE_SLOT: 0x03,
  CHANGED_NS_LIST: 0x04,
  COMMANDS_EFFECTS: 0x05,
} as const;

export interface GetLogPageFields {
  cid: number;
  nsid?: number;
  prp1: U64;
  prp2?: U64;
  lid: number;
  lsp?: number;
  rae?: Flag;
  /** Zero-based dword count; see logPageNumd. */
  numd: number;
  lsi?: number;
  /** Byte offset into the log (must be dword aligned). */
  offset?: U64;
}

export function logPageNumd(lengthBytes: number): number {
  return lengthBytes / 4 - 1;
}

export function getLogPageSqe(f: GetLogPageFields): SqeFields {
  const offset = BigInt.asUintN(64, BigInt(f.offset ?? 0));
  return {
    opc: OPC_GET_LOG_PAGE,
    cid: f.cid,
    nsid: f.nsid ?? 0,
    prp1: f.prp1,
    prp2: f.prp2 ?? 0,
    cdw10:
      (putBits(f.lid, GET_LOG_PAGE_CDW10_LID_SHIFT, GET_LOG_PAGE_CDW10_LID_MASK) |
        putBits(f.lsp ?? 0, GET_LOG_PAGE_CDW10_LSP_SHIFT, GET_LOG_PAGE_CDW10_LSP_MASK) |
        putBits(flagBit(f.rae), GET_LOG_PAGE_CDW10_RAE_SHIFT, GET_LOG_PAGE_CDW10_RAE_MASK) |
        putBits(f.numd & 0xffff, GET_LOG_PAGE_CDW10_NUMDL_SHIFT, GET_LOG_PAGE_CDW10_NUMDL_MASK)) >>>
      0,
    cdw11:
      (putBits(Math.floor(f.numd / 0x10000), GET_LOG_PAGE_CDW11_NUMDU_SHIFT, GET_LOG_PAGE_CDW11_NUMDU_MASK) |
        putBits(f.lsi ?? 0, GET_LOG_PAGE_CDW11_LSI_SHIFT, GET_LOG_PAGE_CDW11_LSI_MASK)) >>>
      0,
    cdw12: Number(offset & 0xffff_ffffn),
    cdw13: Number(offset >> 32n),
  };
}

// Error Information log entry (64 bytes each).
export const ERROR_LOG_ENTRY_SIZE_BYTES = 64;
export const ERROR_LOG_ENTRY_ERROR_COUNT_OFFSET = 0;
export const ERROR_LOG_ENTRY_SQID_OFFSET = 8;
export const ERROR_LOG_ENTRY_CID_OFFSET = 10;
/** Same layout as the CQE STATUS field, phase tag included. */
export const ERROR_LOG_ENTRY_STATUS_OFFSET = 12;
/** Byte (bits 7:0) and bit (10:8) of the command field that was in error. */
export const ERROR_LOG_ENTRY_PARAM_ERROR_LOCATION_OFFSET = 14;
export const ERROR_LOG_ENTRY_LBA_OFFSET = 16;
export const ERROR_LOG_ENTRY_NSID_OFFSET = 24;
export const ERROR_LOG_ENTRY_VS_INFO_OFFSET = 28;
export const ERROR_LOG_ENTRY_TRTYPE_OFFSET = 29;
export const ERROR_LOG_ENTRY_COMMAND_SPECIFIC_OFFSET = 32;
export const ERROR_LOG_ENTRY_TRTYPE_SPECIFIC_OFFSET = 40;

export interface ErrorLogEntry {
  errorCount: U64;
  sqid: number;
  cid: number;
  status: number;
  paramErrorLocation?: number;
  lba?: U64;
  nsid?: number;
  commandSpecific?: U64;
}

export function writeErrorLogEntry(view: DataView, offset: number, e: ErrorLogEntry): void {
  for (let i = 0; i < ERROR_LOG_ENTRY_SIZE_BYTES; i += 4) view.setUint32(offset + i, 0, true);
  writeU64(view, offset + ERROR_LOG_ENTRY_ERROR_COUNT_OFFSET, e.errorCount);
  view.setUint16(offset + ERROR_LOG_ENTRY_SQID_OFFSET, e.sqid, true);
  view.setUint16(offset + ERROR_LOG_ENTRY_CID_OFFSET, e.cid, true);
  view.setUint16(offset + ERROR_LOG_ENTRY_STATUS_OFFSET, e.status, true);
  // All ones means "not specific to a field".
  view.setUint16(offset + ERROR_LOG_ENTRY_PARAM_ERROR_LOCATION_OFFSET, e.paramErrorLocation ?? 0xffff, true);
  writeU64(view, offset + ERROR_LOG_ENTRY_LBA_OFFSET, e.lba ?? 0);
  view.setUint32(offset + ERROR_LOG_ENTRY_NSID_OFFSET, (e.nsid ?? 0) >>> 0, true);
  writeU64(view, offset + ERROR_LOG_ENTRY_COMMAND_SPECIFIC_OFFSET, e.commandSpecific ?? 0);
}

export function readErrorLogEntry(view: DataView, offset: number): Required<ErrorLogEntry> & { errorCount: bigint } {
  return {
    errorCount: readU64(view, offset + ERROR_LOG_ENTRY_ERROR_COUNT_OFFSET),
    sqid: view.getUint16(offset + ERROR_LOG_ENTRY_SQID_OFFSET, true),
    cid: view.getUint16(offset + ERROR_LOG_ENTRY_CID_OFFSET, true),
    status: view.getUint16(offset + ERROR_LOG_ENTRY_STATUS_OFFSET, true),
    paramErrorLocation: view.getUint16(offset + ERROR_LOG_ENTRY_PARAM_ERROR_LOCATION_OFFSET, true),
    lba: readU64(view, offset + ERROR_LOG_ENTRY_LBA_OFFSET),
    nsid: view.getUint32(offset + ERROR_LOG_ENTRY_NSID_OFFSET, true),
    commandSpecific: readU64(view, offset + ERROR_LOG_ENTRY_COMMAND_SPECIFIC_OFFSET),
  };
}

// SMART / Health Information log (512 bytes).
export const SMART_LOG_SIZE_BYTES = 512;
export const SMART_LOG_CRITICAL_WARNING_OFFSET = 0;
/** Kelvin. */
export const SMART_LOG_COMPOSITE_TEMPERATURE_OFFSET = 1;
export const SMART_LOG_AVAILABLE_SPARE_OFFSET = 3;
export const SMART_LOG_AVAILABLE_SPARE_THRESHOLD_OFFSET = 4;
export const SMART_LOG_PERCENTAGE_USED_OFFSET = 5;
export const SMART_LOG_ENDURANCE_GROUP_WARNING_OFFSET = 6;
export const SMART_LOG_DATA_UNITS_READ_OFFSET = 32;
export const SMART_LOG_DATA_UNITS_WRITTEN_OFFSET = 48;
export const SMART_LOG_HOST_READ_COMMANDS_OFFSET = 64;
export const SMART_LOG_HOST_WRITE_COMMANDS_OFFSET = 80;
/** Minutes. */
export const SMART_LOG_CONTROLLER_BUSY_TIME_OFFSET = 96;
export const SMART_LOG_POWER_CYCLES_OFFSET = 112;
export const SMART_LOG_POWER_ON_HOURS_OFFSET = 128;
export const SMART_LOG_UNSAFE_SHUTDOWNS_OFFSET = 144;
export const SMART_LOG_MEDIA_ERRORS_OFFSET = 160;
export const SMART_LOG_NUM_ERROR_LOG_ENTRIES_OFFSET = 176;
/** Minutes. */
export const SMART_LOG_WARNING_TEMP_TIME_OFFSET = 192;
export const SMART_LOG_CRITICAL_TEMP_TIME_OFFSET = 196;
/** Eight u16 sensors, Kelvin. */
export const SMART_LOG_TEMP_SENSOR_OFFSET = 200;
export const SMART_LOG_COUNTER_SIZE_BYTES = 16;
/** Data units count thousands of 512-byte blocks. */
export const SMART_DATA_UNIT_BYTES = 512_000;

export interface SmartHealthLog {
  criticalWarning: number;
  compositeTemperatureKelvin: number;
  availableSpare: number;
  availableSpareThreshold: number;
  percentageUsed: number;
  dataUnitsRead: bigint;
  dataUnitsWritten: bigint;
  hostReadCommands: bigint;
  hostWriteCommands: bigint;
  controllerBusyTimeMinutes: bigint;
  powerCycles: bigint;
  powerOnHours: bigint;
  unsafeShutdowns: bigint;
  mediaErrors: bigint;
  numErrorLogEntries: bigint;
}

export function readSmartHealthLog(view: DataView, offset = 0): SmartHealthLog {
  return {
    criticalWarning: view.getUint8(offset + SMART_LOG_CRITICAL_WARNING_OFFSET),
    compositeTemperatureKelvin: view.getUint16(offset + SMART_LOG_COMPOSITE_TEMPERATURE_OFFSET, true),
    availableSpare: view.getUint8(offset + SMART_LOG_AVAILABLE_SPARE_OFFSET),
    availableSpareThreshold: view.getUint8(offset + SMART_LOG_AVAILABLE_SPARE_THRESHOLD_OFFSET),
    percentageUsed: view.getUint8(offset + SMART_LOG_PERCENTAGE_USED_OFFSET),
    dataUnitsRead: readU128(view, offset + SMART_LOG_DATA_UNITS_READ_OFFSET),
    dataUnitsWritten: readU128(view, offset + SMART_LOG_DATA_UNITS_WRITTEN_OFFSET),
    hostReadCommands: readU128(view, offset + SMART_LOG_HOST_READ_COMMANDS_OFFSET),
    hostWriteCommands: readU128(view, offset + SMART_LOG_HOST_WRITE_COMMANDS_OFFSET),
    controllerBusyTimeMinutes: readU128(view, offset + SMART_LOG_CONTROLLER_BUSY_TIME_OFFSET),
    powerCycles: readU128(view, offset + SMART_LOG_POWER_CYCLES_OFFSET),
    powerOnHours: readU128(view, offset + SMART_LOG_POWER_ON_HOURS_OFFSET),
    unsafeShutdowns: readU128(view, offset + SMART_LOG_UNSAFE_SHUTDOWNS_OFFSET),
    mediaErrors: readU128(view, offset + SMART_LOG_MEDIA_ERRORS_OFFSET),
    numErrorLogEntries: readU128(view, offset + SMART_LOG_NUM_ERROR_LOG_ENTRIES_OFFSET),
  };
}

// ---------------------------------------------------------------------------
// Set / Get Features

export const FEATURES_CDW10_FID_SHIFT = 0;
export const FEATURES_CDW10_FID_MASK = 0xff;
/** Set Features: also save the value across power cycles. */
export const SET_FEATURES_CDW10_SV_SHIFT = 31;
export const SET_FEATURES_CDW10_SV_MASK = 0x1;
export const GET_FEATURES_CDW10_SEL_SHIFT = 8;
export const GET_FEATURES_CDW10_SEL_MASK = 0x7;

export const FeatureId = {
  ARBITRATION: 0x01,
  POWER_MANAGEMENT: 0x02,
  TEMPERATURE_THRESHOLD: 0x04,
  ERROR_RECOVERY: 0x05,
  VOLATILE_WRITE_CACHE: 0x06,
  NUMBER_OF_QUEUES: 0x07,
  INTERRUPT_COALESCING: 0x08,
  INTERRUPT_VECTOR_CONFIG: 0x09,
  ASYNC_EVENT_CONFIG: 0x0b,
  KEEP_ALIVE_TIMER: 0x0f,
} as const;

/** Get Features SEL values. */
export const FeatureSelect = {
  CURRENT: 0x0,
  DEFAULT: 0x1,
  SAVED: 0x2,
  SUPPORTED_CAPABILITIES: 0x3,
} as const;

/** CDW11 of Set Features and DW0 of its completion; both counts are zero-based. */
export const NUMBER_OF_QUEUES_NSQR_SHIFT = 0;
export const NUMBER_OF_QUEUES_NSQR_MASK = 0xffff;
export const NUMBER_OF_QUEUES_NCQR_SHIFT = 16;
export const NUMBER_OF_QUEUES_NCQR_MASK = 0xffff;

/** Aggregation threshold (zero-based entries) and time (100 µs units). */
export const INTERRUPT_COALESCING_THR_SHIFT = 0;
export const INTERRUPT_COALESCING_THR_MASK = 0xff;
export const INTERRUPT_COALESCING_TIME_SHIFT = 8;
export const INTERRUPT_COALESCING_TIME_MASK = 0xff;
export const INTERRUPT_COALESCING_TIME_UNIT_US = 100;

export const VOLATILE_WRITE_CACHE_WCE_SHIFT = 0;
export const VOLATILE_WRITE_CACHE_WCE_MASK = 0x1;

export interface SetFeaturesFields {
  cid: number;
  nsid?: number;
  fid: number;
  sv?: Flag;
  cdw11?: number;
  prp1?: U64;
}

export function setFeaturesSqe(f: SetFeaturesFields): SqeFields {
  return {
    opc: OPC_SET_FEATURES,
    cid: f.cid,
    nsid: f.nsid ?? 0,
    prp1: f.prp1 ?? 0,
    cdw10:
      (putBits(f.fid, FEATURES_CDW10_FID_SHIFT, FEATURES_CDW10_FID_MASK) |
        putBits(flagBit(f.sv), SET_FEATURES_CDW10_SV_SHIFT, SET_FEATURES_CDW10_SV_MASK)) >>>
      0,
    cdw11: (f.cdw11 ?? 0) >>> 0,
  };
}

export function getFeaturesSqe(f: { cid: number; nsid?: number; fid: number; sel?: number; prp1?: U64 }): SqeFields {
  return {
    opc: OPC_GET_FEATURES,
    cid: f.cid,
    nsid: f.nsid ?? 0,
    prp1: f.prp1 ?? 0,
    cdw10:
      (putBits(f.fid, FEATURES_CDW10_FID_SHIFT, FEATURES_CDW10_FID_MASK) |
        putBits(f.sel ?? 0, GET_FEATURES_CDW10_SEL_SHIFT, GET_FEATURES_CDW10_SEL_MASK)) >>>
      0,
  };
}

/** Both counts zero-based, as on the wire. */
export function numberOfQueuesDw(f: { nsqr: number; ncqr: number }): number {
  return (
    (putBits(f.nsqr, NUMBER_OF_QUEUES_NSQR_SHIFT, NUMBER_OF_QUEUES_NSQR_MASK) |
      putBits(f.ncqr, NUMBER_OF_QUEUES_NCQR_SHIFT, NUMBER_OF_QUEUES_NCQR_MASK)) >>>
    0
  );
}

export function decodeNumberOfQueues(dw: number): { nsqr: number; ncqr: number } {
  return {
    nsqr: getBits(dw, NUMBER_OF_QUEUES_NSQR_SHIFT, NUMBER_OF_QUEUES_NSQR_MASK),
    ncqr: getBits(dw, NUMBER_OF_QUEUES_NCQR_SHIFT, NUMBER_OF_QUEUES_NCQR_MASK),
  };
}

export function interruptCoalescingDw(f: { thr: number; timeUnits: number }): number {
  return (
    (putBits(f.thr, INTERRUPT_COALESCING_THR_SHIFT, INTERRUPT_COALESCING_THR_MASK) |
      putBits(f.timeUnits, INTERRUPT_COALESCING_TIME_SHIFT, INTERRUPT_COALESCING_TIME_MASK)) >>>
    0
  );
}

// ---------------------------------------------------------------------------
// Asynchronous Event Request completion DW0

export const AER_TYPE_SHIFT = 0;
export const AER_TYPE_MASK = 0x7;
export const AER_INFO_SHIFT = 8;
export const AER_INFO_MASK = 0xff;
/** The log page to read (which also clears the event unless RAE is set). */
export const AER_LOG_PAGE_SHIFT = 16;
export const AER_LOG_PAGE_MASK = 0xff;

export const AsyncEventType = {
  ERROR: 0x0,
  SMART_HEALTH: 0x1,
  NOTICE: 0x2,
  IO_COMMAND_SET: 0x6,
  VENDOR_SPECIFIC: 0x7,
} as const;

/** Event information values when the type is NOTICE. */
export const AsyncEventNotice = {
  NAMESPACE_ATTRIBUTE_CHANGED: 0x0,
  FIRMWARE_ACTIVATION_STARTING: 0x1,
  TELEMETRY_LOG_CHANGED: 0x2,
  ANA_CHANGE: 0x3,
} as const;

export interface AerCompletion {
  type: number;
  info: number;
  logPage: number;
}

export function decodeAerDw0(dw0: number): AerCompletion {
  return {
    type: getBits(dw0, AER_TYPE_SHIFT, AER_TYPE_MASK),
    info: getBits(dw0, AER_INFO_SHIFT, AER_INFO_MASK),
    logPage: getBits(dw0, AER_LOG_PAGE_SHIFT, AER_LOG_PAGE_MASK),
  };
}

export function encodeAerDw0(f: AerCompletion): number {
  return (
    (putBits(f.type, AER_TYPE_SHIFT, AER_TYPE_MASK) |
      putBits(f.info, AER_INFO_SHIFT, AER_INFO_MASK) |
      putBits(f.logPage, AER_LOG_PAGE_SHIFT, AER_LOG_PAGE_MASK)) >>>
    0
  );
}

// ---------------------------------------------------------------------------
// Format NVM CDW10

export const FORMAT_NVM_CDW10_LBAF_SHIFT = 0;
export const FORMAT_NVM_CDW10_LBAF_MASK = 0xf;
export const FORMAT_NVM_CDW10_MSET_SHIFT = 4;
export const FORMAT_NVM_CDW10_MSET_MASK = 0x1;
export const FORMAT_NVM_CDW10_PI_SHIFT = 5;
export const FORMAT_NVM_CDW10_PI_MASK = 0x7;
export const FORMAT_NVM_CDW10_PIL_SHIFT = 8;
export const FORMAT_NVM_CDW10_PIL_MASK = 0x1;
/** Secure erase: 0 none, 1 user data erase, 2 cryptographic erase. */
export const FORMAT_NVM_CDW10_SES_SHIFT = 9;
export const FORMAT_NVM_CDW10_SES_MASK = 0x7;

/** Format NVM's Secure Erase Settings. */
export const FormatSes = {
  NONE: 0,
  USER_DATA_ERASE: 1,
  CRYPTOGRAPHIC_ERASE: 2,
} as const;

export interface FormatNvmFields {
  cid: number;
  nsid: number;
  /** Index into the namespace's LBA format list. */
  lbaf: number;
  ses?: number;
}

export function formatNvmSqe(f: FormatNvmFields): SqeFields {
  return {
    opc: OPC_FORMAT_NVM,
    cid: f.cid,
    nsid: f.nsid,
    cdw10: putBits(f.lbaf, FORMAT_NVM_CDW10_LBAF_SHIFT, FORMAT_NVM_CDW10_LBAF_MASK) | putBits(f.ses ?? FormatSes.NONE, FORMAT_NVM_CDW10_SES_SHIFT, FORMAT_NVM_CDW10_SES_MASK),
  };
}

// ---------------------------------------------------------------------------
// Commands Supported and Effects log (LID 05h), 4096 bytes: one 32-bit entry
// per admin opcode (ACS), then one per I/O opcode (IOCS).

export const EFFECTS_LOG_SIZE_BYTES = 4096;
export const EFFECTS_LOG_ACS_OFFSET = 0;
export const EFFECTS_LOG_IOCS_OFFSET = 1024;

/** Bits of a Commands Supported and Effects entry. */
export const CommandEffect = {
  CSUPP: 0x1,
  LBCC: 0x2,
  NCC: 0x4,
  NIC: 0x8,
  CCC: 0x10,
} as const;

/** Whether the log says admin command `opcode` is supported. */
export function adminCommandSupported(log: DataView, opcode: number): boolean {
  return (log.getUint32(EFFECTS_LOG_ACS_OFFSET + opcode * 4, true) & CommandEffect.CSUPP) !== 0;
}
