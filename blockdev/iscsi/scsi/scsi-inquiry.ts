import { createHash } from 'node:crypto';
import type { LogicalUnitGeometry } from './scsi-geometry.js';
import { invalidFieldInCdb } from './scsi-sense.js';

/**
 * INQUIRY data (SPC-4 §6.6): the standard page and the VPD pages a block
 * device needs (§7.8, SBC-3 §6.5). Pure: everything derives from the
 * volume's identity and geometry, so every node answers the same.
 */

export interface LogicalUnitIdentity {
  /** The volume UUID (ExportDescription.id): serial number and NAA designator derive from it. */
  readonly volumeId: string;
  /** iqn.2026-11.io.plinth:<volume> */
  readonly targetName: string;
  readonly targetPortalGroupTag: number;
}

const VENDOR = 'PLINTH';
const PRODUCT = 'Plinth volume';
const REVISION = '0001';

/** SPC-4 Annex E version descriptors: SAM-5, iSCSI (no version), SPC-4, SBC-3. */
const VERSION_DESCRIPTORS = [0x00a0, 0x0960, 0x0460, 0x04c0];

export const VpdPage = {
  SUPPORTED_PAGES: 0x00,
  UNIT_SERIAL_NUMBER: 0x80,
  DEVICE_IDENTIFICATION: 0x83,
  BLOCK_LIMITS: 0xb0,
  BLOCK_DEVICE_CHARACTERISTICS: 0xb1,
  LOGICAL_BLOCK_PROVISIONING: 0xb2,
} as const;

const SUPPORTED_VPD_PAGES = [
  VpdPage.SUPPORTED_PAGES,
  VpdPage.UNIT_SERIAL_NUMBER,
  VpdPage.DEVICE_IDENTIFICATION,
  VpdPage.BLOCK_LIMITS,
  VpdPage.BLOCK_DEVICE_CHARACTERISTICS,
  VpdPage.LOGICAL_BLOCK_PROVISIONING,
];

function padAscii(text: string, length: number): Buffer {
  return Buffer.from(text.padEnd(length, ' ').slice(0, length), 'ascii');
}

/** SPC-4 §6.6.2: 96 bytes, peripheral device type 0 (direct access block device). */
export function standardInquiry(): Buffer {
  const out = Buffer.alloc(96);
  out[0] = 0x00;
  out[1] = 0x00; // RMB = 0: not removable
  out[2] = 0x06; // VERSION: SPC-4
  out[3] = 0x12; // HISUP | RESPONSE DATA FORMAT 2
  out[4] = out.length - 5;
  out[7] = 0x02; // CMDQUE: full task management model (SAM-5)
  padAscii(VENDOR, 8).copy(out, 8);
  padAscii(PRODUCT, 16).copy(out, 16);
  padAscii(REVISION, 4).copy(out, 32);
  VERSION_DESCRIPTORS.forEach((descriptor, index) => out.writeUInt16BE(descriptor, 58 + index * 2));
  return out;
}

