import t from 'tap';
import type { ScsiLogicalUnitSession } from '../../../blockdev/iscsi/scsi/scsi-task.js';
import { BLOCK, cdb10, createScsiFixture, proutCdb, proutParameters, send, senseOf } from './helpers/scsi-fixture.js';

/** PERSISTENT RESERVE IN/OUT (SPC-4 §5.9, §6.15-6.16), RESERVE(6)/RELEASE(6), unit attentions, resets. */

const READ_10 = 0x28;
const WRITE_10 = 0x2a;
const CONFLICT = 0x18;

async function prout(session: ScsiLogicalUnitSession, action: number, key: bigint, serviceActionKey: bigint, type = 0): Promise<number> {
  const answer = await send(session, proutCdb(action, type), { dataOut: proutParameters(key, serviceActionKey) });
  return answer.status;
}

async function prin(session: ScsiLogicalUnitSession, action: number): Promise<Buffer> {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x5e;
  cdb[1] = action;
  cdb.writeUInt16BE(1024, 7);
  const answer = await send(session, cdb);
  return answer.dataIn ?? Buffer.alloc(0);
}

async function canRead(session: ScsiLogicalUnitSession): Promise<boolean> {
  const answer = await send(session, cdb10(READ_10, 0, 1));
  return answer.status === 0;
}

async function canWrite(session: ScsiLogicalUnitSession): Promise<boolean> {
  const answer = await send(session, cdb10(WRITE_10, 0, 1), { dataOut: Buffer.alloc(BLOCK) });
  return answer.status === 0;
}

const REGISTER = 0;
const RESERVE = 1;
const RELEASE = 2;
const CLEAR = 3;
const PREEMPT = 4;
const REGISTER_IGNORE = 6;

/** [type, registered other reads, writes, unregistered other reads, writes] as libiscsi's prout_reserve_access checks. */
const ACCESS_TABLE: [string, number, boolean, boolean, boolean, boolean][] = [
  ['write exclusive', 1, true, false, true, false],
  ['exclusive access', 3, false, false, false, false],
  ['write exclusive registrants only', 5, true, true, true, false],
  ['exclusive access registrants only', 6, true, true, false, false],
  ['write exclusive all registrants', 7, true, true, true, false],
  ['exclusive access all registrants', 8, true, true, false, false],
];

for (const [name, type, regRead, regWrite, unregRead, unregWrite] of ACCESS_TABLE) {
  t.test(`reservation conflict table: ${name}`, async (t) => {
    const fixture = createScsiFixture();
    const holder = fixture.open('iqn.2026-11.test:one');
    const other = fixture.open('iqn.2026-11.test:two');
    t.equal(await prout(holder, REGISTER_IGNORE, 0n, 0xabcn), 0);
    t.equal(await prout(other, REGISTER_IGNORE, 0n, 0xdefn), 0);
    t.equal(await prout(holder, RESERVE, 0xabcn, 0n, type), 0);
    const reservation = await prin(holder, 1);
    t.equal(reservation.readUInt32BE(4), 16);
    t.equal(reservation.readBigUInt64BE(8), type >= 7 ? 0n : 0xabcn, 'all-registrants types report key 0');
    t.equal(reservation[21], type);
    t.ok(await canRead(holder));
    t.ok(await canWrite(holder));
    t.equal(await canRead(other), regRead, 'registered other reads');
    t.equal(await canWrite(other), regWrite, 'registered other writes');
    t.equal(await prout(other, REGISTER, 0xdefn, 0n), 0, 'unregister the other');
    t.equal(await canRead(other), unregRead, 'unregistered other reads');
    t.equal(await canWrite(other), unregWrite, 'unregistered other writes');
    t.equal(await prout(holder, RELEASE, 0xabcn, 0n, type), 0);
    t.equal(await prout(holder, REGISTER, 0xabcn, 0n), 0);
    t.ok(await canWrite(other), 'free again');
  });
}

