/**
 * CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), the
 * iSCSI header and data digest (RFC 7143 §13.1, test vectors in RFC 3720
 * Appendix B.4). Table-driven, one byte at a time, pure.
 */

const REFLECTED_POLYNOMIAL = 0x82f63b78;

const TABLE: Uint32Array = buildTable();

function buildTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let byte = 0; byte < 256; byte += 1) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit += 1) {
      crc = (crc & 1) !== 0 ? (crc >>> 1) ^ REFLECTED_POLYNOMIAL : crc >>> 1;
    }
    table[byte] = crc >>> 0;
  }
  return table;
}

/** Continue a running CRC (pass the previous result's inner state via crc32cUpdate). */
export function crc32cUpdate(state: number, data: Uint8Array): number {
  let crc = state;
  for (let index = 0; index < data.length; index += 1) {
    // Both indexes are in range by construction; `?? 0` only satisfies noUncheckedIndexedAccess.
    crc = (TABLE[(crc ^ (data[index] ?? 0)) & 0xff] ?? 0) ^ (crc >>> 8);
  }
  return crc >>> 0;
}

export const CRC32C_INITIAL_STATE = 0xffffffff;

export function crc32cFinish(state: number): number {
  return (state ^ 0xffffffff) >>> 0;
}

/** The CRC32C of the concatenation of `parts`. */
export function crc32c(...parts: readonly Uint8Array[]): number {
  let state = CRC32C_INITIAL_STATE;
  for (const part of parts) {
    state = crc32cUpdate(state, part);
  }
  return crc32cFinish(state);
}

/**
 * The 4 digest bytes as they go on the wire: RFC 7143 §13.1 sends the CRC
 * least significant byte first (RFC 3720 B.4 shows the CRC of 32 zero bytes,
 * 0x8A9136AA, transmitted as aa 36 91 8a).
 */
export function encodeDigest(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32LE(value >>> 0, 0);
  return out;
}

export function readDigest(buffer: Buffer, offset: number): number {
  return buffer.readUInt32LE(offset);
}
