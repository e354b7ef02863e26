import t from 'tap';
import { crc32c, crc32cFinish, crc32cUpdate, CRC32C_INITIAL_STATE, encodeDigest } from '../../../blockdev/iscsi/crc32c.js';

/** RFC 3720 Appendix B.4 test vectors (CRC32C, iSCSI's digest). */

t.test('RFC 3720 B.4 vectors', async (t) => {
  t.equal(crc32c(Buffer.alloc(32, 0)), 0x8a9136aa, '32 bytes of zeroes');
  t.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43, '32 bytes of ones');
  t.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e, '32 incrementing bytes');
  t.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i))), 0x113fdb5c, '32 decrementing bytes');
  const readCommand = Buffer.from(
    '01c00000000000000000000000000000' + '14000000000004000000001400000018' + '28000000000000000200000000000000',
    'hex',
  );
  t.equal(crc32c(readCommand), 0xd9963a56, 'an iSCSI SCSI Read (10) command PDU');
});

t.test('the digest goes on the wire least significant byte first', async (t) => {
  t.same([...encodeDigest(0x8a9136aa)], [0xaa, 0x36, 0x91, 0x8a]);
});

t.test('incremental and split computations agree', async (t) => {
  const data = Buffer.from('The quick brown fox jumps over the lazy dog');
  const whole = crc32c(data);
  for (let cut = 0; cut <= data.length; cut += 1) {
    t.equal(crc32c(data.subarray(0, cut), data.subarray(cut)), whole);
  }
  t.equal(crc32cFinish(crc32cUpdate(crc32cUpdate(CRC32C_INITIAL_STATE, data.subarray(0, 5)), data.subarray(5))), whole);
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283, 'the standard check value');
});
