import pino from 'pino';
import t from 'tap';
import { PlinthError } from '../../../common/plinth-error.js';
import type { BlockCapabilities } from '../../../blockdev/block-device.js';
import {
  decodeBlockStatusPayload,
  decodeErrorChunk,
  decodeOffsetData,
  decodeTransmissionReply,
  type TransmissionReply,
} from '../../../blockdev/nbd/client-codec.js';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
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
  NBD_EIO,
  NBD_ENOSPC,
  NBD_ENOTSUP,
  NBD_EPERM,
  NBD_ESHUTDOWN,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
} from '../../../blockdev/nbd/constants.js';
import { advertisedBlockSize, transmissionFlagsFor } from '../../../blockdev/nbd/export-flags.js';
import type { RequestMessage } from '../../../blockdev/nbd/frame-reader.js';
import { resolveNbdLimits } from '../../../blockdev/nbd/limits.js';
import { ProtocolError } from '../../../blockdev/nbd/protocol-error.js';
import type { RequestHeader } from '../../../blockdev/nbd/transmission-codec.js';
import { type ReplySink, TransmissionSession } from '../../../blockdev/nbd/transmission.js';
import { MemoryBlockDevice } from '../../helpers/memory-block-device.js';

/** Request dispatch against the memory device, replies captured by a sink: no sockets. */

const SIZE = 1 << 20;

interface Harness {
  readonly device: MemoryBlockDevice;
  readonly session: TransmissionSession;
  /** Send one request and wait for its reply. */
  call(header: Omit<RequestHeader, 'handle'>, payload?: Buffer, discarded?: boolean): Promise<TransmissionReply>;
  readonly outstanding: () => number;
}

function harness(
  options: { structured?: boolean; readOnly?: boolean; capabilities?: Partial<BlockCapabilities>; blockStatus?: boolean } = {},
): Harness {
  const device = new MemoryBlockDevice({ sizeBytes: SIZE, capabilities: options.capabilities ?? {} });
  const structuredReplies = options.structured ?? true;
  const limits = resolveNbdLimits();
  const waiting = new Map<bigint, (reply: TransmissionReply) => void>();
  const readLengths = new Map<bigint, number>();
  let outstanding = 0;
  const sink: ReplySink = {
    sendReply(bytes) {
      const reply = decodeTransmissionReply(bytes, (handle) => readLengths.get(handle));
      if (reply === undefined || reply instanceof ProtocolError || reply.totalBytes !== bytes.length) {
        throw new Error('sink got a malformed reply');
      }
      waiting.get(reply.handle)?.(reply);
    },
    requestFinished(accountedBytes) {
      outstanding -= 1;
      if (accountedBytes < 0) throw new Error('negative accounting');
    },
  };
  const session = new TransmissionSession(
    {
      negotiated: {
        exportName: 'vol',
        handle: { description: { id: 'vol-id', name: 'vol', description: '', sizeBytes: SIZE, readOnly: false, capabilities: device.capabilities, blockSize: device.blockSize }, device, release: () => undefined },
        sizeBytes: SIZE,
        transmissionFlags: transmissionFlagsFor({
          capabilities: device.capabilities,
          readOnly: options.readOnly ?? false,
          structuredReplies,
        }),
        blockSize: advertisedBlockSize(device.blockSize, limits.maxPayloadBytes),
        structuredReplies,
        blockStatusContextId: options.blockStatus === false ? undefined : 1,
      },
      limits,
      connectionLabel: 'test',
    },
    { sink, logger: pino({ level: 'silent' }) },
  );
  let nextHandle = 1n;
  return {
    device,
    session,
    outstanding: () => outstanding,
    call(header, payload, discarded = false) {
      const handle = nextHandle;
      nextHandle += 1n;
      if (header.type === NBD_CMD_READ) readLengths.set(handle, header.lengthBytes);
      const message: RequestMessage = { kind: 'request', header: { ...header, handle }, payload, payloadDiscarded: discarded };
      const reply = new Promise<TransmissionReply>((resolve) => waiting.set(handle, resolve));
      outstanding += 1;
      session.dispatch(message);
      return reply;
    },
  };
}

function errnoOf(reply: TransmissionReply): number {
  if (reply.kind === 'simple') return reply.error;
  if (reply.type !== NBD_REPLY_TYPE_ERROR) return 0;
  const chunk = decodeErrorChunk(reply.payload);
  if (chunk instanceof ProtocolError) throw chunk;
  return chunk.error;
}

function dataOf(reply: TransmissionReply): Buffer {
  if (reply.kind === 'simple') return reply.data;
  if (reply.type !== NBD_REPLY_TYPE_OFFSET_DATA) throw new Error(`chunk type ${reply.type} is not data`);
  const data = decodeOffsetData(reply.payload);
  if (data instanceof ProtocolError) throw data;
  return data.data;
}

