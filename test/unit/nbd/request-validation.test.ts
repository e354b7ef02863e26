import t from 'tap';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_ENOSPC,
  NBD_EPERM,
} from '../../../blockdev/nbd/constants.js';
import { transmissionFlagsFor } from '../../../blockdev/nbd/export-flags.js';
import { validateRequest, type ValidationContext } from '../../../blockdev/nbd/request-validation.js';
import type { RequestHeader } from '../../../blockdev/nbd/transmission-codec.js';

const FULL = {
  readOnly: false,
  fua: true,
  trim: true,
  writeZeroes: true,
  fastZero: true,
  blockStatus: true,
  multiConn: true,
};

const SIZE = 1024 * 1024;

function context(overrides: Partial<ValidationContext> = {}): ValidationContext {
  return {
    sizeBytes: SIZE,
    transmissionFlags: transmissionFlagsFor({ capabilities: FULL, readOnly: false, structuredReplies: true }),
    blockSize: { minimumBytes: 512, preferredBytes: 4096, maximumBytes: 65536 },
    blockStatusContextId: 1,
    ...overrides,
  };
}

function request(type: number, offset: number, lengthBytes: number, flags = 0): RequestHeader {
  return { type, offset, lengthBytes, flags, handle: 1n };
}

function errnoOf(header: RequestHeader, ctx: ValidationContext = context(), discarded = false): number {
  return validateRequest(header, ctx, discarded)?.errno ?? 0;
}

t.test('valid requests pass', async (t) => {
  t.equal(errnoOf(request(NBD_CMD_READ, 0, 4096)), 0);
  t.equal(errnoOf(request(NBD_CMD_READ, SIZE - 512, 512, NBD_CMD_FLAG_DF)), 0, 'last sector, DF');
  t.equal(errnoOf(request(NBD_CMD_WRITE, 512, 65536, NBD_CMD_FLAG_FUA)), 0);
  t.equal(errnoOf(request(NBD_CMD_FLUSH, 0, 0, NBD_CMD_FLAG_FUA)), 0, 'FUA is accepted on every command');
  t.equal(errnoOf(request(NBD_CMD_TRIM, 0, SIZE)), 0, 'trim is not bound by the maximum block size');
  t.equal(errnoOf(request(NBD_CMD_WRITE_ZEROES, 0, SIZE, NBD_CMD_FLAG_FAST_ZERO | NBD_CMD_FLAG_NO_HOLE)), 0);
  t.equal(errnoOf(request(NBD_CMD_BLOCK_STATUS, 0, SIZE, NBD_CMD_FLAG_REQ_ONE)), 0);
  t.equal(errnoOf(request(NBD_CMD_CACHE, 0, 4096)), 0);
  t.equal(errnoOf(request(NBD_CMD_READ, 0, 0)), 0, 'zero-length read is allowed (SHOULD NOT disconnect)');
});

t.test('proto.md "Error values": beyond the end is ENOSPC for writes, EINVAL otherwise', async (t) => {
  t.equal(errnoOf(request(NBD_CMD_WRITE, SIZE, 512)), NBD_ENOSPC);
  t.equal(errnoOf(request(NBD_CMD_WRITE_ZEROES, SIZE - 512, 1024)), NBD_ENOSPC);
  t.equal(errnoOf(request(NBD_CMD_READ, SIZE, 512)), NBD_EINVAL);
  t.equal(errnoOf(request(NBD_CMD_TRIM, SIZE - 512, 1024)), NBD_EINVAL);
  t.equal(errnoOf(request(NBD_CMD_BLOCK_STATUS, SIZE, 512)), NBD_EINVAL);
  t.equal(errnoOf(request(NBD_CMD_CACHE, SIZE, 512)), NBD_EINVAL);
  t.equal(errnoOf(request(NBD_CMD_READ, 2 ** 64, 512)), NBD_EINVAL, 'an offset beyond 2^53');
});

