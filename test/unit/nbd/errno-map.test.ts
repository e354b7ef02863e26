import t from 'tap';
import { PlinthError, type PlinthErrorCode } from '../../../common/plinth-error.js';
import {
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_EIO,
  NBD_ENOSPC,
  NBD_ENOTSUP,
  NBD_EPERM,
  NBD_ESHUTDOWN,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_SHUTDOWN,
  NBD_REP_ERR_UNKNOWN,
} from '../../../blockdev/nbd/constants.js';
import { errnoForError, optionErrorForError } from '../../../blockdev/nbd/errno-map.js';

function error(code: PlinthErrorCode): PlinthError {
  return new PlinthError(code, code);
}

t.test('device errors map by code to proto.md errnos', async (t) => {
  const cases: [PlinthErrorCode, number, number][] = [
    ['OUT_OF_RANGE', NBD_CMD_READ, NBD_EINVAL],
    ['OUT_OF_RANGE', NBD_CMD_TRIM, NBD_EINVAL],
    ['OUT_OF_RANGE', NBD_CMD_WRITE, NBD_ENOSPC],
    ['OUT_OF_RANGE', NBD_CMD_WRITE_ZEROES, NBD_ENOSPC],
    ['NO_SPACE', NBD_CMD_WRITE, NBD_ENOSPC],
    ['IO_ERROR', NBD_CMD_READ, NBD_EIO],
    ['READ_ONLY', NBD_CMD_WRITE, NBD_EPERM],
    ['TOO_LARGE', NBD_CMD_READ, NBD_EINVAL],
    ['INVALID_ARGUMENT', NBD_CMD_READ, NBD_EINVAL],
    ['NOT_SUPPORTED', NBD_CMD_TRIM, NBD_EINVAL],
    ['SHUTTING_DOWN', NBD_CMD_READ, NBD_ESHUTDOWN],
  ];
  for (const [code, command, errno] of cases) {
    t.same(errnoForError(error(code), command), { errno, expected: true }, `${code} on command ${command}`);
  }
});

t.test('NOT_SUPPORTED is ENOTSUP only for a FAST_ZERO write-zeroes', async (t) => {
  t.equal(errnoForError(error('NOT_SUPPORTED'), NBD_CMD_WRITE_ZEROES, true).errno, NBD_ENOTSUP);
  t.equal(errnoForError(error('NOT_SUPPORTED'), NBD_CMD_WRITE_ZEROES, false).errno, NBD_EINVAL);
});

t.test('anything else is EIO and flagged unexpected so it gets logged', async (t) => {
  t.same(errnoForError(error('DISK_CORRUPT'), NBD_CMD_READ), { errno: NBD_EIO, expected: false });
  t.same(errnoForError(new Error('boom'), NBD_CMD_READ), { errno: NBD_EIO, expected: false });
  t.same(errnoForError('a string', NBD_CMD_READ), { errno: NBD_EIO, expected: false });
});

t.test('provider errors map to option reply errors', async (t) => {
  t.equal(optionErrorForError(error('VOLUME_NOT_FOUND')).replyType, NBD_REP_ERR_UNKNOWN);
  t.equal(optionErrorForError(error('VOLUME_ATTACHED')).replyType, NBD_REP_ERR_POLICY);
  t.same(optionErrorForError(error('BUSY')), { replyType: NBD_REP_ERR_POLICY, expected: true });
  t.equal(optionErrorForError(error('SHUTTING_DOWN')).replyType, NBD_REP_ERR_SHUTDOWN);
  t.same(optionErrorForError(new Error('x')), { replyType: NBD_REP_ERR_UNKNOWN, expected: false });
});
