/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table-driven.
 *
 * Node 20's zlib has no crc32() (it arrived in 22.2), so the superblock
 * checksum is computed here. It guards a few hundred bytes read once at
 * open, so a byte-at-a-time table is plenty fast.
 */

const CRC32_TABLE: Uint32Array = buildTable();

function buildTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let byte = 0; byte < 256; byte += 1) {
    let value = byte;
    for (let bit = 0; bit < 8; bit += 1) {
      value = value & 1 ? 0xedb88320 ^ (value >>> 1) : value >>> 1;
    }
    table[byte] = value >>> 0;
  }
  return table;
}

/** CRC-32 of `data` (check value: crc32("123456789") === 0xcbf43926). */
export function crc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let index = 0; index < data.length; index += 1) {
    // Both lookups are in range: the index is masked to 0..255.
    crc = (CRC32_TABLE[(crc ^ (data[index] as number)) & 0xff] as number) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}