/** The unit serial number (VPD 0x80): the volume UUID without dashes, stable across nodes. */
export function unitSerialNumber(volumeId: string): string {
  const compact = volumeId.replace(/-/g, '');
  return /^[0-9a-zA-Z]{1,32}$/.test(compact) ? compact.toLowerCase() : sha256Hex(volumeId).slice(0, 32);
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * NAA IEEE Registered Extended designator (SPC-4 §7.8.6.6.5, NAA 6): 16
 * bytes. Plinth has no IEEE company id, so the 24-bit OUI field and the
 * vendor-specific fields all come from a hash of the volume id: stable and
 * unique per volume, identical on every node (multipath sees one LU).
 */
export function naaDesignator(volumeId: string): Buffer {
  const digest = Buffer.from(sha256Hex(`plinth-naa:${volumeId}`), 'hex').subarray(0, 16);
  digest[0] = 0x60 | ((digest[0] ?? 0) & 0x0f);
  return digest;
}

function designator(codeSet: number, association: number, type: number, value: Buffer, iscsiProtocol = false): Buffer {
  const header = Buffer.alloc(4);
  // PROTOCOL IDENTIFIER 5 (iSCSI) with PIV for target port designators (§7.8.6.1).
  header[0] = (iscsiProtocol ? 0x50 : 0x00) | codeSet;
  header[1] = (iscsiProtocol ? 0x80 : 0x00) | (association << 4) | type;
  header[3] = value.length;
  return Buffer.concat([header, value]);
}

/** SCSI name strings are null-terminated, padded to a multiple of 4 (§7.8.6.11). */
function scsiNameString(name: string): Buffer {
  const length = Math.ceil((Buffer.byteLength(name, 'utf8') + 1) / 4) * 4;
  const out = Buffer.alloc(length);
  out.write(name, 'utf8');
  return out;
}

function deviceIdentification(identity: LogicalUnitIdentity): Buffer {
  const relativePort = Buffer.alloc(4);
  relativePort.writeUInt16BE(1, 2);
  const portGroup = Buffer.alloc(4);
  portGroup.writeUInt16BE(identity.targetPortalGroupTag & 0xffff, 2);
  const tpgtHex = (identity.targetPortalGroupTag & 0xffff).toString(16).padStart(4, '0');
  const descriptors = [
    // Logical unit: NAA (binary) and T10 vendor id (ASCII).
    designator(0x1, 0, 0x3, naaDesignator(identity.volumeId)),
    designator(0x2, 0, 0x1, Buffer.concat([padAscii(VENDOR, 8), Buffer.from(unitSerialNumber(identity.volumeId), 'ascii')])),
    // Target port: relative target port identifier and the iSCSI port name (RFC 7143 §4.2.7.1).
    designator(0x1, 1, 0x4, relativePort, true),
    designator(0x3, 1, 0x8, scsiNameString(`${identity.targetName},t,0x${tpgtHex}`), true),
    designator(0x1, 1, 0x5, portGroup),
    // Target device: the target name.
    designator(0x3, 2, 0x8, scsiNameString(identity.targetName), true),
  ];
  return vpdPage(VpdPage.DEVICE_IDENTIFICATION, Buffer.concat(descriptors));
}

function vpdPage(pageCode: number, body: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header[1] = pageCode;
  header.writeUInt16BE(body.length, 2);
  return Buffer.concat([header, body]);
}

/** SBC-3 §6.5.3: page length 0x3c. */
function blockLimits(geometry: LogicalUnitGeometry): Buffer {
  const body = Buffer.alloc(0x3c);
  // WSNZ = 0: WRITE SAME with 0 blocks writes through the last LBA (SBC-3 §5.44),
  // bounded by MAXIMUM WRITE SAME LENGTH below.
  body[0] = 0x00;
  body[1] = geometry.maxCompareAndWriteBlocks;
  const granularity = geometry.granularityBlocks;
  body.writeUInt16BE(granularity, 2);
  body.writeUInt32BE(geometry.maxTransferBlocks, 4);
  body.writeUInt32BE(geometry.optimalTransferBlocks, 8);
  body.writeUInt32BE(geometry.maxTransferBlocks, 12); // MAXIMUM PREFETCH LENGTH
  body.writeUInt32BE(geometry.maxUnmapBlocks, 16);
  body.writeUInt32BE(geometry.maxUnmapDescriptors, 20);
  if (geometry.thinProvisioned) {
    body.writeUInt32BE(granularity, 24); // OPTIMAL UNMAP GRANULARITY
    body.writeUInt32BE(0x80000000, 28); // UGAVALID, alignment 0
  }
  body.writeBigUInt64BE(BigInt(geometry.maxWriteSameBlocks), 32);
  return vpdPage(VpdPage.BLOCK_LIMITS, body);
}

/** SBC-3 §6.5.2: MEDIUM ROTATION RATE 1 = non-rotating medium. */
function blockDeviceCharacteristics(): Buffer {
  const body = Buffer.alloc(0x3c);
  body.writeUInt16BE(0x0001, 0);
  return vpdPage(VpdPage.BLOCK_DEVICE_CHARACTERISTICS, body);
}

/** SBC-3 §6.5.4: LBPU, LBPWS, LBPWS10, LBPRZ; provisioning type 2 (thin). */
function logicalBlockProvisioning(geometry: LogicalUnitGeometry): Buffer {
  const body = Buffer.alloc(4);
  if (geometry.thinProvisioned) {
    body[1] = 0x80 | 0x40 | 0x20 | (geometry.readsZeroAfterUnmap ? 0x04 : 0);
    body[2] = 0x02;
  }
  return vpdPage(VpdPage.LOGICAL_BLOCK_PROVISIONING, body);
}

export function vpdPageData(pageCode: number, identity: LogicalUnitIdentity, geometry: LogicalUnitGeometry): Buffer {
  switch (pageCode) {
    case VpdPage.SUPPORTED_PAGES:
      return vpdPage(pageCode, Buffer.from(SUPPORTED_VPD_PAGES));
    case VpdPage.UNIT_SERIAL_NUMBER:
      return vpdPage(pageCode, Buffer.from(unitSerialNumber(identity.volumeId), 'ascii'));
    case VpdPage.DEVICE_IDENTIFICATION:
      return deviceIdentification(identity);
    case VpdPage.BLOCK_LIMITS:
      return blockLimits(geometry);
    case VpdPage.BLOCK_DEVICE_CHARACTERISTICS:
      return blockDeviceCharacteristics();
    case VpdPage.LOGICAL_BLOCK_PROVISIONING:
      return logicalBlockProvisioning(geometry);
    default:
      throw invalidFieldInCdb(2);
  }
}

/** INQUIRY (SPC-4 §6.6): validate the CDB and return the page, uncut. */
export function inquiryData(cdb: Buffer, identity: LogicalUnitIdentity, geometry: LogicalUnitGeometry): Buffer {
  const flags = cdb[1] ?? 0;
  const pageCode = cdb[2] ?? 0;
  if ((flags & 0xfe) !== 0) {
    throw invalidFieldInCdb(1, (flags & 0x02) !== 0 ? 1 : undefined);
  }
  if ((flags & 0x01) === 0) {
    if (pageCode !== 0) {
      throw invalidFieldInCdb(2);
    }
    return standardInquiry();
  }
  return vpdPageData(pageCode, identity, geometry);
}
