import t, { type Test } from 'tap';
import { RangeLock } from '../../../blockdev/volume/range-lock.js';
import { dataOut, scsiCommand, wire } from './helpers/initiator-pdus.js';
import { eventually, startTestTarget } from './helpers/iscsi-test-server.js';
import { loginStatusOf, RawIscsiClient } from './helpers/raw-iscsi-client.js';

/**
 * The data path's concurrency (docs/iscsi.md "Benchmark"): commands of one
 * connection run side by side up to the CmdSN window, not one at a time,
 * and the range lock that keeps COMPARE AND WRITE atomic costs nothing when
 * nothing overlaps.
 */

const VOL1 = 'iqn.2026-11.io.plinth:vol1';
const DEPTH = 32;

function cdb10(opcode: number, lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = opcode;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt16BE(blocks, 7);
  return cdb;
}

t.test('32 pipelined writes are all executing at once, then all answered', async (t) => {
  const target = await startTestTarget(t);
  const client = await RawIscsiClient.open(target.port);
  t.teardown(() => client.destroy());
  t.equal(loginStatusOf(await client.login({ target: VOL1, extra: [{ key: 'ImmediateData', value: 'Yes' }] })), 0);
  let open: () => void = () => undefined;
  target.registry.hold(new Promise<void>((resolve) => (open = resolve)));
  // All commands in one socket write: the target must not wait for one to end before starting the next.
  const frames: Buffer[] = [];
  for (let index = 0; index < DEPTH; index += 1) {
    const data = Buffer.alloc(4096, index + 1);
    frames.push(wire(scsiCommand({ itt: 100 + index, edtl: data.length, cmdSN: 1 + index, write: true, cdb: cdb10(0x2a, index * 8, 8), data })));
  }
  client.sendRaw(Buffer.concat(frames));
  t.ok(await eventually(() => target.registry.tasks.length === DEPTH), `all ${DEPTH} commands reached the device server while none had ended`);
  t.ok(await client.silentFor(50), 'no answer while the device holds them');
  open();
  const answered = new Set<number>();
  let statSN: number | undefined;
  for (let index = 0; index < DEPTH; index += 1) {
    const pdu = await client.read();
    t.equal((pdu.bhs[0] ?? 0) & 0x3f, 0x21, 'SCSI Response');
    t.equal(pdu.bhs[3], 0, 'GOOD');
    const itt = pdu.bhs.readUInt32BE(16);
    answered.add(itt);
    const next = pdu.bhs.readUInt32BE(24);
    if (statSN !== undefined) t.equal(next, statSN + 1, 'StatSN counts up by one per response');
    statSN = next;
  }
  t.equal(answered.size, DEPTH, 'every command answered once');
  const device = target.devices.get('vol1');
  const check = Buffer.alloc(4096);
  await device?.read(31 * 4096, check);
  t.ok(check.equals(Buffer.alloc(4096, 32)), 'the last write landed');
});

t.test('pipelined reads return their own data, round after round of recycled buffers', async (t) => {
  const target = await startTestTarget(t);
  const device = target.devices.get('vol1');
  const client = await RawIscsiClient.open(target.port);
  t.teardown(() => client.destroy());
  t.equal(loginStatusOf(await client.login({ target: VOL1 })), 0);
  const ROUNDS = 3;
  for (let round = 0; round < ROUNDS; round += 1) {
    const fill = (index: number): number => (0x10 + round * DEPTH + index) & 0xff;
    for (let index = 0; index < DEPTH; index += 1) await device?.write(index * 4096, Buffer.alloc(4096, fill(index)));
    const frames: Buffer[] = [];
    for (let index = 0; index < DEPTH; index += 1) {
      frames.push(wire(scsiCommand({ itt: 500 + index, edtl: 4096, cmdSN: 1 + round * DEPTH + index, read: true, cdb: cdb10(0x28, index * 8, 8) })));
    }
    client.sendRaw(Buffer.concat(frames));
    for (let index = 0; index < DEPTH; index += 1) {
      const pdu = await client.read();
      t.equal((pdu.bhs[0] ?? 0) & 0x3f, 0x25, 'Data-In');
      t.equal(pdu.bhs[1] ?? 0, 0x81, 'F and S: status collapsed into the only Data-In');
      const which = pdu.bhs.readUInt32BE(16) - 500;
      t.ok(pdu.data.equals(Buffer.alloc(4096, fill(which))), `round ${round}: read ${which} carries its own blocks`);
    }
  }
});

/** Answer R2Ts with Data-Out until the SCSI Response; returns its status byte. */
async function writeThroughR2T(client: RawIscsiClient, itt: number, payload: Buffer): Promise<number> {
  for (;;) {
    const pdu = await client.read();
    const opcode = (pdu.bhs[0] ?? 0) & 0x3f;
    if (opcode === 0x21) return pdu.bhs[3] ?? -1;
    if (opcode !== 0x31) throw new Error(`unexpected opcode 0x${opcode.toString(16)}`);
    const ttt = pdu.bhs.readUInt32BE(20);
    const start = pdu.bhs.readUInt32BE(40);
    const length = pdu.bhs.readUInt32BE(44);
    for (let sent = 0, dataSN = 0; sent < length; dataSN += 1) {
      const piece = Math.min(64 * 1024, length - sent);
      client.send(dataOut({ final: sent + piece === length, itt, ttt, dataSN, bufferOffset: start + sent, data: payload.subarray(start + sent, start + sent + piece) }));
      sent += piece;
    }
  }
}

