import type { ExtentStatus } from '../../block-device.js';
import { assertRangeInCapacity, assertWritable, type BlockCommandContext } from './scsi-block-commands.js';
import type { LogicalUnitGeometry } from './scsi-geometry.js';
import { Asc, illegalRequest, invalidFieldInCdb, invalidFieldInParameterList, lbaOutOfRange } from './scsi-sense.js';
import { ScsiStatus, type ScsiResponse, type ScsiTask } from './scsi-task.js';

/**
 * Capacity and logical block provisioning (SBC-3 §4.7): READ CAPACITY
 * (10/16), UNMAP and GET LBA STATUS over BlockDevice.trim/blockStatus.
 */

const GOOD: ScsiResponse = { status: ScsiStatus.GOOD };
/** GET LBA STATUS looks at most this far ahead per command; the initiator asks again from the end. */
const LBA_STATUS_WINDOW_BYTES = 256 * 1024 * 1024;

/** READ CAPACITY (10), SBC-3 §5.15: 0xFFFFFFFF tells the initiator to use READ CAPACITY (16). */
export function readCapacity10(geometry: LogicalUnitGeometry, cdb: Buffer): Buffer {
  const pmi = ((cdb[8] ?? 0) & 0x01) !== 0;
  const lba = cdb.readUInt32BE(2);
  if (!pmi && lba !== 0) {
    throw invalidFieldInCdb(2);
  }
  const out = Buffer.alloc(8);
  const lastLba = geometry.blockCount - 1n;
  out.writeUInt32BE(lastLba > 0xffffffffn ? 0xffffffff : Number(lastLba), 0);
  out.writeUInt32BE(geometry.blockBytes, 4);
  return out;
}

/** READ CAPACITY (16), SBC-3 §5.16: 32 bytes with LBPME/LBPRZ and the physical block exponent. */
export function readCapacity16(geometry: LogicalUnitGeometry): Buffer {
  const out = Buffer.alloc(32);
  out.writeBigUInt64BE(geometry.blockCount - 1n, 0);
  out.writeUInt32BE(geometry.blockBytes, 8);
  out[13] = geometry.physicalBlockExponent & 0x0f;
  if (geometry.thinProvisioned) {
    out[14] = 0x80 | (geometry.readsZeroAfterUnmap ? 0x40 : 0);
  }
  return out;
}

/** UNMAP (SBC-3 §5.28): validate the whole parameter list before deallocating anything. */
export async function unmap(context: BlockCommandContext, task: ScsiTask): Promise<ScsiResponse> {
  const { geometry } = context;
  if (!geometry.thinProvisioned) {
    throw illegalRequest(Asc.INVALID_COMMAND_OPERATION_CODE);
  }
  if (((task.cdb[1] ?? 0) & 0x01) !== 0) {
    throw invalidFieldInCdb(1, 0); // ANCHOR: not supported
  }
  const parameterLength = task.cdb.readUInt16BE(7);
  if (parameterLength === 0) {
    return GOOD;
  }
  const parameters = task.dataOut ?? Buffer.alloc(0);
  if (parameterLength < 8 || parameters.length < 8) {
    throw illegalRequest(Asc.PARAMETER_LIST_LENGTH_ERROR);
  }
  const descriptorBytes = parameters.readUInt16BE(2);
  if (descriptorBytes % 16 !== 0 || 8 + descriptorBytes > parameters.length) {
    throw illegalRequest(Asc.PARAMETER_LIST_LENGTH_ERROR);
  }
  const count = descriptorBytes / 16;
  if (count > geometry.maxUnmapDescriptors) {
    throw invalidFieldInParameterList(2);
  }
  const ranges: { lba: bigint; blocks: number }[] = [];
  for (let index = 0; index < count; index += 1) {
    const at = 8 + index * 16;
    const range = { lba: parameters.readBigUInt64BE(at), blocks: parameters.readUInt32BE(at + 8) };
    if (range.blocks > geometry.maxUnmapBlocks) {
      throw invalidFieldInParameterList(at + 8);
    }
    assertRangeInCapacity(geometry, range);
    ranges.push(range);
  }
  assertWritable(context);
  for (const range of ranges) {
    if (range.blocks > 0) {
      const offset = Number(range.lba) * geometry.blockBytes;
      const lengthBytes = range.blocks * geometry.blockBytes;
      const release = await context.rangeLock.acquire(offset, lengthBytes);
      try {
        await context.device.trim(offset, lengthBytes);
      } finally {
        release();
      }
    }
  }
  return GOOD;
}

