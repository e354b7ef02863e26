import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { decodeErrorChunk, decodeOffsetData, decodeTransmissionReply, type TransmissionReply } from '../../../blockdev/nbd/client-codec.js';
import { NBD_CMD_FLAG_FUA, NBD_CMD_READ, NBD_CMD_WRITE, NBD_REPLY_TYPE_ERROR, NBD_REPLY_TYPE_OFFSET_DATA } from '../../../blockdev/nbd/constants.js';
import { advertisedBlockSize, transmissionFlagsFor } from '../../../blockdev/nbd/export-flags.js';
import { resolveNbdLimits } from '../../../blockdev/nbd/limits.js';
import { ProtocolError } from '../../../blockdev/nbd/protocol-error.js';
import { type ReplySink, TransmissionSession } from '../../../blockdev/nbd/transmission.js';
import type { VolumeStore } from '../../../blockdev/pool/pool-types.js';
import { EXTENT, makeTempDir, openTestDb, openTestPool, pattern } from '../pool/pool-fixture.js';

/**
 * The transmission's fast paths (perf round 2) against a real pool volume
 * store: inline READ/WRITE replies sent from inside dispatch(), WRITE
 * payloads as chunk lists (device writev), and their fallbacks, all
 * byte-exact and with every request's budget given back.
 */

const SIZE = 8 * EXTENT;

interface Harness {
  write(offset: number, payload: Buffer | readonly Buffer[], flags?: number): Promise<TransmissionReply>;
  read(offset: number, lengthBytes: number): Promise<TransmissionReply>;
  readonly outstanding: () => number;
  /** Every reply buffer as the sink received it (not copied). */
  readonly received: Buffer[];
}

