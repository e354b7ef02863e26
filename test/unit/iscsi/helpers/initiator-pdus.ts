import { framePdu, type DigestSettings, NO_DIGESTS, type OutgoingPdu } from '../../../../blockdev/iscsi/pdu-frame.js';
import { encodeTextPairs, type TextPair } from '../../../../blockdev/iscsi/text-keys.js';

/**
 * Encoders for initiator PDUs (RFC 7143 §11), the mirror image of the
 * target's, for tests only: they build exactly the bytes an initiator puts
 * on the wire so the server and the decoders meet real framing.
 */

function bhs(opcodeByte: number, flags: number): Buffer {
  const header = Buffer.alloc(48);
  header[0] = opcodeByte;
  header[1] = flags;
  return header;
}

export function loginRequest(fields: {
  transit: boolean;
  continue?: boolean;
  csg: number;
  nsg: number;
  isid?: string;
  tsih?: number;
  itt?: number;
  cmdSN?: number;
  expStatSN?: number;
  pairs: TextPair[];
}): OutgoingPdu {
  const header = bhs(0x43, (fields.transit ? 0x80 : 0) | (fields.continue === true ? 0x40 : 0) | (fields.csg << 2) | fields.nsg);
  Buffer.from(fields.isid ?? '400001370000', 'hex').copy(header, 8);
  header.writeUInt16BE(fields.tsih ?? 0, 14);
  header.writeUInt32BE(fields.itt ?? 1, 16);
  header.writeUInt32BE(fields.cmdSN ?? 1, 24);
  header.writeUInt32BE(fields.expStatSN ?? 0, 28);
  return { bhs: header, data: encodeTextPairs(fields.pairs) };
}

export function scsiCommand(fields: {
  immediate?: boolean;
  final?: boolean;
  read?: boolean;
  write?: boolean;
  lun?: number;
  itt: number;
  edtl: number;
  cmdSN: number;
  expStatSN?: number;
  cdb: Buffer;
  data?: Buffer;
}): OutgoingPdu {
  const flags = (fields.final ?? true ? 0x80 : 0) | (fields.read === true ? 0x40 : 0) | (fields.write === true ? 0x20 : 0) | 0x01;
  const header = bhs((fields.immediate === true ? 0x40 : 0) | 0x01, flags);
  header[9] = fields.lun ?? 0;
  header.writeUInt32BE(fields.itt, 16);
  header.writeUInt32BE(fields.edtl, 20);
  header.writeUInt32BE(fields.cmdSN, 24);
  header.writeUInt32BE(fields.expStatSN ?? 0, 28);
  fields.cdb.copy(header, 32, 0, Math.min(16, fields.cdb.length));
  return fields.data === undefined ? { bhs: header } : { bhs: header, data: fields.data };
}

export function dataOut(fields: { final: boolean; itt: number; ttt: number; dataSN: number; bufferOffset: number; data: Buffer }): OutgoingPdu {
  const header = bhs(0x05, fields.final ? 0x80 : 0);
  header.writeUInt32BE(fields.itt, 16);
  header.writeUInt32BE(fields.ttt, 20);
  header.writeUInt32BE(fields.dataSN, 36);
  header.writeUInt32BE(fields.bufferOffset, 40);
  return { bhs: header, data: fields.data };
}

export function nopOut(fields: { immediate?: boolean; itt: number; ttt?: number; cmdSN: number; data?: Buffer }): OutgoingPdu {
  const header = bhs((fields.immediate === true ? 0x40 : 0) | 0x00, 0x80);
  header.writeUInt32BE(fields.itt, 16);
  header.writeUInt32BE(fields.ttt ?? 0xffffffff, 20);
  header.writeUInt32BE(fields.cmdSN, 24);
  return fields.data === undefined ? { bhs: header } : { bhs: header, data: fields.data };
}

export function taskManagement(fields: { fn: number; itt: number; referencedTaskTag?: number; cmdSN: number; refCmdSN?: number; lun?: number }): OutgoingPdu {
  const header = bhs(0x40 | 0x02, 0x80 | fields.fn);
  header[9] = fields.lun ?? 0;
  header.writeUInt32BE(fields.itt, 16);
  header.writeUInt32BE(fields.referencedTaskTag ?? 0xffffffff, 20);
  header.writeUInt32BE(fields.cmdSN, 24);
  header.writeUInt32BE(fields.refCmdSN ?? 0, 32);
  return { bhs: header };
}

export function textRequest(fields: { itt: number; ttt?: number; cmdSN: number; final?: boolean; continue?: boolean; pairs: TextPair[] }): OutgoingPdu {
  const header = bhs(0x40 | 0x04, (fields.final ?? true ? 0x80 : 0) | (fields.continue === true ? 0x40 : 0));
  header.writeUInt32BE(fields.itt, 16);
  header.writeUInt32BE(fields.ttt ?? 0xffffffff, 20);
  header.writeUInt32BE(fields.cmdSN, 24);
  return { bhs: header, data: encodeTextPairs(fields.pairs) };
}

export function logoutRequest(fields: { itt: number; cmdSN: number; reason?: number }): OutgoingPdu {
  const header = bhs(0x40 | 0x06, 0x80 | (fields.reason ?? 0));
  header.writeUInt32BE(fields.itt, 16);
  header.writeUInt32BE(fields.cmdSN, 24);
  return { bhs: header };
}

export function wire(pdu: OutgoingPdu, digests: DigestSettings = NO_DIGESTS): Buffer {
  return Buffer.concat(framePdu(pdu, digests));
}
