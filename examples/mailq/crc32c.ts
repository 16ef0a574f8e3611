/**
 * CRC32C (Castagnoli), slicing-by-8, in plain JavaScript: the checksum of
 * every queue entry header and record. The same polynomial as the NVMe
 * emulator's store and iSCSI; check value of "123456789" is 0xe3069283.
 */

const POLY = 0x82f63b78;
const TABLES = new Int32Array(8 * 256);

for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  TABLES[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = TABLES[n]!;
  for (let t = 1; t < 8; t++) {
    c = TABLES[c & 0xff]! ^ (c >>> 8);
    TABLES[t * 256 + n] = c;
  }
}

/**
 * CRC32C of bytes[start, end), continuing from `crc` (the value returned for
 * the bytes before; 0 to start). Returns an unsigned 32-bit number.
 */
export function crc32c(bytes: Uint8Array, crc = 0, start = 0, end = bytes.length): number {
  const t = TABLES;
  let c = ~crc;
  let i = start;
  const fast = end - ((end - i) & 7);
  while (i < fast) {
    const a = c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    c =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^
      t[512 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!;
    i += 8;
  }
  while (i < end) c = t[(c ^ bytes[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