t.test('REGISTER rules, READ KEYS, generation', async (t) => {
  const fixture = createScsiFixture();
  const one = fixture.open('iqn.2026-11.test:one');
  t.equal(await prout(one, REGISTER, 5n, 7n), CONFLICT, 'unregistered nexus with a non-zero key');
  t.equal(await prout(one, REGISTER, 0n, 7n), 0);
  t.equal(await prout(one, REGISTER, 8n, 9n), CONFLICT, 'wrong key');
  t.equal(await prout(one, REGISTER, 7n, 9n), 0, 'change key');
  const keys = await prin(one, 0);
  t.equal(keys.readUInt32BE(0), 2, 'generation counts registrations');
  t.equal(keys.readUInt32BE(4), 8);
  t.equal(keys.readBigUInt64BE(8), 9n);
  t.equal(await prout(one, RESERVE, 1n, 0n, 1), CONFLICT, 'reserve with the wrong key');
  const badType = await send(one, proutCdb(RESERVE, 2), { dataOut: proutParameters(9n, 0n) });
  t.match(senseOf(badType), { key: 0x5, asc: 0x24 });
  t.equal((await prin(one, 2))[3], 0x80, 'PTPL_A = 0 before any APTPL');
  const aptpl = await send(one, proutCdb(REGISTER), { dataOut: proutParameters(9n, 10n, 0x01) });
  t.equal(aptpl.status, 0, 'APTPL is accepted: the reservations live in the cluster state (SPC-4 §5.9.4)');
  t.equal((await prin(one, 2))[3], 0x81, 'PTPL_A follows the last APTPL');
  t.equal(await prout(one, REGISTER, 10n, 9n), 0, 'back to key 9, APTPL 0');
  const shortList = Buffer.alloc(10);
  shortList[0] = 0x5f;
  shortList.writeUInt32BE(20, 5);
  t.match(senseOf(await send(one, shortList, { dataOut: Buffer.alloc(20) })), { key: 0x5, asc: 0x1a });
  const caps = await prin(one, 2);
  t.equal(caps.readUInt16BE(0), 8);
  t.equal(caps[2], 0x01, 'PTPL_C');
  t.equal(caps[3], 0x80, 'TMV, PTPL_A = 0 again');
  t.equal(caps[4], 0xea);
  const badIn = Buffer.alloc(10);
  badIn[0] = 0x5e;
  badIn[1] = 4;
  badIn.writeUInt16BE(64, 7);
  t.match(senseOf(await send(one, badIn)), { key: 0x5, asc: 0x24 });
  const full = await prin(one, 3);
  t.equal(full.readUInt32BE(4), 24 + full.readUInt32BE(28), 'one descriptor with its TransportID');
  t.match(full.subarray(36).toString('utf8'), /^iqn\.2026-11\.test:one,i,0x400000000001/);
});

t.test('RELEASE of the wrong type, CLEAR and PREEMPT queue unit attentions', async (t) => {
  const fixture = createScsiFixture();
  const one = fixture.open('iqn.2026-11.test:one');
  const two = fixture.open('iqn.2026-11.test:two');
  await prout(one, REGISTER, 0n, 1n);
  await prout(two, REGISTER, 0n, 2n);
  t.equal(await prout(one, RESERVE, 1n, 0n, 3), 0);
  const wrongType = await send(one, proutCdb(RELEASE, 1), { dataOut: proutParameters(1n, 0n) });
  t.match(senseOf(wrongType), { key: 0x5, asc: 0x26, ascq: 0x04 });
  t.equal(await prout(two, PREEMPT, 2n, 1n, 3), 0, 'two preempts one');
  const attention = await send(one, [0x00, 0, 0, 0, 0, 0]);
  t.match(senseOf(attention), { key: 0x6, asc: 0x2a, ascq: 0x05 }, 'REGISTRATIONS PREEMPTED');
  t.equal((await send(one, [0x00, 0, 0, 0, 0, 0])).status, 0, 'TEST UNIT READY passes any reservation');
  t.equal(await canRead(one), false, 'exclusive access: the preempted nexus conflicts');
  t.equal(await canWrite(two), true);
  t.equal(await prout(two, PREEMPT, 2n, 99n, 3), CONFLICT, 'nothing registered with that key');
  await prout(one, REGISTER, 0n, 3n);
  t.equal(await prout(two, CLEAR, 2n, 0n), 0);
  t.match(senseOf(await send(one, [0x00, 0, 0, 0, 0, 0])), { key: 0x6, asc: 0x2a, ascq: 0x03 }, 'RESERVATIONS PREEMPTED');
  t.equal((await prin(one, 0)).readUInt32BE(4), 0, 'no keys left');
});