interface LbaStatusDescriptor {
  readonly lba: bigint;
  blocks: number;
  readonly deallocated: boolean;
}

/**
 * Block runs from byte runs: a block is deallocated only when it lies wholly
 * inside a hole, so a partly written block reports as mapped.
 */
export function lbaStatusFromExtents(startLba: bigint, blockBytes: number, extents: readonly ExtentStatus[]): LbaStatusDescriptor[] {
  const descriptors: LbaStatusDescriptor[] = [];
  const push = (lba: bigint, blocks: number, deallocated: boolean): void => {
    if (blocks <= 0) {
      return;
    }
    const last = descriptors[descriptors.length - 1];
    if (last !== undefined && last.deallocated === deallocated && last.lba + BigInt(last.blocks) === lba) {
      last.blocks += blocks;
    } else {
      descriptors.push({ lba, blocks, deallocated });
    }
  };
  let cursorBytes = 0;
  let emittedBlocks = 0;
  for (const extent of extents) {
    const endBytes = cursorBytes + extent.lengthBytes;
    if (extent.hole) {
      const firstWhole = Math.ceil(cursorBytes / blockBytes);
      const endWhole = Math.floor(endBytes / blockBytes);
      if (endWhole > firstWhole) {
        push(startLba + BigInt(emittedBlocks), firstWhole - emittedBlocks, false);
        push(startLba + BigInt(firstWhole), endWhole - firstWhole, true);
        emittedBlocks = endWhole;
      }
    }
    cursorBytes = endBytes;
  }
  push(startLba + BigInt(emittedBlocks), Math.ceil(cursorBytes / blockBytes) - emittedBlocks, false);
  return descriptors;
}

/** GET LBA STATUS (SBC-3 §5.14): mapped / deallocated runs from the starting LBA. */
export async function getLbaStatus(context: BlockCommandContext, task: ScsiTask): Promise<ScsiResponse> {
  const { geometry, device } = context;
  const lba = task.cdb.readBigUInt64BE(2);
  const allocationLength = task.cdb.readUInt32BE(10);
  if (lba >= geometry.blockCount) {
    throw lbaOutOfRange();
  }
  const offset = Number(lba) * geometry.blockBytes;
  const lengthBytes = Math.min(LBA_STATUS_WINDOW_BYTES, Number(geometry.blockCount - lba) * geometry.blockBytes);
  const extents: ExtentStatus[] = device.capabilities.blockStatus
    ? await device.blockStatus(offset, lengthBytes)
    : [{ lengthBytes, hole: false, zero: false }];
  // At least one descriptor, at most what the allocation length holds (minimum one).
  const maxDescriptors = Math.max(1, Math.floor((allocationLength - 8) / 16));
  const descriptors = lbaStatusFromExtents(lba, geometry.blockBytes, extents).slice(0, maxDescriptors);
  const out = Buffer.alloc(8 + descriptors.length * 16);
  out.writeUInt32BE(out.length - 4, 0);
  descriptors.forEach((descriptor, index) => {
    const at = 8 + index * 16;
    out.writeBigUInt64BE(descriptor.lba, at);
    out.writeUInt32BE(descriptor.blocks, at + 8);
    out[at + 12] = descriptor.deallocated ? 0x01 : 0x00;
  });
  return { status: ScsiStatus.GOOD, dataIn: out.subarray(0, Math.min(out.length, allocationLength)) };
}