t.test('unknown commands, unknown or misplaced flags: EINVAL', async (t) => {
  t.equal(errnoOf(request(8, 0, 0)), NBD_EINVAL, 'RESIZE is not supported');
  t.equal(errnoOf(request(0xffff, 0, 0)), NBD_EINVAL);
  t.equal(errnoOf(request(NBD_CMD_READ, 0, 512, 1 << 7)), NBD_EINVAL, 'unknown flag');
  t.equal(errnoOf(request(NBD_CMD_WRITE, 0, 512, NBD_CMD_FLAG_NO_HOLE)), NBD_EINVAL, 'NO_HOLE only for WRITE_ZEROES');
  t.equal(errnoOf(request(NBD_CMD_READ, 0, 512, NBD_CMD_FLAG_REQ_ONE)), NBD_EINVAL, 'REQ_ONE only for BLOCK_STATUS');
  t.equal(errnoOf(request(NBD_CMD_WRITE, 0, 512, NBD_CMD_FLAG_DF)), NBD_EINVAL, 'DF only for READ');
  t.equal(errnoOf(request(NBD_CMD_TRIM, 0, 512, NBD_CMD_FLAG_FAST_ZERO)), NBD_EINVAL);
});

t.test('commands and flags that were not advertised: EINVAL', async (t) => {
  const bare = transmissionFlagsFor({
    capabilities: { ...FULL, fua: false, trim: false, writeZeroes: false, fastZero: false },
    readOnly: false,
    structuredReplies: false,
  });
  const ctx = context({ transmissionFlags: bare, blockStatusContextId: undefined });
  t.equal(errnoOf(request(NBD_CMD_TRIM, 0, 512), ctx), NBD_EINVAL);
  t.equal(errnoOf(request(NBD_CMD_WRITE_ZEROES, 0, 512), ctx), NBD_EINVAL);
  t.equal(errnoOf(request(NBD_CMD_BLOCK_STATUS, 0, 512), ctx), NBD_EINVAL, 'no metadata context negotiated');
  t.equal(errnoOf(request(NBD_CMD_WRITE, 0, 512, NBD_CMD_FLAG_FUA), ctx), NBD_EINVAL, 'FUA without SEND_FUA');
  t.equal(errnoOf(request(NBD_CMD_READ, 0, 512, NBD_CMD_FLAG_DF), ctx), NBD_EINVAL, 'DF without structured replies');
  const noFastZero = transmissionFlagsFor({ capabilities: { ...FULL, fastZero: false }, readOnly: false, structuredReplies: true });
  const fz = request(NBD_CMD_WRITE_ZEROES, 0, 512, NBD_CMD_FLAG_FAST_ZERO);
  t.equal(errnoOf(fz, context({ transmissionFlags: noFastZero })), NBD_EINVAL);
});

t.test('read-only exports: writes, trims and zeroes get EPERM', async (t) => {
  const ctx = context({ transmissionFlags: transmissionFlagsFor({ capabilities: FULL, readOnly: true, structuredReplies: true }) });
  t.equal(errnoOf(request(NBD_CMD_WRITE, 0, 512), ctx), NBD_EPERM);
  t.equal(errnoOf(request(NBD_CMD_TRIM, 0, 512), ctx), NBD_EPERM);
  t.equal(errnoOf(request(NBD_CMD_WRITE_ZEROES, 0, 512), ctx), NBD_EPERM);
  t.equal(errnoOf(request(NBD_CMD_WRITE, SIZE, 512), ctx), NBD_EPERM, 'EPERM wins over the range');
  t.equal(errnoOf(request(NBD_CMD_READ, 0, 512), ctx), 0);
  t.equal(errnoOf(request(NBD_CMD_FLUSH, 0, 0), ctx), 0);
});

t.test('block size constraints: alignment and maximum', async (t) => {
  t.equal(errnoOf(request(NBD_CMD_READ, 1, 512)), NBD_EINVAL, 'unaligned offset');
  t.equal(errnoOf(request(NBD_CMD_WRITE, 0, 100)), NBD_EINVAL, 'unaligned length');
  t.equal(errnoOf(request(NBD_CMD_READ, 0, 65536 + 512)), NBD_EINVAL, 'read over the maximum');
  t.equal(errnoOf(request(NBD_CMD_WRITE_ZEROES, 0, 65536 + 512)), NBD_EINVAL, 'zero without FAST_ZERO is bound');
  t.equal(errnoOf(request(NBD_CMD_WRITE, 0, 65536 + 512), context(), true), NBD_EINVAL, 'discarded oversized write');
});

t.test('FLUSH with nonzero offset or length, BLOCK_STATUS of nothing: EINVAL', async (t) => {
  t.equal(errnoOf(request(NBD_CMD_FLUSH, 512, 0)), NBD_EINVAL);
  t.equal(errnoOf(request(NBD_CMD_FLUSH, 0, 512)), NBD_EINVAL);
  t.equal(errnoOf(request(NBD_CMD_BLOCK_STATUS, 0, 0)), NBD_EINVAL);
});
