// Bit-field and little-endian helpers shared by the NVMe spec modules.
// Plain DataView/Uint8Array code: no Node APIs, so worker threads can load it.

/** A 64-bit wire value. Numbers are accepted where values stay below 2^53 (IOVAs, LBAs). */
export type U64 = number | bigint;

/** Single-bit inputs accept booleans or 0/1 so callers can pass decoded fields straight back. */
export type Flag = boolean | number;

const TWO_POW_32 = 0x1_0000_0000;

/** Extracts a right-aligned field from a 32-bit value. */
export function getBits(raw: number, shift: number, mask: number): number {
  return ((raw >>> shift) & mask) >>> 0;
}

/** Places a value into its field position; the result is an unsigned 32-bit number. */
export function putBits(value: number, shift: number, mask: number): number {
  // Multiplication instead of << keeps bit 31 from turning the result negative.
  return ((value & mask) >>> 0) * 2 ** shift;
}

/** Extracts a field from a 64-bit register value (CAP). */
export function getBits64(raw: bigint, shift: number, mask: number): number {
  return Number((raw >> BigInt(shift)) & BigInt(mask));
}

export function putBits64(value: number, shift: number, mask: number): bigint {
  return (BigInt(value) & BigInt(mask)) << BigInt(shift);
}

export function flagBit(value: Flag | undefined): number {
  return value ? 1 : 0;
}

export function writeU64(view: DataView, offset: number, value: U64): void {
  if (typeof value === 'bigint') {
    view.setBigUint64(offset, BigInt.asUintN(64, value), true);
    return;
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`64-bit field needs a non-negative safe integer or a bigint, got ${value}`);
  }
  // Two 32-bit stores avoid a bigint allocation on the hot path.
  view.setUint32(offset, value % TWO_POW_32, true);
  view.setUint32(offset + 4, Math.floor(value / TWO_POW_32), true);
}

export function readU64(view: DataView, offset: number): bigint {
  return view.getBigUint64(offset, true);
}

/** Reads the 128-bit little-endian counters of the SMART / Health log. */
export function readU128(view: DataView, offset: number): bigint {
  return view.getBigUint64(offset, true) | (view.getBigUint64(offset + 8, true) << 64n);
}

export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Builds a name lookup from an enum-like object; the first name wins on duplicate values. */
export function invertEnum(table: Readonly<Record<string, number>>): ReadonlyMap<number, string> {
  const names = new Map<number, string>();
  for (const [name, value] of Object.entries(table)) {
    if (!names.has(value)) names.set(value, name);
  }
  return names;
}

export function hex2(value: number): string {
  return `0x${value.toString(16).padStart(2, '0')}`;
}