/** `copiedReplyMaxBytes`: the sink promises to copy replies this long (and does: it decodes a copy). */
function harness(device: VolumeStore, structuredReplies: boolean, copiedReplyMaxBytes?: number): Harness {
  const limits = resolveNbdLimits();
  const waiting = new Map<bigint, (reply: TransmissionReply) => void>();
  const readLengths = new Map<bigint, number>();
  let outstanding = 0;
  const received: Buffer[] = [];
  const sink: ReplySink = {
    ...(copiedReplyMaxBytes === undefined ? {} : { copiedReplyMaxBytes }),
    sendReply(sent) {
      received.push(sent);
      const bytes = copiedReplyMaxBytes !== undefined && sent.length <= copiedReplyMaxBytes ? Buffer.from(sent) : sent;
      const reply = decodeTransmissionReply(bytes, (handle) => readLengths.get(handle));
      if (reply === undefined || reply instanceof ProtocolError || reply.totalBytes !== bytes.length) throw new Error('malformed reply');
      waiting.get(reply.handle)?.(reply);
    },
    requestFinished() {
      outstanding -= 1;
    },
  };
  const description = { id: 'vol-id', name: 'vol', description: '', sizeBytes: SIZE, readOnly: false, capabilities: device.capabilities, blockSize: device.blockSize };
  const session = new TransmissionSession(
    {
      negotiated: {
        exportName: 'vol',
        handle: { description, device, release: () => undefined },
        sizeBytes: SIZE,
        transmissionFlags: transmissionFlagsFor({ capabilities: device.capabilities, readOnly: false, structuredReplies }),
        blockSize: advertisedBlockSize(device.blockSize, limits.maxPayloadBytes),
        structuredReplies,
        blockStatusContextId: undefined,
      },
      limits,
      connectionLabel: 'test',
    },
    { sink, logger: pino({ level: 'silent' }) },
  );
  let nextHandle = 1n;
  const send = (type: number, offset: number, lengthBytes: number, flags: number, payload?: Buffer | readonly Buffer[]): Promise<TransmissionReply> => {
    const handle = nextHandle;
    nextHandle += 1n;
    if (type === NBD_CMD_READ) readLengths.set(handle, lengthBytes);
    const reply = new Promise<TransmissionReply>((resolve) => waiting.set(handle, resolve));
    outstanding += 1;
    const header = { flags, type, handle, offset, lengthBytes };
    if (payload === undefined || Buffer.isBuffer(payload)) {
      session.dispatch({ kind: 'request', header, payload, payloadDiscarded: false });
    } else {
      session.dispatch({ kind: 'request', header, payload: undefined, payloadChunks: payload, payloadDiscarded: false });
    }
    return reply;
  };
  return {
    write: (offset, payload, flags = 0) => {
      const lengthBytes = Buffer.isBuffer(payload) ? payload.length : payload.reduce((sum, chunk) => sum + chunk.length, 0);
      return send(NBD_CMD_WRITE, offset, lengthBytes, flags, payload);
    },
    read: (offset, lengthBytes) => send(NBD_CMD_READ, offset, lengthBytes, 0),
    outstanding: () => outstanding,
    received,
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

for (const structured of [true, false]) {
  t.test(`fast and slow paths agree byte for byte (${structured ? 'structured' : 'simple'} replies)`, async (t) => {
    const dir = await makeTempDir(t);
    const db = openTestDb(t, dir);
    const pool = await openTestPool(t, db, { disks: [{ path: join(dir, 'disk0'), sizeBytes: 64 * EXTENT }] });
    const volume = await pool.openVolume('v', SIZE);
    const h = harness(volume, structured);
    const expected = Buffer.alloc(SIZE);
    const put = async (offset: number, data: Buffer, payload: Buffer | readonly Buffer[], flags = 0): Promise<void> => {
      t.equal(errnoOf(await h.write(offset, payload, flags)), 0, `write at ${offset}`);
      data.copy(expected, offset);
    };
    const first = pattern(4096, 1);
    await put(8192, first, first); // unmapped: async allocation
    const second = pattern(4096, 2);
    await put(4096, second, second); // mapped: inline
    const fua = pattern(512, 3);
    await put(100, fua, fua, NBD_CMD_FLAG_FUA); // FUA: write() then flush
    const large = pattern(2 * EXTENT + 300, 4);
    await put(EXTENT - 77, large, [large.subarray(0, 5), large.subarray(5, EXTENT), large.subarray(EXTENT)]); // chunks: writev
    t.equal(h.outstanding(), 0, 'every request gave back its budget');

    for (const [offset, lengthBytes] of [[4096, 4096], [0, 100], [EXTENT - 100, 200], [0, 3 * EXTENT], [5 * EXTENT, 4096]] as const) {
      const reply = await h.read(offset, lengthBytes);
      t.same(dataOf(reply), expected.subarray(offset, offset + lengthBytes), `read [${offset}, +${lengthBytes})`);
    }
    t.equal(h.outstanding(), 0);

    await volume.close();
    t.not(errnoOf(await h.read(0, 4096)), 0, 'an inline read of a closed store fails with an errno');
    t.not(errnoOf(await h.write(0, Buffer.alloc(4096))), 0, 'so does a write');
    t.equal(h.outstanding(), 0, 'failed requests gave back their budget too');
  });
}

t.test('small inline READ replies reuse one scratch only when the sink copies them', async (t) => {
  const dir = await makeTempDir(t);
  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks: [{ path: join(dir, 'disk0'), sizeBytes: 64 * EXTENT }] });
  const volume = await pool.openVolume('v', SIZE);
  const blocks = [pattern(4096, 11), pattern(4096, 12), pattern(4096, 13)];
  const writer = harness(volume, true);
  for (const [index, block] of blocks.entries()) t.equal(errnoOf(await writer.write(index * 4096, block)), 0);

  const copying = harness(volume, true, 64 * 1024);
  for (const [index, block] of blocks.entries()) t.same(dataOf(await copying.read(index * 4096, 4096)), block, `copied reply ${index}`);
  const backing = new Set(copying.received.map((reply) => reply.buffer));
  t.equal(backing.size, 1, 'three replies, one scratch: no ArrayBuffer per read');

  // A sink that keeps what it is given must get buffers nobody writes again.
  const keeping = harness(volume, true);
  for (const [index] of blocks.entries()) await keeping.read(index * 4096, 4096);
  t.equal(new Set(keeping.received.map((reply) => reply.buffer)).size, keeping.received.length, 'a buffer of its own per reply');
  for (const [index, block] of blocks.entries()) {
    const reply = decodeTransmissionReply(keeping.received[index] ?? Buffer.alloc(0), () => 4096);
    if (reply === undefined || reply instanceof ProtocolError) throw new Error('malformed kept reply');
    t.same(dataOf(reply), block, `kept reply ${index} is still intact after later reads`);
  }
});