/** A target and a client logged in to vol1 whose Data-In segments are at most 64 KiB (four per 256 KiB transfer). */
async function loggedInWith64KiBSegments(t: Test): Promise<{ target: Awaited<ReturnType<typeof startTestTarget>>; client: RawIscsiClient }> {
  const target = await startTestTarget(t);
  const client = await RawIscsiClient.open(target.port);
  t.teardown(() => client.destroy());
  const login = await client.login({ target: VOL1, extra: [{ key: 'MaxRecvDataSegmentLength', value: '65536' }] });
  t.equal(loginStatusOf(login), 0);
  return { target, client };
}

/** The transfer size of the large-I/O tests, in bytes and 512-byte blocks. */
const LARGE_BYTES = 256 * 1024;
const LARGE_BLOCKS = LARGE_BYTES / 512;

t.test('large writes assembled in recycled buffers keep their own data', async (t) => {
  const { target, client } = await loggedInWith64KiBSegments(t);
  // Three writes in turn: the second and third reuse the first one's buffer once it is released.
  for (let round = 0; round < 3; round += 1) {
    const payload = Buffer.alloc(LARGE_BYTES, 0x11 * (round + 1));
    payload.writeUInt32BE(round, 100);
    client.send(scsiCommand({ itt: 900 + round, edtl: LARGE_BYTES, cmdSN: 1 + round, write: true, cdb: cdb10(0x2a, round * LARGE_BLOCKS, LARGE_BLOCKS) }));
    t.equal(await writeThroughR2T(client, 900 + round, payload), 0, `write ${round} GOOD`);
  }
  const device = target.devices.get('vol1');
  for (let round = 0; round < 3; round += 1) {
    const expected = Buffer.alloc(LARGE_BYTES, 0x11 * (round + 1));
    expected.writeUInt32BE(round, 100);
    const stored = Buffer.alloc(LARGE_BYTES);
    await device?.read(round * LARGE_BYTES, stored);
    t.ok(stored.equals(expected), `write ${round} landed intact`);
  }
});

t.test('large reads from recycled buffers keep their own data while replies wait to be sent', async (t) => {
  const { target, client } = await loggedInWith64KiBSegments(t);
  const regions = 4;
  const device = target.devices.get('vol1');
  for (let region = 0; region < regions; region += 1) {
    const pattern = Buffer.alloc(LARGE_BYTES, 0x21 * (region + 1));
    pattern.writeUInt32BE(region, 1000);
    await device?.write(region * LARGE_BYTES, pattern);
  }
  let cmdSN = 1;
  // Rounds of pipelined reads: later rounds read into buffers the earlier ones gave back.
  for (let round = 0; round < 3; round += 1) {
    const frames: Buffer[] = [];
    for (let region = 0; region < regions; region += 1) {
      frames.push(wire(scsiCommand({ itt: 2000 + round * 10 + region, edtl: LARGE_BYTES, cmdSN, read: true, cdb: cdb10(0x28, region * LARGE_BLOCKS, LARGE_BLOCKS) })));
      cmdSN += 1;
    }
    client.sendRaw(Buffer.concat(frames));
    const received = new Map<number, Buffer>();
    let answered = 0;
    while (answered < regions) {
      const pdu = await client.read();
      t.equal((pdu.bhs[0] ?? 0) & 0x3f, 0x25, 'Data-In');
      const itt = pdu.bhs.readUInt32BE(16);
      const data = received.get(itt) ?? Buffer.alloc(LARGE_BYTES);
      pdu.data.copy(data, pdu.bhs.readUInt32BE(40));
      received.set(itt, data);
      if (((pdu.bhs[1] ?? 0) & 0x01) !== 0) answered += 1; // phase-collapsed status on the last one
    }
    for (let region = 0; region < regions; region += 1) {
      const expected = Buffer.alloc(LARGE_BYTES, 0x21 * (region + 1));
      expected.writeUInt32BE(region, 1000);
      t.ok(received.get(2000 + round * 10 + region)?.equals(expected), `round ${round}: read of region ${region} is its own data`);
    }
  }
});

t.test('range lock: free ranges need no lock, waiters wake on release', async (t) => {
  const lock = new RangeLock();
  t.ok(lock.isFree(0, 4096), 'nothing held');
  const held = lock.tryAcquire(0, 4096);
  t.ok(held !== undefined);
  t.notOk(lock.isFree(4000, 200), 'overlap is not free');
  t.ok(lock.isFree(4096, 4096), 'the adjacent range is free');
  const order: string[] = [];
  const first = lock.acquire(0, 512).then((release) => {
    order.push('first');
    return release;
  });
  const second = lock.acquire(1024, 512).then((release) => {
    order.push('second');
    return release;
  });
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.same(order, [], 'both wait behind the held range');
  held?.();
  const releases = await Promise.all([first, second]);
  t.same(order, ['first', 'second'], 'one release wakes every waiter whose range became free, in arrival order');
  t.equal(lock.size(), 2);
  // A waiter that still overlaps after a wake-up waits again.
  const third = lock.acquire(0, 2048);
  let thirdDone = false;
  void third.then(() => (thirdDone = true));
  releases[0]?.();
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.equal(thirdDone, false, 'still blocked by the second range');
  releases[1]?.();
  const release = await third;
  t.equal(thirdDone, true);
  release();
  t.equal(lock.size(), 0);
});
