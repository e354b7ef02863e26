import t from 'tap';
import { BufferPool } from '../../../blockdev/buffer-pool.js';
import { NBD_CMD_WRITE, NBD_REQUEST_MAGIC } from '../../../blockdev/nbd/constants.js';
import { FrameReader } from '../../../blockdev/nbd/frame-reader.js';
import { ProtocolError } from '../../../blockdev/nbd/protocol-error.js';

/** Recycled READ reply / WRITE payload buffers (buffer-pool.ts). */

const OPTIONS = { minPooledBytes: 64 * 1024, maxBufferBytes: 4 * 1024 * 1024, maxIdleBytes: 3 * (1024 * 1024 + 64) };

t.test('a released buffer is reused for the next request of its size class', async (t) => {
  const pool = new BufferPool(OPTIONS);
  const first = pool.acquire(1024 * 1024 + 32);
  t.equal(first.length, 1024 * 1024 + 32, 'exact length (1 MiB read reply with its header)');
  t.equal(first.buffer.byteLength, 1024 * 1024 + 64, 'the 1 MiB class, not 2 MiB');
  t.equal(pool.isLent(first), true);
  pool.release(first);
  t.equal(pool.isLent(first), false);
  t.equal(pool.idleBytes, 1024 * 1024 + 64);
  const second = pool.acquire(1024 * 1024);
  t.equal(second.buffer, first.buffer, 'same backing store');
  t.equal(second.length, 1024 * 1024);
  t.equal(pool.idleBytes, 0);
  const third = pool.acquire(1024 * 1024);
  t.not(third.buffer, first.buffer, 'a lent buffer is never handed out twice');
});

t.test('releasing twice throws; foreign buffers are ignored', async (t) => {
  const pool = new BufferPool(OPTIONS);
  const buffer = pool.acquire(128 * 1024);
  pool.release(buffer);
  t.throws(() => pool.release(buffer), { code: 'INTERNAL' });
  pool.release(Buffer.alloc(128 * 1024));
  pool.release(Buffer.from('small'));
  t.equal(pool.idleBytes, 128 * 1024 + 64, 'only the pooled buffer is idle');
});

t.test('small and oversized requests are plain allocations; idle bytes are bounded', async (t) => {
  const pool = new BufferPool(OPTIONS);
  const small = pool.acquire(4096);
  const huge = pool.acquire(8 * 1024 * 1024);
  t.equal(pool.isLent(small), false);
  t.equal(pool.isLent(huge), false);
  const lent = [1, 2, 3, 4, 5].map(() => pool.acquire(1024 * 1024));
  for (const buffer of lent) pool.release(buffer);
  t.equal(pool.idleBytes, 3 * (1024 * 1024 + 64), 'beyond maxIdleBytes buffers go to the GC');
});

t.test('the frame reader assembles a WRITE payload that spans chunks in a pooled buffer', async (t) => {
  const pool = new BufferPool({ minPooledBytes: 1024, maxBufferBytes: 1024 * 1024, maxIdleBytes: 1024 * 1024 });
  const reader = new FrameReader({ maxOptionDataBytes: 1024, maxPayloadBytes: 1024 * 1024, maxDiscardedWriteBytes: 2 * 1024 * 1024 }, pool);
  reader.startTransmission();
  const payload = Buffer.alloc(64 * 1024, 0x5a);
  const header = Buffer.alloc(28);
  header.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
  header.writeUInt16BE(NBD_CMD_WRITE, 6);
  header.writeBigUInt64BE(7n, 8);
  header.writeUInt32BE(payload.length, 24);
  const wire = Buffer.concat([header, payload]);
  reader.push(wire.subarray(0, 1000));
  t.equal(reader.next(), undefined, 'payload incomplete');
  reader.push(wire.subarray(1000));
  const message = reader.next();
  if (message === undefined || message instanceof ProtocolError || message.kind !== 'request' || message.payload === undefined) {
    t.fail('expected a WRITE request with its payload');
    return;
  }
  t.ok(message.payload.equals(payload), 'same bytes');
  t.equal(pool.isLent(message.payload), true, 'assembled in a pooled buffer');
  pool.release(message.payload);
  t.equal(pool.idleBytes > 0, true);
});