const read = (offset: number, lengthBytes: number, flags = 0) => ({ type: NBD_CMD_READ, flags, offset, lengthBytes });
const write = (offset: number, lengthBytes: number, flags = 0) => ({ type: NBD_CMD_WRITE, flags, offset, lengthBytes });
const cmd = (type: number, offset = 0, lengthBytes = 0, flags = 0) => ({ type, flags, offset, lengthBytes });

for (const structured of [true, false]) {
  t.test(`write then read back (${structured ? 'structured' : 'simple'} replies)`, async (t) => {
    const h = harness({ structured });
    const data = Buffer.alloc(8192, 0x5a);
    t.equal(errnoOf(await h.call(write(4096, data.length, NBD_CMD_FLAG_FUA), data)), 0);
    t.equal(h.device.stats.fuaWrites, 1, 'FUA reaches the device');
    const reply = await h.call(read(4096, 8192));
    t.equal(reply.kind, structured ? 'structured' : 'simple');
    t.same(dataOf(reply), data);
    t.same(dataOf(await h.call(read(0, 4096))), Buffer.alloc(4096), 'unwritten reads as zeroes');
    t.equal(h.outstanding(), 0);
  });
}

t.test('flush, trim, write zeroes and cache reach the device', async (t) => {
  const h = harness();
  const data = Buffer.alloc(128 * 1024, 1);
  await h.call(write(0, data.length), data);
  t.equal(errnoOf(await h.call(cmd(NBD_CMD_FLUSH))), 0);
  t.equal(h.device.stats.flushes, 1);
  t.equal(errnoOf(await h.call(cmd(NBD_CMD_TRIM, 0, 65536))), 0);
  t.equal(h.device.stats.trims, 1);
  t.equal(errnoOf(await h.call(cmd(NBD_CMD_WRITE_ZEROES, 65536, 65536, NBD_CMD_FLAG_NO_HOLE))), 0);
  t.same(dataOf(await h.call(read(0, data.length))), Buffer.alloc(data.length));
  t.equal(errnoOf(await h.call(cmd(NBD_CMD_CACHE, 0, 4096))), 0);
  t.equal(errnoOf(await h.call(cmd(NBD_CMD_READ, 0, 0))), 0, 'empty read succeeds');
  const emptyRead = await h.call(read(0, 0));
  t.equal(emptyRead.kind === 'structured' && emptyRead.type, NBD_REPLY_TYPE_NONE);
});

t.test('BLOCK_STATUS reports data, holes and honours REQ_ONE', async (t) => {
  const h = harness();
  await h.call(write(65536, 4096), Buffer.alloc(4096, 7));
  const reply = await h.call(cmd(NBD_CMD_BLOCK_STATUS, 0, 4 * 65536));
  t.equal(reply.kind === 'structured' && reply.type, NBD_REPLY_TYPE_BLOCK_STATUS);
  const status = decodeBlockStatusPayload(reply.kind === 'structured' ? reply.payload : Buffer.alloc(0));
  if (status instanceof ProtocolError) throw status;
  t.same(status.descriptors, [
    { lengthBytes: 65536, flags: NBD_STATE_HOLE | NBD_STATE_ZERO },
    { lengthBytes: 65536, flags: 0 },
    { lengthBytes: 131072, flags: NBD_STATE_HOLE | NBD_STATE_ZERO },
  ]);
  const one = await h.call(cmd(NBD_CMD_BLOCK_STATUS, 0, 4 * 65536, NBD_CMD_FLAG_REQ_ONE));
  const single = decodeBlockStatusPayload(one.kind === 'structured' ? one.payload : Buffer.alloc(0));
  t.equal(single instanceof ProtocolError ? -1 : single.descriptors.length, 1);
});

t.test('BLOCK_STATUS on a device without it reports status 0 for the whole range', async (t) => {
  const h = harness({ capabilities: { blockStatus: false } });
  const reply = await h.call(cmd(NBD_CMD_BLOCK_STATUS, 0, 8192));
  const status = decodeBlockStatusPayload(reply.kind === 'structured' ? reply.payload : Buffer.alloc(0));
  t.same(status instanceof ProtocolError ? [] : status.descriptors, [{ lengthBytes: 8192, flags: 0 }]);
  t.equal(h.device.stats.blockStatusCalls, 0);
});

