import t from 'tap';
import { SUPPORTED_COMMANDS } from '../../../blockdev/iscsi/scsi/scsi-command-table.js';
import { cdbLengthOf } from '../../../blockdev/iscsi/scsi/scsi-opcodes.js';
import type { ScsiLogicalUnitSession, ScsiResponse } from '../../../blockdev/iscsi/scsi/scsi-task.js';
import { createScsiFixture, send, senseOf } from './helpers/scsi-fixture.js';

/** REPORT SUPPORTED OPERATION CODES (SPC-4 §6.35) and the one command table behind it and the dispatchers. */

const MAINTENANCE_IN = 0xa3;
const REPORT_SUPPORTED_OPERATION_CODES = 0x0c;
const OPCODES_WITH_SERVICE_ACTIONS = [0x5e, 0x5f, 0x9e, 0xa3];

function rsocCdb(options: number, opcode = 0, serviceAction = 0, allocationLength = 65535, rctd = false): Buffer {
  const cdb = Buffer.alloc(12);
  cdb[0] = MAINTENANCE_IN;
  cdb[1] = REPORT_SUPPORTED_OPERATION_CODES;
  cdb[2] = (rctd ? 0x80 : 0) | options;
  cdb[3] = opcode;
  cdb.writeUInt16BE(serviceAction, 4);
  cdb.writeUInt32BE(allocationLength, 6);
  return cdb;
}

interface CommandDescriptor {
  readonly opcode: number;
  readonly serviceAction: number;
  readonly servactv: boolean;
  readonly ctdp: boolean;
  readonly cdbLength: number;
  readonly timeoutsLength?: number;
}

/** The all-commands parameter data (SPC-4 §6.35.2), parsed independently of the encoder. */
function parseAllCommands(data: Buffer): CommandDescriptor[] {
  const end = 4 + data.readUInt32BE(0);
  const out: CommandDescriptor[] = [];
  for (let at = 4; at < end; ) {
    const ctdp = ((data[at + 5] ?? 0) & 0x02) !== 0;
    const descriptor: CommandDescriptor = {
      opcode: data[at] ?? -1,
      serviceAction: data.readUInt16BE(at + 2),
      servactv: ((data[at + 5] ?? 0) & 0x01) !== 0,
      ctdp,
      cdbLength: data.readUInt16BE(at + 6),
      ...(ctdp ? { timeoutsLength: data.readUInt16BE(at + 8) } : {}),
    };
    out.push(descriptor);
    at += ctdp ? 20 : 8;
  }
  return out;
}

/** A fresh session may owe a unit attention (power on): clear it so the next answer is the command's own. */
async function settled(session: ScsiLogicalUnitSession): Promise<ScsiLogicalUnitSession> {
  for (let attempt = 0; attempt < 4; attempt += 1) {
    if ((await send(session, [0, 0, 0, 0, 0, 0])).status === 0) {
      return session;
    }
  }
  throw new Error('TEST UNIT READY never succeeded');
}

function isInvalidOpcode(response: ScsiResponse): boolean {
  return response.status === 2 && senseOf(response).asc === 0x20;
}

function isInvalidServiceAction(response: ScsiResponse): boolean {
  if (response.status !== 2) {
    return false;
  }
  const sense = senseOf(response);
  return sense.asc === 0x24 && sense.fieldPointer?.inCdb === true && sense.fieldPointer.byte === 1;
}

for (const [label, deviceOptions] of [
  ['thin', {}],
  ['thick', { capabilities: { trim: false } }],
] as const) {
  t.test(`the dispatchers accept exactly the commands REPORT SUPPORTED OPERATION CODES lists (${label} volume)`, async (t) => {
    const fixture = createScsiFixture(deviceOptions);
    const session = await settled(fixture.open());
    const listed = parseAllCommands((await send(session, rsocCdb(0))).dataIn ?? Buffer.alloc(0));
    const listedKeys = new Set(listed.map((command) => `${command.opcode}/${command.servactv ? command.serviceAction : '-'}`));
    const drift: string[] = [];
    for (let opcode = 0; opcode < 256; opcode += 1) {
      if (OPCODES_WITH_SERVICE_ACTIONS.includes(opcode)) {
        for (let serviceAction = 0; serviceAction < 32; serviceAction += 1) {
          const cdb = Buffer.alloc(16);
          cdb[0] = opcode;
          cdb[1] = serviceAction;
          const accepted = !isInvalidServiceAction(await send(session, cdb, { expectedDataTransferLength: 0 }));
          if (accepted !== listedKeys.has(`${opcode}/${serviceAction}`)) {
            drift.push(`0x${opcode.toString(16)}/${serviceAction}: accepted ${accepted}`);
          }
        }
        continue;
      }
      const accepted = !isInvalidOpcode(await send(session, [opcode], { expectedDataTransferLength: 0 }));
      if (accepted !== listedKeys.has(`${opcode}/-`)) {
        drift.push(`0x${opcode.toString(16)}: accepted ${accepted}`);
      }
    }
    t.same(drift, [], 'no opcode or service action is dispatched without being listed, or listed without being dispatched');
    t.equal(listedKeys.has(`${0x42}/-`), label === 'thin', 'UNMAP only on a thin volume');
    t.ok(listedKeys.has(`${0x8b}/-`), 'ORWRITE(16)');
    t.ok(listedKeys.has(`${MAINTENANCE_IN}/${REPORT_SUPPORTED_OPERATION_CODES}`), 'itself');
  });
}

