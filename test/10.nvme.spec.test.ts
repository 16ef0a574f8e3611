// The NVMe specification is declared twice, in TypeScript (libstorage/nvme)
// and in C++ (addon/include/offpath/nvme_spec.h). This file proves the two
// agree: every number on one side exists on the other with the same value, and
// both encode the hand-checked byte vectors of test/vectors/nvme.json.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../libstorage/native.js';
import * as spec from '../libstorage/nvme/spec.js';

type Fields = Record<string, unknown>;
interface Vector {
  name: string;
  kind: string;
  fields: Fields;
  hex: string;
  sizeBytes?: number;
}

const vectors: Vector[] = JSON.parse(readFileSync(new URL('./vectors/nvme.json', import.meta.url), 'utf8')).vectors;
const specEncode = native.specEncode as (kind: string, fields: Fields) => Buffer;
const specEncodeKinds = native.specEncodeKinds as () => string[];

// ---------------------------------------------------------------------------
// Names: the same rules as Dotted()/ConstantKey() in addon/src/spec_layout.cc.

function dotted(name: string): string {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    if (c === '_') {
      out += '.';
      continue;
    }
    if (/[A-Z]/.test(c) && i > 0 && /[a-z]/.test(name[i - 1]!)) out += '.';
    out += c.toLowerCase();
  }
  return out;
}

const constantKey = (name: string): string => dotted(name.replace(/_(OFFSET|BYTES)$/, ''));

function isNumberTable(value: unknown): value is Record<string, number> {
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.getPrototypeOf(value) === Object.prototype &&
    Object.values(value).length > 0 &&
    Object.values(value).every((v) => typeof v === 'number')
  );
}

/** Every number the TS modules export, keyed like specLayout. */
function tsLayout(): Map<string, { value: number; from: string }> {
  const out = new Map<string, { value: number; from: string }>();
  const add = (key: string, value: number, from: string): void => {
    const clash = out.get(key);
    if (clash) assert.unreachable(`${from} and ${clash.from} both map to "${key}"`);
    out.set(key, { value, from });
  };
  for (const [name, value] of Object.entries(spec)) {
    if (typeof value === 'number') {
      add(constantKey(name), value, name);
    } else if (isNumberTable(value) && /^[A-Z][a-z]/.test(name)) {
      for (const [member, v] of Object.entries(value)) add(`${dotted(name)}.${dotted(member)}`, v, `${name}.${member}`);
    } else if (typeof value !== 'function' && !(value instanceof Map)) {
      // Anything else would escape the comparison below, so it is not allowed.
      assert.unreachable(`export ${name} is neither a number, a PascalCase number table, a Map nor a function`);
    }
  }
  return out;
}

test('every TS constant is in the addon layout with the same value', () => {
  const layout = native.specLayout;
  const ts = tsLayout();
  const problems: string[] = [];
  for (const [key, { value, from }] of ts) {
    if (!(key in layout)) problems.push(`${from} ("${key}") is missing from specLayout`);
    else if (layout[key] !== value) problems.push(`${from} ("${key}") is ${value} in TS but ${layout[key]} in C++`);
  }
  assert.is(problems.join('\n'), '');
  assert.ok(ts.size > 600, `only ${ts.size} constants found`);
});

test('every addon layout entry is declared in TS', () => {
  const ts = tsLayout();
  const missing = Object.keys(native.specLayout).filter((key) => !ts.has(key));
  assert.equal(missing, []);
});

test('layout spot checks against the specification', () => {
  const layout = native.specLayout;
  assert.is(layout['sqe.size'], 64);
  assert.is(layout['sqe.cdw10'], 40);
  assert.is(layout['cqe.status'], 14);
  assert.is(layout['reg.cc'], 0x14);
  assert.is(layout['doorbell.base'], 0x1000);
  assert.is(layout['idctrl.mdts'], 77);
  assert.is(layout['idctrl.subnqn'], 768);
  assert.is(layout['idns.lbaf'], 128);
  assert.is(layout['seclist.entry.size'], 32);
  assert.is(layout['dsm.range.slba'], 8);
  assert.is(layout['smart.log.num.error.log.entries'], 176);
  assert.is(layout['generic.status.lba.out.of.range'], 0x80);
  assert.is(layout['admin.opcode.virtualization.management'], 0x1c);
});

// ---------------------------------------------------------------------------
// Vectors

