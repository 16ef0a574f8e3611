// Self-describing payloads for the application simulations (a KV value, a
// message's data): each names the write that made it and the place it was
// written to (a key, ...), and its remaining bytes follow from those and its
// length, so whatever is read back after recovery is either exactly one
// write's payload or recognisably wrong.
const MAGIC = 0x4c594150; // 'PAYL', little-endian
export const PAYLOAD_HEADER_BYTES = 16;

function filler(write: number, place: number, index: number): number {
  return (Math.imul(write, 31) + Math.imul(place, 131) + index * 7 + (index >>> 8)) & 0xff;
}

/** The payload of write number `write` to `place`, `length` (≥ PAYLOAD_HEADER_BYTES) bytes long. */
export function encodePayload(write: number, place: number, length: number): Buffer {
  const payload = Buffer.allocUnsafe(length);
  payload.writeUInt32LE(MAGIC, 0);
  payload.writeUInt32LE(write, 4);
  payload.writeUInt32LE(place, 8);
  payload.writeUInt32LE(length, 12);
  for (let i = PAYLOAD_HEADER_BYTES; i < length; i++) payload[i] = filler(write, place, i);
  return payload;
}

/** The write a payload read from `place` came from, or -1 when it is not one written there. */
export function decodePayload(payload: Uint8Array, place: number): number {
  if (payload.length < PAYLOAD_HEADER_BYTES) return -1;
  const view = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  if (view.readUInt32LE(0) !== MAGIC || view.readUInt32LE(8) !== place || view.readUInt32LE(12) !== payload.length) return -1;
  const write = view.readUInt32LE(4);
  for (let i = PAYLOAD_HEADER_BYTES; i < payload.length; i++) if (payload[i] !== filler(write, place, i)) return -1;
  return write;
}
