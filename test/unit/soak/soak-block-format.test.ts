/** The soak's block stamps (test/soak/soak-block-format.ts): whole stamps decode, torn and foreign blocks are garbage. */
import t from 'tap';
import { decodeBlock, readingFromWorker, SOAK_BLOCK_BYTES, stampBlock } from '../../soak/soak-block-format.js';

t.test('zeroes and whole stamps decode to their version', async (t) => {
  t.same(decodeBlock(Buffer.alloc(SOAK_BLOCK_BYTES), 7), { kind: 'version', version: 0 });
  t.same(decodeBlock(stampBlock(12345, 7), 7), { kind: 'version', version: 12345 });
  t.equal(stampBlock(1, 2).length, SOAK_BLOCK_BYTES);
});

t.test('a block torn at a sector, or another block\'s data, is garbage', async (t) => {
  const torn = Buffer.concat([stampBlock(2, 7).subarray(0, 512), stampBlock(1, 7).subarray(512)]);
  t.match(decodeBlock(torn, 7), { kind: 'garbage', detail: /2@7, 1@7/ });
  t.match(decodeBlock(stampBlock(3, 8), 7), { kind: 'garbage', detail: /3@8/ });
  const halfZero = Buffer.concat([stampBlock(4, 7).subarray(0, 2048), Buffer.alloc(2048)]);
  t.match(decodeBlock(halfZero, 7), { kind: 'garbage', detail: /4@7, 0@0/ });
  t.throws(() => decodeBlock(Buffer.alloc(512), 0), RangeError);
});

t.test('worker answers map to readings', async (t) => {
  t.same(readingFromWorker(5), { kind: 'version', version: 5 });
  t.same(readingFromWorker('garbage: sector stamps 1@2'), { kind: 'garbage', detail: 'sector stamps 1@2' });
});
