import t from 'tap';
import {
  decodeExportNameReply,
  decodeInfoReply,
  decodeOptionReply,
  decodeServerGreeting,
  encodeClientFlags,
  encodeInfoRequestData,
  encodeMetaContextData,
  encodeOption,
} from '../../../blockdev/nbd/client-codec.js';
import {
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
} from '../../../blockdev/nbd/constants.js';
import {
  decodeClientFlags,
  decodeExportNameData,
  decodeInfoRequestData,
  decodeMetaContextData,
  decodeOptionHeader,
  encodeExportNameReply,
  encodeInfoBlockSize,
  encodeInfoDescription,
  encodeInfoExport,
  encodeInfoName,
  encodeMetaContextReply,
  encodeOptionError,
  encodeOptionReply,
  encodeServerGreeting,
  encodeServerReply,
} from '../../../blockdev/nbd/handshake-codec.js';
import { ProtocolError } from '../../../blockdev/nbd/protocol-error.js';

/** Unwrap a decode result that must have succeeded. */
function ok<T>(value: T | ProtocolError | undefined): T {
  if (value instanceof ProtocolError) {
    throw new Error(`expected a decoded value, got ${value.message}`);
  }
  if (value === undefined) {
    throw new Error('expected a decoded value, got undefined');
  }
  return value;
}

function reasonOf(value: unknown): string | undefined {
  return value instanceof ProtocolError ? value.reason : undefined;
}

