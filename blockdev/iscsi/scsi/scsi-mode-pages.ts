import { Opcode } from './scsi-opcodes.js';
import type { LogicalUnitGeometry } from './scsi-geometry.js';
import {
  Asc,
  illegalRequest,
  invalidFieldInCdb,
  invalidFieldInParameterList,
  ScsiCheckCondition,
  SenseKey,
} from './scsi-sense.js';

/**
 * MODE SENSE / MODE SELECT (SPC-4 §6.11-6.14, §7.5): the caching (0x08),
 * control (0x0A) and informational exceptions (0x1C) pages. Only D_SENSE
 * and SWP in the control page are changeable; parameters cannot be saved.
 */

export const ModePage = {
  CACHING: 0x08,
  CONTROL: 0x0a,
  INFORMATIONAL_EXCEPTIONS: 0x1c,
  ALL: 0x3f,
} as const;

/** Page control (SPC-4 §6.11 table 155). */
const PageControl = { CURRENT: 0, CHANGEABLE: 1, DEFAULT: 2, SAVED: 3 } as const;

/** The logical unit's mutable mode parameters, shared by every nexus. */
export interface ModeState {
  /** Control page D_SENSE: report descriptor-format sense. */
  descriptorSense: boolean;
  /** Control page SWP: software write protect. */
  softwareWriteProtect: boolean;
}

export function defaultModeState(): ModeState {
  return { descriptorSense: false, softwareWriteProtect: false };
}

const CONTROL_BYTE2_CHANGEABLE = 0x04; // D_SENSE
const CONTROL_BYTE4_CHANGEABLE = 0x08; // SWP

function cachingPage(pageControl: number): Buffer {
  const page = Buffer.alloc(20);
  page[0] = ModePage.CACHING;
  page[1] = page.length - 2;
  if (pageControl !== PageControl.CHANGEABLE) {
    // WCE: writes are volatile until SYNCHRONIZE CACHE (or FUA) reaches every replica.
    page[2] = 0x04;
  }
  return page;
}

function controlPage(pageControl: number, state: ModeState): Buffer {
  const page = Buffer.alloc(12);
  page[0] = ModePage.CONTROL;
  page[1] = page.length - 2;
  if (pageControl === PageControl.CHANGEABLE) {
    page[2] = CONTROL_BYTE2_CHANGEABLE;
    page[4] = CONTROL_BYTE4_CHANGEABLE;
    return page;
  }
  const current = pageControl === PageControl.CURRENT;
  page[2] = current && state.descriptorSense ? 0x04 : 0x00;
  page[3] = 0x10; // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering
  page[4] = current && state.softwareWriteProtect ? 0x08 : 0x00;
  page.writeUInt16BE(0xffff, 8); // BUSY TIMEOUT PERIOD: unlimited
  return page;
}

function informationalExceptionsPage(pageControl: number): Buffer {
  const page = Buffer.alloc(12);
  page[0] = ModePage.INFORMATIONAL_EXCEPTIONS;
  page[1] = page.length - 2;
  if (pageControl !== PageControl.CHANGEABLE) {
    page[2] = 0x08; // DEXCPT: no informational exception reporting
  }
  return page;
}

function pagesFor(pageCode: number, pageControl: number, state: ModeState): Buffer[] {
  switch (pageCode) {
    case ModePage.CACHING:
      return [cachingPage(pageControl)];
    case ModePage.CONTROL:
      return [controlPage(pageControl, state)];
    case ModePage.INFORMATIONAL_EXCEPTIONS:
      return [informationalExceptionsPage(pageControl)];
    case ModePage.ALL:
      return [cachingPage(pageControl), controlPage(pageControl, state), informationalExceptionsPage(pageControl)];
    default:
      throw invalidFieldInCdb(2, 5);
  }
}

function blockDescriptor(geometry: LogicalUnitGeometry): Buffer {
  const out = Buffer.alloc(8);
  const blocks = geometry.blockCount > 0xffffffffn ? 0xffffffff : Number(geometry.blockCount);
  out.writeUInt32BE(blocks, 0);
  out.writeUIntBE(geometry.blockBytes, 5, 3);
  return out;
}

/** MODE SENSE (6) and (10): the full answer, before the allocation length cut. */
export function modeSenseData(cdb: Buffer, geometry: LogicalUnitGeometry, state: ModeState): Buffer {
  const is10 = cdb[0] === Opcode.MODE_SENSE_10;
  const disableBlockDescriptors = ((cdb[1] ?? 0) & 0x08) !== 0;
  const pageControl = (cdb[2] ?? 0) >> 6;
  const pageCode = (cdb[2] ?? 0) & 0x3f;
  const subpage = cdb[3] ?? 0;
  if (pageControl === PageControl.SAVED) {
    throw illegalRequest(Asc.SAVING_PARAMETERS_NOT_SUPPORTED);
  }
  if (subpage !== 0 && !(subpage === 0xff && pageCode === ModePage.ALL)) {
    throw invalidFieldInCdb(3);
  }
  const pages = Buffer.concat(pagesFor(pageCode, pageControl, state));
  const descriptor = disableBlockDescriptors ? Buffer.alloc(0) : blockDescriptor(geometry);
  // Device-specific parameter (SBC-3 §6.4.1): WP, DPOFUA.
  const deviceSpecific = (geometry.readOnly || state.softwareWriteProtect ? 0x80 : 0) | 0x10;
  if (is10) {
    const header = Buffer.alloc(8);
    header.writeUInt16BE(6 + descriptor.length + pages.length, 0);
    header[3] = deviceSpecific;
    header.writeUInt16BE(descriptor.length, 6);
    return Buffer.concat([header, descriptor, pages]);
  }
  const header = Buffer.alloc(4);
  header[0] = Math.min(255, 3 + descriptor.length + pages.length);
  header[2] = deviceSpecific;
  header[3] = descriptor.length;
  return Buffer.concat([header, descriptor, pages]);
}