t.test('RESERVE(6)/RELEASE(6) between two initiators, released by nexus loss', async (t) => {
  const fixture = createScsiFixture();
  const one = fixture.open('iqn.2026-11.test:one');
  const two = fixture.open('iqn.2026-11.test:two');
  const reserve6 = [0x16, 0, 0, 0, 0, 0];
  const release6 = [0x17, 0, 0, 0, 0, 0];
  const modeSense6 = [0x1a, 0, 0x3f, 0, 255, 0];
  t.equal((await send(one, reserve6)).status, 0);
  t.equal((await send(one, reserve6)).status, 0, 'the holder may reserve again');
  t.equal((await send(two, reserve6)).status, CONFLICT);
  t.equal((await send(two, release6)).status, 0, 'release by a non-holder is a no-op');
  t.equal((await send(one, modeSense6)).status, 0);
  t.equal((await send(two, modeSense6)).status, CONFLICT);
  t.equal((await send(two, [0x12, 0, 0, 0, 96, 0])).status, 0, 'INQUIRY passes a reservation');
  one.close();
  t.equal((await send(two, reserve6)).status, 0, 'nexus loss released it');
  t.equal((await send(two, release6)).status, 0);
});

t.test('LUN RESET releases RESERVE(6) and PREVENT and tells every nexus', async (t) => {
  const fixture = createScsiFixture();
  const one = fixture.open('iqn.2026-11.test:one');
  const two = fixture.open('iqn.2026-11.test:two');
  t.equal((await send(one, [0x16, 0, 0, 0, 0, 0])).status, 0);
  t.equal((await send(one, [0x1e, 0, 0, 0, 1, 0])).status, 0, 'PREVENT');
  t.equal(await one.taskManagement('lun-reset'), 'complete');
  t.match(senseOf(await send(two, [0x00, 0, 0, 0, 0, 0])), { key: 0x6, asc: 0x29, ascq: 0x03 });
  t.equal((await send(two, [0x00, 0, 0, 0, 0, 0])).status, 0, 'reported once');
  t.match(senseOf(await send(one, [0x00, 0, 0, 0, 0, 0])), { key: 0x6, asc: 0x29, ascq: 0x03 }, 'the nexus that reset too');
  t.equal((await send(two, [0x16, 0, 0, 0, 0, 0])).status, 0, 'reservation is gone');
  t.equal((await send(one, [0x1b, 0, 0, 0, 0x02, 0])).status, CONFLICT, 'eject by a non-holder conflicts');
  t.equal(await one.taskManagement('clear-aca'), 'not-supported');
});

t.test('REQUEST SENSE returns and clears a pending unit attention', async (t) => {
  const fixture = createScsiFixture();
  const one = fixture.open('iqn.2026-11.test:one');
  const two = fixture.open('iqn.2026-11.test:two');
  await one.taskManagement('target-warm-reset');
  const sense = await send(two, [0x03, 0, 0, 0, 252, 0]);
  t.equal(sense.status, 0);
  t.equal(sense.dataIn?.[2], 0x06);
  t.equal(sense.dataIn?.[12], 0x29);
  const after = await send(two, [0x03, 0, 0, 0, 252, 0]);
  t.equal(after.dataIn?.[2], 0x00, 'NO SENSE afterwards');
  t.equal((await send(two, [0x00, 0, 0, 0, 0, 0])).status, 0);
});

t.test('START STOP UNIT eject is refused while a nexus prevents removal', async (t) => {
  const fixture = createScsiFixture();
  const one = fixture.open();
  t.equal((await send(one, [0x1e, 0, 0, 0, 1, 0])).status, 0);
  t.match(senseOf(await send(one, [0x1b, 0, 0, 0, 0x02, 0])), { key: 0x5, asc: 0x53, ascq: 0x02 });
  t.equal((await send(one, [0x1b, 0, 0, 0, 0x01, 0])).status, 0, 'start is fine');
  t.equal((await send(one, [0x1e, 0, 0, 0, 0, 0])).status, 0, 'ALLOW');
  t.equal((await send(one, [0x1b, 0, 0, 0, 0x02, 0])).status, 0);
  t.match(senseOf(await send(one, [0x1e, 0, 0, 0, 2, 0])), { key: 0x5, asc: 0x24 });
  t.match(senseOf(await send(one, [0x1b, 0, 0, 0, 0x40, 0])), { key: 0x5, asc: 0x24 }, 'unknown power condition');
});