t.test('reporting option 000b lists every command, with and without command timeouts descriptors', async (t) => {
  const session = await settled(createScsiFixture().open());
  const plain = parseAllCommands((await send(session, rsocCdb(0))).dataIn ?? Buffer.alloc(0));
  t.equal(plain.length, SUPPORTED_COMMANDS.length, 'one descriptor per table row');
  t.ok(plain.every((command) => !command.ctdp), 'no CTDP without RCTD');
  t.ok(plain.every((command) => command.servactv || command.serviceAction === 0), 'SERVICE ACTION 0 when SERVACTV is clear');
  const wrongLength = plain.filter((command) => command.cdbLength !== cdbLengthOf(command.opcode));
  t.same(wrongLength, [], 'every CDB LENGTH is the length the opcode group implies');
  const sorted = [...plain].sort((a, b) => a.opcode - b.opcode || a.serviceAction - b.serviceAction);
  t.same(plain, sorted, 'ascending by opcode and service action');
  const timed = parseAllCommands((await send(session, rsocCdb(0, 0, 0, 65535, true))).dataIn ?? Buffer.alloc(0));
  t.equal(timed.length, plain.length);
  t.ok(timed.every((command) => command.ctdp && command.timeoutsLength === 0x0a), 'CTDP and a 0x0a-long timeouts descriptor each');
});

t.test('one command by opcode, by service action, or either (options 001b-011b)', async (t) => {
  const session = await settled(createScsiFixture().open());
  const read10 = await send(session, rsocCdb(1, 0x28));
  t.equal(read10.status, 0);
  const data = read10.dataIn ?? Buffer.alloc(0);
  t.equal((data[1] ?? 0) & 0x07, 0b011, 'SUPPORT: supported as the standard says');
  t.equal(data.readUInt16BE(2), 10, 'CDB SIZE');
  t.equal(data[4], 0x28, 'usage data byte 0 is the opcode');
  t.equal((data[5] ?? 0) & 0x18, 0x18, 'DPO and FUA are used (MODE SENSE reports DPOFUA)');
  t.match(senseOf(await send(session, rsocCdb(2, 0x28))), { key: 0x5, asc: 0x24 }, 'option 010b for an opcode without service actions');
  t.match(senseOf(await send(session, rsocCdb(1, 0x9e, 0x10))), { key: 0x5, asc: 0x24 }, 'option 001b for an opcode with service actions');
  const capacity = (await send(session, rsocCdb(2, 0x9e, 0x10))).dataIn ?? Buffer.alloc(0);
  t.equal((capacity[1] ?? 0) & 0x07, 0b011);
  t.same([...capacity.subarray(4, 6)], [0x9e, 0x10], 'the service action sits in its field of the usage data');
  const either = (await send(session, rsocCdb(3, 0x9e, 0x12))).dataIn ?? Buffer.alloc(0);
  t.equal(either[5], 0x12, 'option 011b with a service action: GET LBA STATUS');
  const eitherPlain = (await send(session, rsocCdb(3, 0x8b, 7))).dataIn ?? Buffer.alloc(0);
  t.equal(eitherPlain[4], 0x8b, 'option 011b without one ignores the service action: ORWRITE(16)');
  const timed = (await send(session, rsocCdb(1, 0x8b, 0, 65535, true))).dataIn ?? Buffer.alloc(0);
  t.equal((timed[1] ?? 0) & 0x80, 0x80, 'CTDP');
  t.equal(timed.length, 4 + 16 + 12, 'usage data then the timeouts descriptor');
  t.equal(timed.readUInt16BE(20), 0x0a);
  const formatUnit = (await send(session, rsocCdb(1, 0x04))).dataIn ?? Buffer.alloc(0);
  t.same([...formatUnit], [0, 0b001, 0, 0], 'FORMAT UNIT: not supported, no usage data');
  const registerAndMove = (await send(session, rsocCdb(2, 0x5f, 7))).dataIn ?? Buffer.alloc(0);
  t.equal((registerAndMove[1] ?? 0) & 0x07, 0b001, 'PERSISTENT RESERVE OUT REGISTER AND MOVE: not supported');
});

t.test('field checks and the allocation length', async (t) => {
  const session = await settled(createScsiFixture().open());
  for (const options of [4, 5, 6, 7]) {
    t.match(senseOf(await send(session, rsocCdb(options))), { key: 0x5, asc: 0x24, fieldPointer: { byte: 2 } }, `reporting option ${options}`);
  }
  const reserved = rsocCdb(0);
  reserved[2] = 0x40;
  t.match(senseOf(await send(session, reserved)), { key: 0x5, asc: 0x24 }, 'reserved bits of byte 2');
  const full = (await send(session, rsocCdb(0))).dataIn ?? Buffer.alloc(0);
  const cut = await send(session, rsocCdb(0, 0, 0, 12));
  t.equal(cut.status, 0);
  t.same(cut.dataIn, full.subarray(0, 12), 'cut to the allocation length, COMMAND DATA LENGTH still whole');
  const other = Buffer.from(rsocCdb(0));
  other[1] = 0x0a; // REPORT TARGET PORT GROUPS: not supported
  t.match(senseOf(await send(session, other)), { key: 0x5, asc: 0x24, fieldPointer: { byte: 1 } }, 'another MAINTENANCE IN service action');
});