/** The parameter list length a MODE SELECT CDB announces. */
export function modeSelectParameterLength(cdb: Buffer): number {
  return cdb[0] === Opcode.MODE_SELECT_10 ? cdb.readUInt16BE(7) : (cdb[4] ?? 0);
}

/**
 * MODE SELECT (6) and (10): validate the parameter list against what is
 * changeable and apply it to `state` only when all of it is valid.
 */
export function applyModeSelect(cdb: Buffer, parameters: Buffer, geometry: LogicalUnitGeometry, state: ModeState): void {
  const is10 = cdb[0] === Opcode.MODE_SELECT_10;
  const flags = cdb[1] ?? 0;
  if ((flags & 0x01) !== 0) {
    // SP: saving pages is not supported (SPC-4 §6.13).
    throw invalidFieldInCdb(1, 0);
  }
  const headerBytes = is10 ? 8 : 4;
  if (parameters.length < headerBytes) {
    if (parameters.length === 0) {
      return;
    }
    throw illegalRequest(Asc.PARAMETER_LIST_LENGTH_ERROR);
  }
  const descriptorBytes = is10 ? parameters.readUInt16BE(6) : (parameters[3] ?? 0);
  if (descriptorBytes % 8 !== 0 || headerBytes + descriptorBytes > parameters.length) {
    throw invalidFieldInParameterList(is10 ? 6 : 3);
  }
  for (let at = headerBytes; at < headerBytes + descriptorBytes; at += 8) {
    if (parameters.readUIntBE(at + 5, 3) !== geometry.blockBytes) {
      throw invalidFieldInParameterList(at + 5);
    }
  }
  const next: ModeState = { ...state };
  let cursor = headerBytes + descriptorBytes;
  while (cursor < parameters.length) {
    cursor = applyOnePage(parameters, cursor, next);
  }
  state.descriptorSense = next.descriptorSense;
  state.softwareWriteProtect = next.softwareWriteProtect;
}

function applyOnePage(parameters: Buffer, at: number, next: ModeState): number {
  if (at + 2 > parameters.length) {
    throw illegalRequest(Asc.PARAMETER_LIST_LENGTH_ERROR);
  }
  const pageCode = (parameters[at] ?? 0) & 0x3f;
  if (((parameters[at] ?? 0) & 0x40) !== 0) {
    throw invalidFieldInParameterList(at, 6); // SPF: no subpages
  }
  const length = parameters[at + 1] ?? 0;
  const end = at + 2 + length;
  if (end > parameters.length) {
    throw illegalRequest(Asc.PARAMETER_LIST_LENGTH_ERROR);
  }
  const page = parameters.subarray(at, end);
  if (pageCode !== ModePage.CACHING && pageCode !== ModePage.CONTROL && pageCode !== ModePage.INFORMATIONAL_EXCEPTIONS) {
    throw invalidFieldInParameterList(at, 5);
  }
  const reference = pagesFor(pageCode, PageControl.CURRENT, next)[0];
  if (reference === undefined || page.length !== reference.length) {
    throw invalidFieldInParameterList(at + 1);
  }
  const changeable = pagesFor(pageCode, PageControl.CHANGEABLE, next)[0] ?? Buffer.alloc(0);
  // Every bit outside the changeable mask must equal the current value (SPC-4 §6.13).
  for (let index = 2; index < page.length; index += 1) {
    const mask = changeable[index] ?? 0;
    if (((page[index] ?? 0) & ~mask & 0xff) !== ((reference[index] ?? 0) & ~mask & 0xff)) {
      throw invalidFieldInParameterList(at + index);
    }
  }
  if (pageCode === ModePage.CONTROL) {
    next.descriptorSense = ((page[2] ?? 0) & 0x04) !== 0;
    next.softwareWriteProtect = ((page[4] ?? 0) & 0x08) !== 0;
  }
  return end;
}

/** Writes refused while SWP is set: DATA PROTECT / WRITE PROTECTED (SPC-4 §7.5.8). */
export function assertNotSoftwareWriteProtected(state: ModeState): void {
  if (state.softwareWriteProtect) {
    throw new ScsiCheckCondition({ senseKey: SenseKey.DATA_PROTECT, asc: Asc.WRITE_PROTECTED });
  }
}
