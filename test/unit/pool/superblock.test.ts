import { randomUUID } from 'node:crypto';
import t from 'tap';
import { crc32 } from '../../../blockdev/pool/checksum.js';
import {
  decodeSuperblock,
  encodeSuperblock,
  PROBE_BYTES,
  probeSuperblock,
  SUPERBLOCK_BYTES,
  type Superblock,
} from '../../../blockdev/pool/superblock.js';

const sample: Superblock = {
  poolId: randomUUID(),
  diskId: randomUUID(),
  extentSizeBytes: 1024 * 1024,
  diskIndex: 3,
  capacityBytes: 5 * 1024 ** 4 + 12345,
};

t.test('crc32 matches the standard check value', async (t) => {
  t.equal(crc32(Buffer.from('123456789', 'latin1')), 0xcbf43926);
  t.equal(crc32(Buffer.alloc(0)), 0);
});

t.test('encode/decode round trip', async (t) => {
  const bytes = encodeSuperblock(sample);
  t.equal(bytes.length, SUPERBLOCK_BYTES);
  t.same(decodeSuperblock(bytes, 'mem'), sample);
  const head = Buffer.alloc(PROBE_BYTES);
  bytes.copy(head);
  t.same(probeSuperblock(head, 'mem'), { kind: 'plinth', superblock: sample });
});

t.test('every single corrupted byte is detected as DISK_CORRUPT (after the magic)', async (t) => {
  const bytes = encodeSuperblock(sample);
  for (let offset = 8; offset < SUPERBLOCK_BYTES; offset += 1) {
    const damaged = Buffer.from(bytes);
    damaged[offset] = (damaged[offset] ?? 0) ^ 0x40;
    t.throws(() => probeSuperblock(damaged, 'mem'), { code: 'DISK_CORRUPT' }, `byte ${offset}`);
  }
});

t.test('unknown version is DISK_CORRUPT even with a valid checksum', async (t) => {
  const bytes = encodeSuperblock(sample);
  bytes.writeUInt32LE(99, 8);
  bytes.writeUInt32LE(crc32(bytes.subarray(0, SUPERBLOCK_BYTES - 4)), SUPERBLOCK_BYTES - 4);
  t.throws(() => decodeSuperblock(bytes, 'mem'), { code: 'DISK_CORRUPT', message: /version 99/ });
});

t.test('zeroes are blank; anything else without our magic is DISK_FOREIGN', async (t) => {
  t.same(probeSuperblock(Buffer.alloc(PROBE_BYTES), 'mem'), { kind: 'blank' });
  const ext4Like = Buffer.alloc(PROBE_BYTES);
  ext4Like.writeUInt16LE(0xef53, 1024 + 56);
  t.throws(() => probeSuperblock(ext4Like, 'mem'), { code: 'DISK_FOREIGN' });
  const late = Buffer.alloc(PROBE_BYTES);
  late[PROBE_BYTES - 1] = 1;
  t.throws(() => probeSuperblock(late, 'mem'), { code: 'DISK_FOREIGN' }, 'a signature deep in the probe window counts');
  t.throws(() => probeSuperblock(Buffer.from('PLNTHDS!'), 'mem'), { code: 'DISK_FOREIGN' });
});
