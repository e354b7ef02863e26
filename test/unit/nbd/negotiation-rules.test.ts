import t from 'tap';
import type { BlockCapabilities } from '../../../blockdev/block-device.js';
import { toBlockStatusDescriptors } from '../../../blockdev/nbd/block-status.js';
import {
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
} from '../../../blockdev/nbd/constants.js';
import { advertisedBlockSize, transmissionFlagsFor } from '../../../blockdev/nbd/export-flags.js';
import { listMetaContexts, selectMetaContexts } from '../../../blockdev/nbd/meta-context.js';
import { ProtocolError } from '../../../blockdev/nbd/protocol-error.js';

/** The pure rules the handshake and transmission apply: flags, block sizes, contexts, extents. */

const NONE: BlockCapabilities = {
  readOnly: false,
  fua: false,
  trim: false,
  writeZeroes: false,
  fastZero: false,
  blockStatus: false,
  multiConn: false,
};

t.test('transmission flags follow capabilities', async (t) => {
  const base = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH;
  const bare = transmissionFlagsFor({ capabilities: NONE, readOnly: false, structuredReplies: false });
  t.equal(bare & ~(1 << 10), base, 'HAS_FLAGS, FLUSH (and CACHE) only');
  const full = transmissionFlagsFor({
    capabilities: { ...NONE, fua: true, trim: true, writeZeroes: true, fastZero: true, multiConn: true },
    readOnly: false,
    structuredReplies: true,
  });
  for (const flag of [NBD_FLAG_SEND_FUA, NBD_FLAG_SEND_TRIM, NBD_FLAG_SEND_WRITE_ZEROES, NBD_FLAG_SEND_FAST_ZERO, NBD_FLAG_CAN_MULTI_CONN, NBD_FLAG_SEND_DF]) {
    t.ok(full & flag, `flag ${flag} set`);
  }
  const fastZeroAlone = transmissionFlagsFor({ capabilities: { ...NONE, fastZero: true }, readOnly: false, structuredReplies: false });
  t.notOk(fastZeroAlone & NBD_FLAG_SEND_FAST_ZERO, 'proto.md: FAST_ZERO MUST be clear without WRITE_ZEROES');
  const readOnly = transmissionFlagsFor({ capabilities: { ...NONE, fua: true, trim: true, writeZeroes: true }, readOnly: true, structuredReplies: false });
  t.ok(readOnly & NBD_FLAG_READ_ONLY);
  t.notOk(readOnly & (NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FUA), 'no write features on a read-only export');
  const deviceReadOnly = transmissionFlagsFor({ capabilities: { ...NONE, readOnly: true }, readOnly: false, structuredReplies: false });
  t.ok(deviceReadOnly & NBD_FLAG_READ_ONLY);
});

t.test('advertised block sizes obey proto.md whatever the device says', async (t) => {
  const max = 32 * 1024 * 1024;
  t.same(advertisedBlockSize({ minimumBytes: 512, preferredBytes: 4096, maximumBytes: 1 << 30 }, max), {
    minimumBytes: 512,
    preferredBytes: 4096,
    maximumBytes: max,
  });
  t.same(advertisedBlockSize({ minimumBytes: 1, preferredBytes: 1, maximumBytes: 1 << 20 }, max), {
    minimumBytes: 1,
    preferredBytes: 512,
    maximumBytes: 1 << 20,
  });
  const odd = advertisedBlockSize({ minimumBytes: 3000, preferredBytes: 5000, maximumBytes: 1_000_000 }, max);
  t.same(odd, { minimumBytes: 4096, preferredBytes: 8192, maximumBytes: 999_424 });
  t.equal(odd.maximumBytes % odd.minimumBytes, 0);
  t.equal(advertisedBlockSize({ minimumBytes: 1 << 20, preferredBytes: 1 << 20, maximumBytes: 1 << 20 }, max).minimumBytes, 65536);
});

t.test('meta contexts: base:allocation only, wildcards when listing', async (t) => {
  t.same(listMetaContexts([]), ['base:allocation']);
  t.same(listMetaContexts(['base:']), ['base:allocation']);
  t.same(listMetaContexts(['base:allocation', 'base:allocation']), ['base:allocation']);
  t.same(listMetaContexts(['qemu:dirty-bitmap:a', 'x-foo:']), [], 'unknown namespaces ignored');
  t.same(selectMetaContexts(['base:allocation', 'qemu:allocation-depth']), ['base:allocation']);
  t.same(selectMetaContexts(['base:']), [], 'proto.md: base: MUST be ignored by SET');
  t.same(selectMetaContexts(['base:nonsense']), [], 'unknown leaf ignored');
  t.same(selectMetaContexts([]), []);
  t.ok(selectMetaContexts(['no-colon']) instanceof ProtocolError);
  t.ok(listMetaContexts([':allocation']) instanceof ProtocolError, 'empty namespace');
});

t.test('extents: merged, clipped to the request, bounded, REQ_ONE gives one', async (t) => {
  const runs = [
    { lengthBytes: 4096, hole: false, zero: false },
    { lengthBytes: 4096, hole: false, zero: false },
    { lengthBytes: 8192, hole: true, zero: true },
    { lengthBytes: 4096, hole: false, zero: true },
  ];
  t.same(toBlockStatusDescriptors(runs, 1 << 20, false, 100), [
    { lengthBytes: 8192, flags: 0 },
    { lengthBytes: 8192, flags: NBD_STATE_HOLE | NBD_STATE_ZERO },
    { lengthBytes: 4096, flags: NBD_STATE_ZERO },
  ]);
  t.same(toBlockStatusDescriptors(runs, 10000, false, 100), [
    { lengthBytes: 8192, flags: 0 },
    { lengthBytes: 1808, flags: NBD_STATE_HOLE | NBD_STATE_ZERO },
  ]);
  t.same(toBlockStatusDescriptors(runs, 1 << 20, true, 100), [{ lengthBytes: 8192, flags: 0 }]);
  t.same(toBlockStatusDescriptors(runs, 1 << 20, false, 2)?.length, 2);
  t.equal(toBlockStatusDescriptors([], 4096, false, 100), undefined, 'no runs is a device bug');
  t.equal(toBlockStatusDescriptors([{ lengthBytes: 0, hole: true, zero: true }], 4096, false, 100), undefined);
});