t.test('server greeting: NBDMAGIC, IHAVEOPT, fixed newstyle + no zeroes', async (t) => {
  const greeting = encodeServerGreeting();
  t.equal(greeting.length, 18);
  t.equal(greeting.subarray(0, 16).toString('latin1'), 'NBDMAGICIHAVEOPT');
  t.equal(ok(decodeServerGreeting(greeting)).handshakeFlags, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
});

t.test('client flags round trip; unknown flags are a protocol error', async (t) => {
  const both = ok(decodeClientFlags(encodeClientFlags(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)));
  t.same(both, { fixedNewstyle: true, noZeroes: true });
  t.same(ok(decodeClientFlags(encodeClientFlags(0))), { fixedNewstyle: false, noZeroes: false });
  t.equal(reasonOf(decodeClientFlags(encodeClientFlags(1 << 2))), 'BAD_CLIENT_FLAGS');
  t.equal(reasonOf(decodeClientFlags(Buffer.alloc(3))), 'TRUNCATED');
});

t.test('option header round trip for every option number; bad magic refused', async (t) => {
  for (let option = 0; option <= 12; option += 1) {
    const data = Buffer.from(`data-${option}`);
    const encoded = encodeOption(option, data);
    const header = ok(decodeOptionHeader(encoded.subarray(0, 16)));
    t.same(header, { option, lengthBytes: data.length });
    t.same(encoded.subarray(16), data);
  }
  const broken = encodeOption(NBD_OPT_LIST);
  broken[0] = 0;
  t.equal(reasonOf(decodeOptionHeader(broken)), 'BAD_MAGIC');
  t.equal(reasonOf(decodeOptionHeader(broken.subarray(0, 15))), 'TRUNCATED');
});

t.test('EXPORT_NAME data: names in UTF-8; NUL, bad UTF-8 and >4096 bytes refused', async (t) => {
  for (const name of ['', 'vol1', 'volume@snapshot', 'ünïcødé-卷']) {
    t.equal(ok(decodeExportNameData(Buffer.from(name, 'utf8'))), name);
  }
  t.equal(reasonOf(decodeExportNameData(Buffer.from('a\0b'))), 'BAD_STRING');
  t.equal(reasonOf(decodeExportNameData(Buffer.from([0xc3, 0x28]))), 'BAD_STRING');
  t.equal(reasonOf(decodeExportNameData(Buffer.alloc(4097, 0x61))), 'BAD_STRING');
  t.equal(ok(decodeExportNameData(Buffer.alloc(4096, 0x61))).length, 4096);
});

t.test('INFO/GO data round trip', async (t) => {
  const cases: [string, number[]][] = [
    ['', []],
    ['vol1', [NBD_INFO_BLOCK_SIZE]],
    ['volume@snap', [NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE, 77]],
  ];
  for (const [name, infoTypes] of cases) {
    t.same(ok(decodeInfoRequestData(encodeInfoRequestData(name, infoTypes))), { name, infoTypes });
  }
});

t.test('INFO/GO data with lying lengths is refused', async (t) => {
  const good = encodeInfoRequestData('vol1', [NBD_INFO_NAME]);
  t.equal(reasonOf(decodeInfoRequestData(good.subarray(0, 5))), 'BAD_LENGTH', 'shorter than 6 bytes');
  t.equal(reasonOf(decodeInfoRequestData(good.subarray(0, good.length - 1))), 'BAD_LENGTH', 'missing info bytes');
  t.equal(reasonOf(decodeInfoRequestData(Buffer.concat([good, Buffer.alloc(2)]))), 'BAD_LENGTH', 'trailing bytes');
  const overrun = Buffer.from(good);
  overrun.writeUInt32BE(good.length, 0);
  t.equal(reasonOf(decodeInfoRequestData(overrun)), 'BAD_LENGTH', 'name length past the data');
});

t.test('META_CONTEXT data round trip and refusals', async (t) => {
  const cases: [string, string[]][] = [
    ['', []],
    ['vol1', ['base:allocation']],
    ['vol1', ['base:', 'qemu:dirty-bitmap:x', 'x-foo:bar']],
  ];
  for (const [exportName, queries] of cases) {
    t.same(ok(decodeMetaContextData(encodeMetaContextData(exportName, queries))), { exportName, queries });
  }
  const good = encodeMetaContextData('vol1', ['base:allocation']);
  t.equal(reasonOf(decodeMetaContextData(good.subarray(0, good.length - 1))), 'BAD_LENGTH', 'query overruns');
  t.equal(reasonOf(decodeMetaContextData(Buffer.concat([good, Buffer.alloc(1)]))), 'BAD_LENGTH', 'trailing byte');
  const hugeCount = Buffer.from(good);
  hugeCount.writeUInt32BE(0xffffffff, 8);
  t.equal(reasonOf(decodeMetaContextData(hugeCount)), 'BAD_LENGTH', 'query count larger than the data');
  t.equal(reasonOf(decodeMetaContextData(Buffer.alloc(7))), 'BAD_LENGTH', 'shorter than 8 bytes');
});

t.test('option replies round trip through the client decoder', async (t) => {
  const ack = ok(decodeOptionReply(encodeOptionReply(NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK)));
  t.same([ack.option, ack.replyType, ack.data.length, ack.totalBytes], [NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, 0, 20]);

  const server = ok(decodeOptionReply(encodeServerReply(NBD_OPT_LIST, 'vol1', 'first volume')));
  t.equal(server.replyType, NBD_REP_SERVER);
  t.equal(server.data.readUInt32BE(0), 4);
  t.equal(server.data.subarray(4, 8).toString(), 'vol1');
  t.equal(server.data.subarray(8).toString(), 'first volume');

  const error = ok(decodeOptionReply(encodeOptionError(NBD_OPT_GO, NBD_REP_ERR_UNKNOWN, 'no volume named "x"')));
  t.equal(error.replyType, NBD_REP_ERR_UNKNOWN);
  t.equal(error.data.toString(), 'no volume named "x"');

  const meta = ok(decodeOptionReply(encodeMetaContextReply(NBD_OPT_SET_META_CONTEXT, 1, 'base:allocation')));
  t.same([meta.replyType, meta.data.readUInt32BE(0), meta.data.subarray(4).toString()], [NBD_REP_META_CONTEXT, 1, 'base:allocation']);
  const listed = ok(decodeOptionReply(encodeMetaContextReply(NBD_OPT_LIST_META_CONTEXT, 0, 'base:allocation')));
  t.equal(listed.option, NBD_OPT_LIST_META_CONTEXT);

  t.equal(decodeOptionReply(encodeOptionReply(NBD_OPT_LIST, NBD_REP_ACK).subarray(0, 19)), undefined, 'incomplete');
});

t.test('NBD_REP_INFO payloads round trip', async (t) => {
  const size = 2 ** 40 + 512;
  const exportInfo = ok(decodeInfoReply(ok(decodeOptionReply(encodeInfoExport(NBD_OPT_GO, size, 0x1234))).data));
  t.same(exportInfo, { info: 'export', sizeBytes: size, transmissionFlags: 0x1234 });
  const name = ok(decodeInfoReply(ok(decodeOptionReply(encodeInfoName(NBD_OPT_INFO, 'vol@snap'))).data));
  t.same(name, { info: 'name', name: 'vol@snap' });
  const description = ok(decodeInfoReply(ok(decodeOptionReply(encodeInfoDescription(NBD_OPT_INFO, 'a volume'))).data));
  t.same(description, { info: 'description', description: 'a volume' });
  const sizes = { minimumBytes: 512, preferredBytes: 4096, maximumBytes: 32 * 1024 * 1024 };
  const blockSize = ok(decodeInfoReply(ok(decodeOptionReply(encodeInfoBlockSize(NBD_OPT_GO, sizes))).data));
  t.same(blockSize, { info: 'blockSize', ...sizes });
  const reply = ok(decodeOptionReply(encodeInfoExport(NBD_OPT_GO, 1, 1)));
  t.equal(reply.replyType, NBD_REP_INFO);
  t.equal(reply.data.length, 12, 'proto.md: NBD_INFO_EXPORT length MUST be 12');
});

t.test('EXPORT_NAME reply: 124 zero bytes unless NO_ZEROES', async (t) => {
  const withZeroes = encodeExportNameReply(1 << 30, 0x0103, false);
  t.equal(withZeroes.length, 134);
  t.ok(withZeroes.subarray(10).every((byte) => byte === 0));
  const compact = encodeExportNameReply(1 << 30, 0x0103, true);
  t.equal(compact.length, 10);
  t.same(ok(decodeExportNameReply(compact)), { sizeBytes: 1 << 30, transmissionFlags: 0x0103 });
});

t.test('error messages are cut at a character boundary within 4096 bytes', async (t) => {
  const reply = ok(decodeOptionReply(encodeOptionError(NBD_OPT_GO, NBD_REP_ERR_UNKNOWN, 'é'.repeat(3000))));
  t.ok(reply.data.length <= 4096);
  t.equal(reply.data.toString('utf8'), 'é'.repeat(2048));
});
