import type { BlockDevice } from '../../../../blockdev/block-device.js';
import type { ExportDescription } from '../../../../blockdev/export-provider.js';
import {
  type InitiatorPort,
  type ScsiLogicalUnitSession,
  type ScsiResponse,
  ScsiStatus,
  type ScsiTargetRegistry,
  type ScsiTask,
  type TaskManagementFunction,
  type TaskManagementResult,
} from '../../../../blockdev/iscsi/scsi/scsi-task.js';

/**
 * A test double of the SCSI device server, just enough for transport tests:
 * INQUIRY (standard page), TEST UNIT READY, REPORT LUNS, READ CAPACITY
 * 10/16, READ(10), WRITE(10) over a BlockDevice with 512-byte blocks. It
 * records every task and task management call, and can hold execution
 * behind a gate so tests can catch tasks in flight.
 */

const BLOCK_BYTES = 512;

function sense(key: number, asc: number, ascq = 0): Buffer {
  const data = Buffer.alloc(18);
  data[0] = 0x70;
  data[2] = key;
  data[7] = 10;
  data[12] = asc;
  data[13] = ascq;
  return data;
}

const ILLEGAL_OPCODE: ScsiResponse = { status: ScsiStatus.CHECK_CONDITION, sense: sense(0x05, 0x20) };
const LBA_OUT_OF_RANGE: ScsiResponse = { status: ScsiStatus.CHECK_CONDITION, sense: sense(0x05, 0x21) };

export class MinimalScsiRegistry implements ScsiTargetRegistry {
  readonly tasks: ScsiTask[] = [];
  readonly taskManagement: TaskManagementFunction[] = [];
  openSessions = 0;
  closedSessions = 0;
  private gate: Promise<void> | undefined;

  /** Commands wait for `gate` before they run. */
  hold(gate: Promise<void> | undefined): void {
    this.gate = gate;
  }

  openLogicalUnit(description: ExportDescription, device: BlockDevice, _nexus: InitiatorPort): ScsiLogicalUnitSession {
    this.openSessions += 1;
    let closed = false;
    return {
      execute: async (task) => {
        this.tasks.push(task);
        if (this.gate !== undefined) await this.gate;
        return execute(task, description, device);
      },
      taskManagement: async (fn): Promise<TaskManagementResult> => {
        this.taskManagement.push(fn);
        return 'complete';
      },
      close: () => {
        if (!closed) this.closedSessions += 1;
        closed = true;
      },
    };
  }
}

async function execute(task: ScsiTask, description: ExportDescription, device: BlockDevice): Promise<ScsiResponse> {
  const { cdb } = task;
  const blocks = Math.floor(device.sizeBytes / BLOCK_BYTES);
  switch (cdb[0]) {
    case 0x00: // TEST UNIT READY
      return { status: ScsiStatus.GOOD };
    case 0x12:
      return inquiry(cdb, description);
    case 0xa0: {
      // REPORT LUNS: LUN 0 only
      const data = Buffer.alloc(16);
      data.writeUInt32BE(8, 0);
      return cut({ status: ScsiStatus.GOOD, dataIn: data }, cdb.readUInt32BE(6));
    }
    case 0x25: {
      const data = Buffer.alloc(8);
      data.writeUInt32BE(Math.min(blocks - 1, 0xffffffff), 0);
      data.writeUInt32BE(BLOCK_BYTES, 4);
      return { status: ScsiStatus.GOOD, dataIn: data };
    }
    case 0x9e: {
      const data = Buffer.alloc(32);
      data.writeBigUInt64BE(BigInt(blocks - 1), 0);
      data.writeUInt32BE(BLOCK_BYTES, 8);
      return cut({ status: ScsiStatus.GOOD, dataIn: data }, cdb.readUInt32BE(10));
    }
    case 0x28:
    case 0x2a:
      return readWrite10(task, device, blocks);
    default:
      return ILLEGAL_OPCODE;
  }
}

function cut(response: ScsiResponse & { dataIn: Buffer }, allocationLength: number): ScsiResponse {
  return { ...response, dataIn: response.dataIn.subarray(0, allocationLength), transferBytes: response.dataIn.length };
}

function inquiry(cdb: Buffer, description: ExportDescription): ScsiResponse {
  const allocationLength = cdb.readUInt16BE(3);
  if ((cdb[1] ?? 0) & 0x01) {
    return { status: ScsiStatus.CHECK_CONDITION, sense: sense(0x05, 0x24) };
  }
  const data = Buffer.alloc(36, 0x20);
  data[0] = 0x00;
  data[1] = 0;
  data[2] = 0x06;
  data[3] = 0x02;
  data[4] = 31;
  data[5] = 0;
  data[6] = 0;
  data[7] = 0x02;
  data.write('PLINTH  ', 8, 'ascii');
  data.write(description.name.slice(0, 16).padEnd(16, ' '), 16, 'ascii');
  data.write('0001', 32, 'ascii');
  return cut({ status: ScsiStatus.GOOD, dataIn: data }, allocationLength);
}

async function readWrite10(task: ScsiTask, device: BlockDevice, blocks: number): Promise<ScsiResponse> {
  const { cdb } = task;
  const lba = cdb.readUInt32BE(2);
  const count = cdb.readUInt16BE(7);
  if (lba + count > blocks) return LBA_OUT_OF_RANGE;
  const bytes = count * BLOCK_BYTES;
  if (cdb[0] === 0x28) {
    const data = Buffer.alloc(bytes);
    await device.read(lba * BLOCK_BYTES, data);
    return { status: ScsiStatus.GOOD, dataIn: data };
  }
  const dataOut = task.dataOut ?? Buffer.alloc(0);
  const usable = dataOut.subarray(0, Math.min(bytes, dataOut.length));
  if (usable.length > 0) await device.write(lba * BLOCK_BYTES, usable);
  return { status: ScsiStatus.GOOD, transferBytes: bytes };
}