const big = (v: unknown): bigint => {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' || typeof v === 'string') return BigInt(v);
  if (typeof v === 'boolean') return v ? 1n : 0n;
  return 0n;
};
const num = (v: unknown): number => {
  const n = big(v);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`${String(v)} is too large for a number`);
  return Number(n);
};
const opt = (f: Fields, key: string): number | undefined => (f[key] === undefined ? undefined : num(f[key]));
const flag = (f: Fields, key: string): boolean => f[key] === true || f[key] === 1;

function hexOf(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function bytesOfHex(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function sized(bytes: number): { bytes: Uint8Array; view: DataView } {
  const out = new Uint8Array(bytes);
  return { bytes: out, view: spec.viewOf(out) };
}

function le32(value: number): Uint8Array {
  const { bytes, view } = sized(4);
  view.setUint32(0, value >>> 0, true);
  return bytes;
}

function le32Pair(a: number, b: number): Uint8Array {
  const { bytes, view } = sized(8);
  view.setUint32(0, a, true);
  view.setUint32(4, b, true);
  return bytes;
}

function sgl(f: Fields): spec.SglFields {
  return { address: big(f.address), length: num(f.length), type: num(f.type), subtype: num(f.subtype ?? 0) };
}

function secondaryEntry(f: Fields): spec.SecondaryControllerEntryInput {
  return {
    scid: num(f.scid),
    pcid: num(f.pcid),
    online: flag(f, 'online'),
    vfn: num(f.vfn),
    nvq: num(f.nvq),
    nvi: num(f.nvi),
  };
}

/** The TypeScript half: one encoder per vector kind, each using the spec module's own helpers. */
const tsEncoders: Record<string, (f: Fields) => Uint8Array> = {
  sqe: (f) => {
    const fields: spec.SqeFields = { opc: num(f.opc), cid: num(f.cid) };
    for (const key of ['fuse', 'psdt', 'nsid', 'cdw2', 'cdw3', 'cdw10', 'cdw11', 'cdw12', 'cdw13', 'cdw14', 'cdw15'] as const) {
      const value = opt(f, key);
      if (value !== undefined) fields[key] = value;
    }
    if (f.mptr !== undefined) fields.mptr = big(f.mptr);
    if (f.sgl1 !== undefined) fields.sgl1 = sgl(f.sgl1 as Fields);
    if (f.prp1 !== undefined) fields.prp1 = big(f.prp1);
    if (f.prp2 !== undefined) fields.prp2 = big(f.prp2);
    return spec.encodeSqe(fields);
  },
  rw: (f) =>
    spec.encodeSqe(
      spec.rwSqe({
        opc: num(f.opc),
        cid: num(f.cid),
        nsid: num(f.nsid),
        prp1: big(f.prp1),
        prp2: big(f.prp2),
        slba: big(f.slba),
        nlb: num(f.nlb),
        fua: flag(f, 'fua'),
        lr: flag(f, 'lr'),
        deac: flag(f, 'deac'),
        prinfo: opt(f, 'prinfo') ?? 0,
      }),
    ),
  create_io_sq: (f) =>
    spec.encodeSqe(
      spec.createIoSqSqe({
        cid: num(f.cid),
        prp1: big(f.prp1),
        qid: num(f.qid),
        qsize: num(f.qsize),
        pc: flag(f, 'pc'),
        qprio: opt(f, 'qprio') ?? 0,
        cqid: num(f.cqid),
      }),
    ),
  create_io_cq: (f) =>
    spec.encodeSqe(
      spec.createIoCqSqe({
        cid: num(f.cid),
        prp1: big(f.prp1),
        qid: num(f.qid),
        qsize: num(f.qsize),
        pc: flag(f, 'pc'),
        ien: flag(f, 'ien'),
        iv: opt(f, 'iv') ?? 0,
      }),
    ),
  delete_io_queue: (f) => spec.encodeSqe(spec.deleteIoQueueSqe({ opc: num(f.opc), cid: num(f.cid), qid: num(f.qid) })),
  abort: (f) => spec.encodeSqe(spec.abortSqe({ cid: num(f.cid), sqid: num(f.sqid), abortCid: num(f.abortCid) })),
  identify: (f) =>
    spec.encodeSqe(
      spec.identifySqe({
        cid: num(f.cid),
        nsid: opt(f, 'nsid') ?? 0,
        prp1: big(f.prp1),
        cns: num(f.cns),
        cntid: opt(f, 'cntid') ?? 0,
        csi: opt(f, 'csi') ?? 0,
      }),
    ),
  get_log_page: (f) =>
    spec.encodeSqe(
      spec.getLogPageSqe({
        cid: num(f.cid),
        nsid: opt(f, 'nsid') ?? 0,
        prp1: big(f.prp1),
        lid: num(f.lid),
        lsp: opt(f, 'lsp') ?? 0,
        rae: flag(f, 'rae'),
        numd: num(f.numd),
        lsi: opt(f, 'lsi') ?? 0,
        offset: big(f.offset),
      }),
    ),
  set_features: (f) =>
    spec.encodeSqe(spec.setFeaturesSqe({ cid: num(f.cid), fid: num(f.fid), sv: flag(f, 'sv'), cdw11: num(f.cdw11) })),
  get_features: (f) => spec.encodeSqe(spec.getFeaturesSqe({ cid: num(f.cid), fid: num(f.fid), sel: num(f.sel) })),
  dsm: (f) =>
    spec.encodeSqe(
      spec.dsmSqe({
        cid: num(f.cid),
        nsid: num(f.nsid),
        prp1: big(f.prp1),
        nr: num(f.nr),
        idr: flag(f, 'idr'),
        idw: flag(f, 'idw'),
        ad: flag(f, 'ad'),
      }),
    ),
  ns_management: (f) =>
    spec.encodeSqe(
      spec.nsManagementSqe({ cid: num(f.cid), sel: num(f.sel), nsid: opt(f, 'nsid') ?? 0, prp1: big(f.prp1) }),
    ),
  ns_attachment: (f) =>
    spec.encodeSqe(
      spec.nsAttachmentSqe({ cid: num(f.cid), sel: num(f.sel), nsid: opt(f, 'nsid') ?? 0, prp1: big(f.prp1) }),
    ),
  virt_mgmt: (f) =>
    spec.encodeSqe(
      spec.virtMgmtSqe({
        cid: num(f.cid),
        act: num(f.act),
        rt: opt(f, 'rt') ?? 0,
        cntlid: num(f.cntlid),
        nr: opt(f, 'nr') ?? 0,
      }),
    ),
  cqe: (f) =>
    spec.encodeCqe({
      dw0: num(f.dw0),
      dw1: num(f.dw1),
      sqhd: num(f.sqhd),
      sqid: num(f.sqid),
      cid: num(f.cid),
      status: spec.encodeStatusField({
        phase: num(f.phase),
        sc: num(f.sc),
        sct: num(f.sct),
        crd: num(f.crd),
        more: flag(f, 'more'),
        dnr: flag(f, 'dnr'),
      }),
    }),
  sgl: (f) => spec.encodeSglDescriptor(sgl(f)),
  dsm_range: (f) => spec.encodeDsmRange({ attributes: num(f.attributes), nlb: num(f.nlb), slba: big(f.slba) }),
  seclist_entry: (f) => {
    const { bytes, view } = sized(spec.SECLIST_ENTRY_SIZE_BYTES);
    spec.writeSecondaryControllerEntry(view, 0, secondaryEntry(f));
    return bytes;
  },
  seclist: (f) => {
    const { bytes, view } = sized(spec.SECLIST_SIZE_BYTES);
    spec.writeSecondaryControllerList(view, 0, (f.entries as Fields[]).map(secondaryEntry));
    return bytes;
  },
  ctrl_list: (f) => {
    const { bytes, view } = sized(spec.CTRL_LIST_SIZE_BYTES);
    spec.writeControllerList(view, 0, (f.ids as unknown[]).map(num));
    return bytes;
  },
  ns_id_desc: (f) => {
    const nid = bytesOfHex(String(f.nid));
    const { bytes, view } = sized(spec.NS_ID_DESC_HEADER_SIZE_BYTES + nid.length);
    const end = spec.writeNsIdDescriptor(view, 0, num(f.nidt), nid);
    assert.is(end, bytes.length);
    return bytes;
  },
  ns_create_data: (f) =>
    spec.encodeNamespaceCreateData({
      nsze: big(f.nsze),
      ncap: big(f.ncap),
      flbas: num(f.flbas),
      dps: num(f.dps),
      nmic: flag(f, 'nmic'),
    }),
  lbaf: (f) => le32(spec.encodeLbaf({ ms: num(f.ms), lbads: num(f.lbads), rp: num(f.rp) })),
  cap: (f) => {
    const { bytes, view } = sized(8);
    view.setBigUint64(
      0,
      spec.encodeCap({
        mqes: num(f.mqes),
        cqr: flag(f, 'cqr'),
        ams: num(f.ams),
        to: num(f.to),
        dstrd: num(f.dstrd),
        nssrs: flag(f, 'nssrs'),
        css: num(f.css),
        bps: flag(f, 'bps'),
        mpsmin: num(f.mpsmin),
        mpsmax: num(f.mpsmax),
        pmrs: flag(f, 'pmrs'),
        cmbs: flag(f, 'cmbs'),
      }),
      true,
    );
    return bytes;
  },
  cc: (f) =>
    le32(
      spec.encodeCc({
        en: flag(f, 'en'),
        css: num(f.css),
        mps: num(f.mps),
        ams: num(f.ams),
        shn: num(f.shn),
        iosqes: num(f.iosqes),
        iocqes: num(f.iocqes),
      }),
    ),
  csts: (f) =>
    le32(
      spec.encodeCsts({
        rdy: flag(f, 'rdy'),
        cfs: flag(f, 'cfs'),
        shst: num(f.shst),
        nssro: flag(f, 'nssro'),
        pp: flag(f, 'pp'),
      }),
    ),
  aqa: (f) => le32(spec.encodeAqa({ asqs: num(f.asqs), acqs: num(f.acqs) })),
  vs: (f) => le32(spec.encodeVs({ major: num(f.major), minor: num(f.minor), tertiary: num(f.tertiary) })),
  aer_dw0: (f) => le32(spec.encodeAerDw0({ type: num(f.type), info: num(f.info), logPage: num(f.logPage) })),
  number_of_queues: (f) => le32(spec.numberOfQueuesDw({ nsqr: num(f.nsqr), ncqr: num(f.ncqr) })),
  interrupt_coalescing: (f) => le32(spec.interruptCoalescingDw({ thr: num(f.thr), timeUnits: num(f.timeUnits) })),
  error_log_entry: (f) => {
    const { bytes, view } = sized(spec.ERROR_LOG_ENTRY_SIZE_BYTES);
    spec.writeErrorLogEntry(view, 0, {
      errorCount: big(f.errorCount),
      sqid: num(f.sqid),
      cid: num(f.cid),
      status: num(f.status),
      paramErrorLocation: num(f.paramErrorLocation),
      lba: big(f.lba),
      nsid: num(f.nsid),
    });
    return bytes;
  },
  doorbell: (f) =>
    le32Pair(
      spec.sqTailDoorbellOffset(num(f.qid), num(f.dstrd)),
      spec.cqHeadDoorbellOffset(num(f.qid), num(f.dstrd)),
    ),
  prp: (f) =>
    le32Pair(
      spec.prpEntriesNeeded(num(f.offset), num(f.length), num(f.pageSize)),
      spec.prpListPagesNeeded(num(f.offset), num(f.length), num(f.pageSize)),
    ),
};

/** Compares encoded bytes with a vector: hex prefix, then zeros up to sizeBytes. */
function checkBytes(vector: Vector, actual: Uint8Array, side: string): void {
  const expected = bytesOfHex(vector.hex);
  const size = vector.sizeBytes ?? expected.length;
  assert.is(actual.length, size, `${side} size of "${vector.name}"`);
  assert.is(hexOf(actual.subarray(0, expected.length)), hexOf(expected), `${side} bytes of "${vector.name}"`);
  const stray = actual.subarray(expected.length).findIndex((b) => b !== 0);
  assert.is(stray, -1, `${side} left a non-zero byte at ${expected.length + stray} in "${vector.name}"`);
}

test('the vectors file is well formed', () => {
  assert.ok(vectors.length >= 40);
  const names = new Set<string>();
  for (const v of vectors) {
    assert.not.ok(names.has(v.name), `duplicate vector name "${v.name}"`);
    names.add(v.name);
    assert.ok(/^[0-9a-f\s]+$/.test(v.hex) && v.hex.replace(/\s+/g, '').length % 2 === 0, `hex of "${v.name}"`);
  }
});

test('TS encoders produce the vector bytes', () => {
  for (const vector of vectors) {
    const encode = tsEncoders[vector.kind];
    if (!encode) throw new Error(`no TS encoder for kind "${vector.kind}"`);
    checkBytes(vector, encode(vector.fields), 'TS');
  }
});

test('C++ structs (specEncode) produce the vector bytes', () => {
  for (const vector of vectors) checkBytes(vector, new Uint8Array(specEncode(vector.kind, vector.fields)), 'C++');
});

test('every encoder kind has vectors on both sides', () => {
  const nativeKinds = specEncodeKinds().filter((kind) => kind !== 'status_name').sort();
  assert.equal(Object.keys(tsEncoders).sort(), nativeKinds);
  const covered = new Set(vectors.map((v) => v.kind));
  assert.equal(
    nativeKinds.filter((kind) => !covered.has(kind)),
    [],
  );
  assert.throws(() => specEncode('no_such_kind', {}), /unknown kind/);
});

// ---------------------------------------------------------------------------
// Decoders

const vectorsOf = (kind: string): Vector[] => vectors.filter((v) => v.kind === kind);
const viewOfHex = (hex: string): DataView => spec.viewOf(bytesOfHex(hex));

test('decoders read the vectors back', () => {
  for (const v of vectorsOf('cqe')) {
    const cqe = spec.decodeCqe(bytesOfHex(v.hex));
    const f = v.fields;
    assert.equal(
      [cqe.dw0, cqe.dw1, cqe.sqhd, cqe.sqid, cqe.cid, cqe.phase, cqe.sct, cqe.sc, cqe.crd, cqe.more, cqe.dnr],
      [num(f.dw0), num(f.dw1), num(f.sqhd), num(f.sqid), num(f.cid), num(f.phase), num(f.sct), num(f.sc), num(f.crd), flag(f, 'more'), flag(f, 'dnr')],
      v.name,
    );
  }
  for (const v of vectorsOf('rw')) {
    const sqe = spec.decodeSqe(bytesOfHex(v.hex));
    assert.is(sqe.opc, num(v.fields.opc));
    assert.is(sqe.cid, num(v.fields.cid));
    assert.is(BigInt(sqe.cdw10) | (BigInt(sqe.cdw11) << 32n), big(v.fields.slba));
    assert.is(spec.getBits(sqe.cdw12, spec.RW_CDW12_NLB_SHIFT, spec.RW_CDW12_NLB_MASK), num(v.fields.nlb));
    assert.is(spec.getBits(sqe.cdw12, spec.RW_CDW12_FUA_SHIFT, spec.RW_CDW12_FUA_MASK) === 1, flag(v.fields, 'fua'));
  }
  const [fused] = vectorsOf('sqe');
  if (fused) {
    const sqe = spec.decodeSqe(bytesOfHex(fused.hex));
    assert.equal([sqe.fuse, sqe.psdt, sqe.cid, sqe.mptr], [spec.Fuse.FIRST, spec.Psdt.SGL_MPTR_CONTIGUOUS, 0xbeef, 0xbadf000n]);
    const sgl1 = spec.readSglDescriptor(viewOfHex(fused.hex), spec.SQE_SGL1_OFFSET);
    assert.equal(sgl1, { address: 0x200000040n, length: 32, type: spec.SglType.LAST_SEGMENT, subtype: spec.SglSubtype.ADDRESS });
  }
  for (const v of vectorsOf('sgl')) {
    const d = spec.readSglDescriptor(viewOfHex(v.hex), 0);
    assert.equal([d.address, d.length, d.type, d.subtype], [big(v.fields.address), num(v.fields.length), num(v.fields.type), num(v.fields.subtype)]);
  }
  for (const v of vectorsOf('dsm_range')) {
    assert.equal(spec.readDsmRange(viewOfHex(v.hex), 0), {
      attributes: num(v.fields.attributes),
      nlb: num(v.fields.nlb),
      slba: big(v.fields.slba),
    });
  }
  for (const v of vectorsOf('lbaf')) {
    assert.equal(spec.decodeLbaf(viewOfHex(v.hex).getUint32(0, true)), { ms: num(v.fields.ms), lbads: num(v.fields.lbads), rp: num(v.fields.rp) });
  }
  for (const v of vectorsOf('aer_dw0')) {
    assert.equal(spec.decodeAerDw0(viewOfHex(v.hex).getUint32(0, true)), { type: num(v.fields.type), info: num(v.fields.info), logPage: num(v.fields.logPage) });
  }
  for (const v of vectorsOf('vs')) {
    assert.equal(spec.decodeVs(viewOfHex(v.hex).getUint32(0, true)), { major: num(v.fields.major), minor: num(v.fields.minor), tertiary: num(v.fields.tertiary) });
  }
  for (const v of vectorsOf('aqa')) {
    assert.equal(spec.decodeAqa(viewOfHex(v.hex).getUint32(0, true)), { asqs: num(v.fields.asqs), acqs: num(v.fields.acqs) });
  }
  for (const v of vectorsOf('csts')) {
    const f = v.fields;
    assert.equal(spec.decodeCsts(viewOfHex(v.hex).getUint32(0, true)), {
      rdy: flag(f, 'rdy'),
      cfs: flag(f, 'cfs'),
      shst: num(f.shst),
      nssro: flag(f, 'nssro'),
      pp: flag(f, 'pp'),
    });
  }
  for (const v of vectorsOf('cc')) {
    const f = v.fields;
    assert.equal(spec.decodeCc(viewOfHex(v.hex).getUint32(0, true)), {
      en: flag(f, 'en'),
      css: num(f.css),
      mps: num(f.mps),
      ams: num(f.ams),
      shn: num(f.shn),
      iosqes: num(f.iosqes),
      iocqes: num(f.iocqes),
    });
  }
  for (const v of vectorsOf('seclist')) {
    const entries = spec.readSecondaryControllerList(viewOfHex(v.hex + '00'.repeat(v.sizeBytes! - bytesOfHex(v.hex).length)));
    assert.equal(entries, (v.fields.entries as Fields[]).map((e) => ({ ...secondaryEntry(e), online: flag(e, 'online') })));
  }
  for (const v of vectorsOf('ctrl_list')) {
    assert.equal(spec.readControllerList(viewOfHex(v.hex)), (v.fields.ids as unknown[]).map(num));
  }
  const descriptors = vectorsOf('ns_id_desc').map((v) => v.hex).join('');
  assert.equal(
    spec.readNsIdDescriptors(viewOfHex(descriptors)).map((d) => [d.nidt, hexOf(d.nid)]),
    vectorsOf('ns_id_desc').map((v) => [num(v.fields.nidt), String(v.fields.nid)]),
  );
  for (const v of vectorsOf('error_log_entry')) {
    const e = spec.readErrorLogEntry(viewOfHex(v.hex + '00'.repeat(32)), 0);
    assert.equal([e.errorCount, e.sqid, e.cid, e.status, e.paramErrorLocation, e.lba, e.nsid], [18n, 1, 0x1234, 0x8101, 40, 0x123456789an, 1]);
    assert.is(spec.statusFieldName(e.status), 'LBA_OUT_OF_RANGE');
  }
});

test('CAP decodes field by field', () => {
  const [v] = vectorsOf('cap');
  if (!v) return assert.unreachable('no CAP vector');
  const raw = viewOfHex(v.hex).getBigUint64(0, true);
  assert.is(raw, 0x02400832_280303ffn);
  const cap = spec.decodeCap(raw);
  assert.equal(cap, {
    mqes: 1023,
    cqr: true,
    ams: spec.CapAms.WEIGHTED_ROUND_ROBIN_URGENT,
    to: 40,
    dstrd: 2,
    nssrs: true,
    css: spec.CapCss.NVM | spec.CapCss.IO_COMMAND_SETS,
    bps: false,
    mpsmin: 0,
    mpsmax: 4,
    pmrs: false,
    cmbs: true,
  });
  assert.is(spec.capTimeoutMs(cap), 20_000);
  assert.is(spec.doorbellStrideBytes(cap.dstrd), 16);
  assert.is(spec.memoryPageSizeBytes(cap.mpsmin), 4096);
  assert.is(spec.memoryPageSizeBytes(cap.mpsmax), 65536);
  assert.is(spec.encodeCap(cap), raw);
});

test('doorbell offsets with DSTRD 0 and 2', () => {
  const cases: Array<[qid: number, dstrd: number, sq: number, cq: number]> = [
    [0, 0, 0x1000, 0x1004],
    [1, 0, 0x1008, 0x100c],
    [5, 0, 0x1028, 0x102c],
    [0, 2, 0x1000, 0x1010],
    [1, 2, 0x1020, 0x1030],
    [5, 2, 0x10a0, 0x10b0],
  ];
  for (const [qid, dstrd, sq, cq] of cases) {
    assert.is(spec.sqTailDoorbellOffset(qid, dstrd), sq, `SQ ${qid} tail, DSTRD ${dstrd}`);
    assert.is(spec.cqHeadDoorbellOffset(qid, dstrd), cq, `CQ ${qid} head, DSTRD ${dstrd}`);
    assert.is(hexOf(new Uint8Array(specEncode('doorbell', { qid, dstrd }))), hexOf(le32Pair(sq, cq)), 'C++ agrees');
  }
});

test('status fields and names', () => {
  const lba = spec.encodeStatusField({ phase: 1, sct: spec.StatusCodeType.GENERIC, sc: spec.GenericStatus.LBA_OUT_OF_RANGE, dnr: true });
  assert.is(lba, 0x8101);
  assert.equal(spec.decodeStatusField(lba), { phase: 1, sc: 0x80, sct: 0, crd: 0, more: false, dnr: true });
  assert.equal(spec.decodeStatusField(0x7ffe), { phase: 0, sc: 0xff, sct: 7, crd: 3, more: true, dnr: false });
  assert.ok(spec.statusIsSuccess(0x0001) && spec.statusIsSuccess(0xf000));
  assert.not.ok(spec.statusIsSuccess(0x0002) || spec.statusIsSuccess(0x0200));

  assert.is(spec.statusName(0, 0x80), 'LBA_OUT_OF_RANGE');
  assert.is(spec.statusName(1, 0x01), 'INVALID_QUEUE_IDENTIFIER');
  assert.is(spec.statusName(1, 0x82), 'ATTEMPTED_WRITE_TO_READ_ONLY_RANGE');
  assert.is(spec.statusName(2, 0x87), 'DEALLOCATED_OR_UNWRITTEN_BLOCK');
  assert.is(spec.statusName(3, 0x71), 'COMMAND_ABORTED_BY_HOST');
  assert.is(spec.statusName(1, 0x42), 'SCT1_SC0x42');
  assert.is(spec.statusName(7, 0x05), 'SCT7_SC0x05');
  assert.is(spec.statusName(0, 0x17), 'SCT0_SC0x17');
  assert.is(spec.statusFieldName(0x0203), 'INVALID_QUEUE_IDENTIFIER');

  // Every named code, and a few unnamed ones, read the same from C++.
  const tables: Array<[number, Record<string, number>]> = [
    [spec.StatusCodeType.GENERIC, spec.GenericStatus],
    [spec.StatusCodeType.COMMAND_SPECIFIC, spec.CommandSpecificStatus],
    [spec.StatusCodeType.MEDIA_DATA_INTEGRITY, spec.MediaStatus],
    [spec.StatusCodeType.PATH, spec.PathStatus],
  ];
  const probes: Array<[number, number]> = [[0, 0x17], [1, 0x42], [2, 0x00], [7, 0x01], [4, 0x00]];
  for (const [sct, table] of tables) {
    for (const [name, sc] of Object.entries(table)) {
      assert.is(spec.statusName(sct, sc), name);
      probes.push([sct, sc]);
    }
  }
  for (const [sct, sc] of probes) {
    const cxx = specEncode('status_name', { sct, sc }).toString('latin1') || `SCT${sct}_SC0x${sc.toString(16).padStart(2, '0')}`;
    assert.is(cxx, spec.statusName(sct, sc), `SCT ${sct} SC 0x${sc.toString(16)}`);
  }
});

test('opcode names', () => {
  assert.is(spec.adminOpcodeName(spec.AdminOpcode.VIRTUALIZATION_MANAGEMENT), 'VIRTUALIZATION_MANAGEMENT');
  assert.is(spec.adminOpcodeName(0x03), 'ADMIN_OPC_0x03');
  assert.is(spec.adminOpcodeName(0xc5), 'ADMIN_VENDOR_0xc5');
  assert.is(spec.nvmOpcodeName(spec.NvmOpcode.WRITE_ZEROES), 'WRITE_ZEROES');
  assert.is(spec.nvmOpcodeName(0x81), 'NVM_VENDOR_0x81');
  assert.is(spec.ADMIN_OPCODE_NAMES.size, Object.keys(spec.AdminOpcode).length);
  // Opcode bits 1:0 tell the data direction.
  const direction = (opc: number): number => spec.getBits(opc, spec.OPC_DATA_TRANSFER_SHIFT, spec.OPC_DATA_TRANSFER_MASK);
  assert.is(direction(spec.NvmOpcode.WRITE), spec.DataTransfer.HOST_TO_CONTROLLER);
  assert.is(direction(spec.NvmOpcode.READ), spec.DataTransfer.CONTROLLER_TO_HOST);
  assert.is(direction(spec.AdminOpcode.IDENTIFY), spec.DataTransfer.CONTROLLER_TO_HOST);
  assert.is(direction(spec.AdminOpcode.NAMESPACE_ATTACHMENT), spec.DataTransfer.HOST_TO_CONTROLLER);
});

test('PRP helpers', () => {
  const page = spec.memoryPageSizeBytes(0);
  assert.is(page, 4096);
  assert.is(spec.prpEntriesPerPage(page), 512);
  assert.ok(spec.isPrp1Aligned(0x1004) && !spec.isPrp1Aligned(0x1002));
  assert.ok(spec.isPrpPageAligned(0x3000, page) && !spec.isPrpPageAligned(0x3200, page));
  assert.is(spec.prpEntriesNeeded(4092, 8, page), 2);
  // p chained list pages hold p * 511 + 1 entries; PRP1 takes one more.
  assert.is(spec.prpListPagesNeeded(0, (511 * 511 + 2) * page, page), 511);
  assert.is(spec.prpListPagesNeeded(0, (511 * 511 + 3) * page, page), 512);
  for (const entries of [511 * 511 + 2, 511 * 511 + 3]) {
    const counts = specEncode('prp', { offset: 0, length: entries * page, pageSize: page });
    assert.equal([counts.readUInt32LE(0), counts.readUInt32LE(4)], [entries, spec.prpListPagesNeeded(0, entries * page, page)]);
  }
  assert.throws(() => spec.prpEntriesNeeded(2, 512, page), /dword/);
  assert.throws(() => spec.prpEntriesNeeded(page, 512, page), /outside/);
  assert.throws(() => spec.prpEntriesNeeded(0, 512, 512), /page size/);
});

test('writeSqe clears what a reused slot held before', () => {
  const ring = new Uint8Array(spec.SQE_SIZE_BYTES * 2).fill(0xa5);
  const view = spec.viewOf(ring);
  spec.writeSqe(view, spec.SQE_SIZE_BYTES, spec.identifySqe({ cid: 9, prp1: 0x2000, cns: spec.Cns.CTRL }));
  assert.ok(ring.subarray(0, spec.SQE_SIZE_BYTES).every((b) => b === 0xa5), 'the neighbouring slot is untouched');
  const sqe = spec.readSqe(view, spec.SQE_SIZE_BYTES);
  assert.equal(
    [sqe.opc, sqe.fuse, sqe.psdt, sqe.cid, sqe.nsid, sqe.mptr, sqe.prp1, sqe.prp2, sqe.cdw10, sqe.cdw11, sqe.cdw15],
    [spec.AdminOpcode.IDENTIFY, 0, 0, 9, 0, 0n, 0x2000n, 0n, spec.Cns.CTRL, 0, 0],
  );
  assert.throws(() => spec.writeU64(view, 0, 2 ** 53), /safe integer/);
});

test('identify readers', () => {
  const { view } = sized(spec.IDNS_SIZE_BYTES);
  spec.writeNamespaceCreateData(view, 0, { nsze: 1n << 33n, ncap: 1000, flbas: 1 });
  view.setUint8(spec.IDNS_NLBAF_OFFSET, 1);
  view.setUint32(spec.IDNS_LBAF_OFFSET, spec.encodeLbaf({ ms: 0, lbads: 9, rp: 0 }), true);
  view.setUint32(spec.IDNS_LBAF_OFFSET + spec.LBAF_SIZE_BYTES, spec.encodeLbaf({ ms: 8, lbads: 12, rp: 1 }), true);
  const ns = spec.readIdentifyNamespace(view);
  assert.equal([ns.nsze, ns.ncap, ns.nlbaf, ns.lbafs.length, ns.blockSizeBytes, ns.lbaf.ms], [1n << 33n, 1000n, 1, 2, 4096, 8]);

  const ctrl = sized(spec.IDCTRL_SIZE_BYTES).view;
  spec.writeAsciiField(ctrl, spec.IDCTRL_SN_OFFSET, spec.IDCTRL_SN_SIZE_BYTES, 'OFFPATH-0001');
  assert.is(ctrl.getUint8(spec.IDCTRL_SN_OFFSET + spec.IDCTRL_SN_SIZE_BYTES - 1), 0x20, 'space padded');
  assert.is(spec.readAsciiField(ctrl, spec.IDCTRL_SN_OFFSET, spec.IDCTRL_SN_SIZE_BYTES), 'OFFPATH-0001');
  assert.is(spec.maxTransferBytes(5, 4096), 128 * 1024);
  assert.is(spec.maxTransferBytes(0, 4096), Infinity);
  assert.is(spec.logPageNumd(spec.SMART_LOG_SIZE_BYTES), 127);

  const list = sized(spec.NS_LIST_SIZE_BYTES).view;
  [1, 2, 7].forEach((nsid, i) => list.setUint32(4 * i, nsid, true));
  assert.equal(spec.readNamespaceList(list), [1, 2, 7]);

  const smart = sized(spec.SMART_LOG_SIZE_BYTES).view;
  smart.setUint16(spec.SMART_LOG_COMPOSITE_TEMPERATURE_OFFSET, 310, true);
  smart.setBigUint64(spec.SMART_LOG_DATA_UNITS_WRITTEN_OFFSET + 8, 1n, true);
  const health = spec.readSmartHealthLog(smart);
  assert.is(health.compositeTemperatureKelvin, 310);
  assert.is(health.dataUnitsWritten, 1n << 64n);
});

test.run();