t.test('edge errors: range, read-only, unnegotiated block status, oversized write', async (t) => {
  const h = harness();
  t.equal(errnoOf(await h.call(read(SIZE, 512))), NBD_EINVAL);
  t.equal(errnoOf(await h.call(write(SIZE - 256, 512), Buffer.alloc(512))), NBD_ENOSPC);
  t.equal(errnoOf(await h.call(write(0, 64 << 20), undefined, true)), NBD_EINVAL);
  t.equal(h.device.stats.writes, 0, 'nothing invalid reaches the device');
  const readOnly = harness({ readOnly: true });
  t.equal(errnoOf(await readOnly.call(write(0, 512), Buffer.alloc(512))), NBD_EPERM);
  const noContext = harness({ blockStatus: false });
  t.equal(errnoOf(await noContext.call(cmd(NBD_CMD_BLOCK_STATUS, 0, 512))), NBD_EINVAL);
});

t.test('device errors are mapped to errnos, structured errors carry the message', async (t) => {
  const h = harness();
  h.device.failNext('read', new PlinthError('IO_ERROR', 'replica unreachable'));
  const failed = await h.call(read(0, 4096));
  t.equal(failed.kind === 'structured' && failed.type, NBD_REPLY_TYPE_ERROR, 'a READ error is still structured');
  const chunk = decodeErrorChunk(failed.kind === 'structured' ? failed.payload : Buffer.alloc(0));
  t.same(chunk instanceof ProtocolError ? undefined : chunk, { error: NBD_EIO, message: 'replica unreachable' });
  h.device.failNext('flush', new Error('unexpected'));
  t.equal(errnoOf(await h.call(cmd(NBD_CMD_FLUSH))), NBD_EIO);
  h.device.failNext('write', new PlinthError('NO_SPACE', 'pool full'));
  t.equal(errnoOf(await h.call(write(0, 512), Buffer.alloc(512))), NBD_ENOSPC);
  const fastZero = await h.call(cmd(NBD_CMD_WRITE_ZEROES, 0, 4096, NBD_CMD_FLAG_FAST_ZERO | NBD_CMD_FLAG_NO_HOLE));
  t.equal(errnoOf(fastZero), NBD_ENOTSUP, 'proto.md: FAST_ZERO that cannot be fast fails with ENOTSUP');
  t.equal(errnoOf(await h.call(cmd(NBD_CMD_WRITE_ZEROES, 0, 4096, NBD_CMD_FLAG_FAST_ZERO))), 0);
});

t.test('simple replies carry the errno and no data on a failed READ', async (t) => {
  const h = harness({ structured: false });
  h.device.failNext('read', new PlinthError('IO_ERROR', 'bad sector'));
  const reply = await h.call(read(0, 4096));
  t.equal(reply.kind, 'simple');
  t.equal(errnoOf(reply), NBD_EIO);
  t.equal(reply.totalBytes, 16, 'proto.md: no payload after an error');
});

t.test('replies go out in completion order, not request order', async (t) => {
  const h = harness();
  const order: string[] = [];
  let releaseSlow: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    releaseSlow = resolve;
  });
  const realFlush = h.device.flush.bind(h.device);
  h.device.flush = async () => {
    await gate;
    return realFlush();
  };
  const slow = h.call(cmd(NBD_CMD_FLUSH)).then(() => order.push('flush'));
  const fast = h.call(read(0, 512)).then(() => order.push('read'));
  await fast;
  releaseSlow();
  await slow;
  t.same(order, ['read', 'flush']);
});

t.test('during shutdown requests are answered with ESHUTDOWN', async (t) => {
  const h = harness();
  const replies: Buffer[] = [];
  const session = new TransmissionSession(
    {
      negotiated: {
        exportName: 'vol',
        handle: { description: { id: 'vol-id', name: 'vol', description: '', sizeBytes: SIZE, readOnly: false, capabilities: h.device.capabilities, blockSize: h.device.blockSize }, device: h.device, release: () => undefined },
        sizeBytes: SIZE,
        transmissionFlags: 1,
        blockSize: { minimumBytes: 1, preferredBytes: 4096, maximumBytes: 1 << 20 },
        structuredReplies: false,
        blockStatusContextId: undefined,
      },
      limits: resolveNbdLimits(),
      connectionLabel: 'test',
    },
    { sink: { sendReply: (reply) => replies.push(reply), requestFinished: () => undefined }, logger: pino({ level: 'silent' }) },
  );
  session.rejectForShutdown({ kind: 'request', header: { ...read(0, 512), handle: 9n }, payload: undefined, payloadDiscarded: false });
  const reply = decodeTransmissionReply(replies[0] ?? Buffer.alloc(0), () => 512);
  t.equal(reply instanceof ProtocolError || reply === undefined ? -1 : errnoOf(reply), NBD_ESHUTDOWN);
});
