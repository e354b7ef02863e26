/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum iSCSI
 * (RFC 7143 §13.1) and ext4 metadata use. Pure and table-driven: Node 20 has
 * no built-in crc32c, and the Raft log only checksums small records, so a
 * byte-at-a-time table is fast enough and keeps us free of native add-ons.
 */
const CASTAGNOLI_REFLECTED = 0x82f63b78;

const TABLE: Uint32Array = buildTable();

function buildTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) {
      c = c & 1 ? (c >>> 1) ^ CASTAGNOLI_REFLECTED : c >>> 1;
    }
    table[n] = c >>> 0;
  }
  return table;
}

/** CRC-32C of `data`, optionally continuing from a previous `crc`. */
export function crc32c(data: Uint8Array, crc = 0): number {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) {
    c = (TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}
