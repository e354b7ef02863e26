import pino from 'pino';
import type { ExportDescription } from '../../../../blockdev/export-provider.js';
import { createScsiTargetRegistry } from '../../../../blockdev/iscsi/scsi/scsi-target-registry.js';
import type {
  InitiatorPort,
  ScsiDataDirection,
  ScsiLogicalUnitSession,
  ScsiResponse,
  ScsiTargetRegistry,
} from '../../../../blockdev/iscsi/scsi/scsi-task.js';
import { MemoryBlockDevice, type MemoryBlockDeviceOptions } from '../../../helpers/memory-block-device.js';

/**
 * A SCSI device server over a MemoryBlockDevice, for the scsi-*.test.ts
 * files: open sessions as different initiators, send CDBs, read sense.
 */

export const BLOCK = 512;

export interface ScsiFixture {
  readonly device: MemoryBlockDevice;
  readonly description: ExportDescription;
  readonly registry: ScsiTargetRegistry;
  open(initiator?: string, isid?: string): ScsiLogicalUnitSession;
}

export function fakeExportDescription(device: MemoryBlockDevice, overrides: Partial<ExportDescription> = {}): ExportDescription {
  return {
    id: '6f1c2b0e-1d2a-4c3b-9a8d-7e6f5a4b3c2d',
    name: 'vol1',
    description: '',
    sizeBytes: device.sizeBytes,
    readOnly: device.capabilities.readOnly,
    capabilities: device.capabilities,
    blockSize: device.blockSize,
    ...overrides,
  };
}

export function createScsiFixture(
  deviceOptions: Partial<MemoryBlockDeviceOptions> = {},
  overrides: Partial<ExportDescription> = {},
): ScsiFixture {
  const device = new MemoryBlockDevice({ sizeBytes: 8 * 1024 * 1024, ...deviceOptions });
  const description = fakeExportDescription(device, overrides);
  const registry = createScsiTargetRegistry({ logger: pino({ level: 'silent' }) });
  return {
    device,
    description,
    registry,
    open(initiator = 'iqn.2026-11.test:one', isid = '400000000001') {
      const nexus: InitiatorPort = { initiatorName: initiator, isid, targetPortalGroupTag: 1 };
      return registry.openLogicalUnit(description, device, nexus);
    },
  };
}

export interface SendOptions {
  readonly dataOut?: Buffer;
  readonly expectedDataTransferLength?: number;
  readonly lun?: number;
}

export async function send(session: ScsiLogicalUnitSession, cdbBytes: readonly number[] | Buffer, options: SendOptions = {}): Promise<ScsiResponse> {
  const cdb = Buffer.isBuffer(cdbBytes) ? cdbBytes : Buffer.from(cdbBytes);
  const padded = Buffer.alloc(Math.max(16, cdb.length));
  cdb.copy(padded);
  const direction: ScsiDataDirection = options.dataOut === undefined ? 'read' : 'write';
  return session.execute({
    cdb: padded,
    lun: options.lun ?? 0,
    nexus: { initiatorName: 'unused', isid: '000000000000', targetPortalGroupTag: 1 },
    attribute: 'simple',
    direction,
    expectedDataTransferLength: options.expectedDataTransferLength ?? options.dataOut?.length ?? 65536,
    dataOut: options.dataOut,
    allocateDataIn: undefined,
  });
}

export interface DecodedSense {
  readonly key: number;
  readonly asc: number;
  readonly ascq: number;
  readonly information?: number;
  readonly fieldPointer?: { readonly inCdb: boolean; readonly byte: number; readonly bit?: number };
}

/** Decode fixed (0x70) or descriptor (0x72) sense from a CHECK CONDITION response. */
export function senseOf(response: ScsiResponse): DecodedSense {
  const sense = response.sense;
  if (sense === undefined) {
    throw new Error(`no sense data (status 0x${response.status.toString(16)})`);
  }
  const code = (sense[0] ?? 0) & 0x7f;
  if (code === 0x72) {
    return { key: (sense[1] ?? 0) & 0x0f, asc: sense[2] ?? 0, ascq: sense[3] ?? 0 };
  }
  const valid = ((sense[0] ?? 0) & 0x80) !== 0;
  const specific = sense[15] ?? 0;
  const base = { key: (sense[2] ?? 0) & 0x0f, asc: sense[12] ?? 0, ascq: sense[13] ?? 0 };
  const withInfo = valid ? { ...base, information: sense.readUInt32BE(3) } : base;
  if ((specific & 0x80) === 0) {
    return withInfo;
  }
  const byte = sense.readUInt16BE(16);
  const pointer = (specific & 0x08) !== 0 ? { inCdb: (specific & 0x40) !== 0, byte, bit: specific & 0x07 } : { inCdb: (specific & 0x40) !== 0, byte };
  return { ...withInfo, fieldPointer: pointer };
}

/** CDB builders (SBC-3 layouts). */
export function cdb10(opcode: number, lba: number, blocks: number, flags = 0): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = opcode;
  cdb[1] = flags;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt16BE(blocks, 7);
  return cdb;
}

export function cdb16(opcode: number, lba: bigint, blocks: number, flags = 0): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = opcode;
  cdb[1] = flags;
  cdb.writeBigUInt64BE(lba, 2);
  cdb.writeUInt32BE(blocks, 10);
  return cdb;
}

export function pattern(lengthBytes: number, seed: number): Buffer {
  const out = Buffer.alloc(lengthBytes);
  for (let index = 0; index < lengthBytes; index += 1) {
    out[index] = (index * 31 + seed) & 0xff;
  }
  return out;
}

/** PERSISTENT RESERVE OUT (SPC-4 §6.16) with the basic 24-byte parameter list. */
export function proutCdb(action: number, type = 0): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x5f;
  cdb[1] = action;
  cdb[2] = type;
  cdb.writeUInt32BE(24, 5);
  return cdb;
}

/** The basic PERSISTENT RESERVE OUT parameter list: reservation key, service action key, flags (APTPL, ...). */
export function proutParameters(key: bigint, serviceActionKey: bigint, flags = 0): Buffer {
  const out = Buffer.alloc(24);
  out.writeBigUInt64BE(key, 0);
  out.writeBigUInt64BE(serviceActionKey, 8);
  out[20] = flags;
  return out;
}
