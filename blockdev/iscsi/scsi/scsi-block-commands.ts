import type { BlockDevice } from '../../block-device.js';
import {
  type BlockRange,
  byteAt,
  decodeBlockRange,
  decodeCompareAndWrite,
  decodeReadWrite,
  decodeVerify,
  decodeWriteSame,
} from './scsi-cdb.js';
import type { LogicalUnitGeometry } from './scsi-geometry.js';
import { assertNotSoftwareWriteProtected, type ModeState } from './scsi-mode-pages.js';
import { cdbLengthOf, Opcode } from './scsi-opcodes.js';
import type { RangeLock } from '../../volume/range-lock.js';
import { invalidFieldInCdb, lbaOutOfRange, miscompare, writeProtected } from './scsi-sense.js';
import { type ScsiOutcome, ScsiStatus, type ScsiResponse, type ScsiTask } from './scsi-task.js';

/**
 * The SBC-3 data commands over the BlockDevice: READ, WRITE, WRITE AND
 * VERIFY, VERIFY, WRITE SAME, COMPARE AND WRITE, PRE-FETCH. CDB problems are
 * thrown as ScsiCheckCondition; BlockDevice errors propagate as PlinthError
 * and are mapped by the dispatcher (scsi-error-map.ts).
 */

export interface BlockCommandContext {
  readonly device: BlockDevice;
  readonly geometry: LogicalUnitGeometry;
  readonly mode: ModeState;
  readonly rangeLock: RangeLock;
}

const GOOD: ScsiResponse = { status: ScsiStatus.GOOD };
/** Large verifies and WRITE SAME patterns are processed in chunks of this size. */
const CHUNK_BYTES = 1024 * 1024;

/** Byte position of the TRANSFER LENGTH field (for the sense field pointer). */
function lengthFieldByte(cdb: Buffer): number {
  switch (cdbLengthOf(byteAt(cdb, 0))) {
    case 6:
      return 4;
    case 10:
      return 7;
    case 12:
      return 6;
    default:
      return 10;
  }
}

/** SBC-3 §4.5: LBA OUT OF RANGE when any block of the range is past the last one. */
export function assertRangeInCapacity(geometry: LogicalUnitGeometry, range: BlockRange): void {
  if (range.lba > geometry.blockCount || range.lba + BigInt(range.blocks) > geometry.blockCount) {
    throw lbaOutOfRange();
  }
}

function assertTransferLimit(cdb: Buffer, geometry: LogicalUnitGeometry, blocks: number): void {
  if (blocks > geometry.maxTransferBlocks) {
    throw invalidFieldInCdb(lengthFieldByte(cdb));
  }
}

export function assertWritable(context: BlockCommandContext): void {
  if (context.geometry.readOnly) {
    throw writeProtected();
  }
  assertNotSoftwareWriteProtected(context.mode);
}

function byteOffset(geometry: LogicalUnitGeometry, lba: bigint): number {
  return Number(lba) * geometry.blockBytes;
}

/** READ (6/10/12/16); answered at once when the device reads inline (ScsiOutcome says why). */
export function readBlocks(context: BlockCommandContext, task: ScsiTask): ScsiOutcome {
  const request = decodeReadWrite(task.cdb);
  if (request.protect !== 0) {
    throw invalidFieldInCdb(1, 5);
  }
  assertRangeInCapacity(context.geometry, request);
  assertTransferLimit(task.cdb, context.geometry, request.blocks);
  const lengthBytes = request.blocks * context.geometry.blockBytes;
  if (lengthBytes === 0) {
    return GOOD;
  }
  // Read only what the initiator will take: the transport cuts to EDTL anyway.
  const wanted = Math.min(lengthBytes, task.expectedDataTransferLength);
  // Recycled memory lent by the transport, which takes it back once the reply is on the socket.
  const data = task.allocateDataIn?.(wanted) ?? Buffer.allocUnsafe(wanted);
  const offset = byteOffset(context.geometry, request.lba);
  const response: ScsiResponse = { status: ScsiStatus.GOOD, dataIn: data, transferBytes: lengthBytes };
  // readInline completes small cached reads synchronously (BlockDevice fast path).
  if (wanted > 0 && context.device.readInline?.(offset, data) !== true) {
    return context.device.read(offset, data).then(() => response);
  }
  return response;
}

/**
 * What every write-type command checks before it touches the medium, and
 * how many bytes it may write: only the whole blocks the initiator sent,
 * at most what the CDB asks for.
 */
function checkedWrite(context: BlockCommandContext, task: ScsiTask): { request: ReturnType<typeof decodeReadWrite>; lengthBytes: number; sentBytes: number } {
  const request = decodeReadWrite(task.cdb);
  if (request.protect !== 0) {
    throw invalidFieldInCdb(1, 5);
  }
  assertWritable(context);
  assertRangeInCapacity(context.geometry, request);
  assertTransferLimit(task.cdb, context.geometry, request.blocks);
  const { blockBytes } = context.geometry;
  const lengthBytes = request.blocks * blockBytes;
  const available = task.dataOut?.length ?? 0;
  return { request, lengthBytes, sentBytes: Math.min(lengthBytes, Math.floor(available / blockBytes) * blockBytes) };
}

/**
 * WRITE (6/10/12/16) and WRITE AND VERIFY. When the initiator sent less than
 * the CDB asks for (EDTL < transfer length), only the whole blocks it sent
 * are written and the transport reports the overflow (RFC 7143 §11.4.5.2).
 */
export function writeBlocks(context: BlockCommandContext, task: ScsiTask): ScsiOutcome {
  const { request, lengthBytes, sentBytes: writeBytes } = checkedWrite(context, task);
  const opcode = byteAt(task.cdb, 0);
  const writeAndVerify =
    opcode === Opcode.WRITE_AND_VERIFY_10 || opcode === Opcode.WRITE_AND_VERIFY_12 || opcode === Opcode.WRITE_AND_VERIFY_16;
  if (writeBytes > 0 && task.dataOut !== undefined) {
    const offset = byteOffset(context.geometry, request.lba);
    const data = task.dataOut.subarray(0, writeBytes);
    // WRITE AND VERIFY must reach the medium before it verifies (SBC-3 §5.37): FUA.
    const fua = request.fua || writeAndVerify;
    // A synchronous (inline) write cannot land inside a COMPARE AND WRITE or another
    // write's critical section as long as none holds its range now: no lock needed.
    if (!fua && context.rangeLock.isFree(offset, writeBytes) && context.device.writeInline?.(offset, data) === true) {
      return { status: ScsiStatus.GOOD, transferBytes: lengthBytes };
    }
    return writeLocked(context, offset, data, fua, lengthBytes);
  }
  return { status: ScsiStatus.GOOD, transferBytes: lengthBytes };
}

async function writeLocked(context: BlockCommandContext, offset: number, data: Buffer, fua: boolean, lengthBytes: number): Promise<ScsiResponse> {
  const release = context.rangeLock.tryAcquire(offset, data.length) ?? (await context.rangeLock.acquire(offset, data.length));
  try {
    await context.device.write(offset, data, { fua });
  } finally {
    release();
  }
  return { status: ScsiStatus.GOOD, transferBytes: lengthBytes };
}

/** VERIFY (10/12/16), SBC-3 §5.29: BYTCHK 0 reads only, 1 compares, 3 compares one block to each. */
export async function verifyBlocks(context: BlockCommandContext, task: ScsiTask): Promise<ScsiResponse> {
  const request = decodeVerify(task.cdb);
  if (request.protect !== 0) {
    throw invalidFieldInCdb(1, 5);
  }
  if (request.byteCheck === 2) {
    throw invalidFieldInCdb(1, 1);
  }
  assertRangeInCapacity(context.geometry, request);
  // Bounded like a transfer even without data-out: one command must not read a whole volume.
  assertTransferLimit(task.cdb, context.geometry, request.blocks);
  const { blockBytes } = context.geometry;
  const lengthBytes = request.blocks * blockBytes;
  const offset = byteOffset(context.geometry, request.lba);
  if (request.byteCheck === 0) {
    await readInChunks(context.device, offset, lengthBytes, () => undefined);
    return GOOD;
  }
  const expectedBytes = request.byteCheck === 3 ? Math.min(blockBytes, lengthBytes) : lengthBytes;
  const dataOut = task.dataOut ?? Buffer.alloc(0);
  if (dataOut.length < expectedBytes) {
    throw invalidFieldInCdb(lengthFieldByte(task.cdb));
  }
  await readInChunks(context.device, offset, lengthBytes, (chunk, at) => {
    for (let index = 0; index < chunk.length; index += 1) {
      const expectedIndex = request.byteCheck === 3 ? (at + index) % blockBytes : at + index;
      if (chunk[index] !== dataOut[expectedIndex]) {
        return at + index;
      }
    }
    return undefined;
  });
  return { status: ScsiStatus.GOOD, transferBytes: expectedBytes };
}

/** Read [offset, +length) in chunks; `check` returns the mismatch offset, if any, for MISCOMPARE. */
async function readInChunks(
  device: BlockDevice,
  offset: number,
  lengthBytes: number,
  check: (chunk: Buffer, at: number) => number | undefined,
): Promise<void> {
  const buffer = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, lengthBytes));
  for (let at = 0; at < lengthBytes; at += buffer.length) {
    const chunk = buffer.subarray(0, Math.min(buffer.length, lengthBytes - at));
    await device.read(offset + at, chunk);
    const mismatch = check(chunk, at);
    if (mismatch !== undefined) {
      throw miscompare(mismatch);
    }
  }
}

/** WRITE SAME (10/16), SBC-3 §5.44/5.45. */
export async function writeSame(context: BlockCommandContext, task: ScsiTask): Promise<ScsiResponse> {
  const request = decodeWriteSame(task.cdb);
  const { geometry } = context;
  if (request.protect !== 0) {
    throw invalidFieldInCdb(1, 5);
  }
  // ANCHOR needs UNMAP, and anchored blocks are not supported (ANC_SUP = 0).
  if (request.anchor) {
    throw invalidFieldInCdb(1, 4);
  }
  if (request.unmap && !geometry.thinProvisioned) {
    throw invalidFieldInCdb(1, 3);
  }
  let pattern: Buffer;
  if (request.noDataOutBuffer) {
    pattern = Buffer.alloc(geometry.blockBytes);
  } else {
    if (task.dataOut === undefined || task.dataOut.length !== geometry.blockBytes) {
      throw invalidFieldInCdb(lengthFieldByte(task.cdb));
    }
    pattern = task.dataOut;
  }
  assertWritable(context);
  const blocks = writeSameBlockCount(geometry, request);
  if (blocks > geometry.maxWriteSameBlocks) {
    throw invalidFieldInCdb(lengthFieldByte(task.cdb));
  }
  const offset = byteOffset(geometry, request.lba);
  const lengthBytes = blocks * geometry.blockBytes;
  const release = await context.rangeLock.acquire(offset, lengthBytes);
  try {
    await writePattern(context, offset, lengthBytes, pattern, request.unmap);
  } finally {
    release();
  }
  return { status: ScsiStatus.GOOD, transferBytes: request.noDataOutBuffer ? 0 : geometry.blockBytes };
}

/**
 * SBC-3 §5.44: NUMBER OF LOGICAL BLOCKS 0 asks for every block from the LBA
 * through the last one (the Block Limits VPD says WSNZ = 0). The count is
 * then bounded by MAXIMUM WRITE SAME LENGTH like any other, so in practice
 * only a tail of the volume can be written this way (libiscsi
 * WriteSame10.ZeroBlocks / UnmapUntilEnd expect exactly that).
 */
function writeSameBlockCount(geometry: LogicalUnitGeometry, request: BlockRange): number {
  if (request.blocks !== 0) {
    assertRangeInCapacity(geometry, request);
    return request.blocks;
  }
  if (request.lba >= geometry.blockCount) {
    throw lbaOutOfRange();
  }
  return Number(geometry.blockCount - request.lba);
}

async function writePattern(
  context: BlockCommandContext,
  offset: number,
  lengthBytes: number,
  pattern: Buffer,
  unmap: boolean,
): Promise<void> {
  const { device } = context;
  // UNMAP = 1 asks for an unmap operation on every LBA (SBC-3 §5.44, the
  // UNMAP bit); the pattern is only for LBAs that cannot be deallocated. The
  // initiator knows deallocated blocks read as zeroes (LBPRZ), and libiscsi's
  // UnmapUntilEnd checks exactly that after a WRITE SAME of 0xff with UNMAP.
  if (unmap && device.capabilities.trim) {
    await device.trim(offset, lengthBytes);
    return;
  }
  const zero = pattern.every((byte) => byte === 0);
  if (zero && device.capabilities.writeZeroes) {
    await device.writeZeroes(offset, lengthBytes, { noHole: !unmap });
    return;
  }
  const chunk = Buffer.allocUnsafe(Math.min(lengthBytes, Math.max(pattern.length, CHUNK_BYTES - (CHUNK_BYTES % pattern.length))));
  for (let at = 0; at < chunk.length; at += pattern.length) {
    pattern.copy(chunk, at);
  }
  for (let at = 0; at < lengthBytes; at += chunk.length) {
    await device.write(offset + at, chunk.subarray(0, Math.min(chunk.length, lengthBytes - at)));
  }
}

/** COMPARE AND WRITE (SBC-3 §5.2): compare then write, atomic against other writes to the range. */
export async function compareAndWrite(context: BlockCommandContext, task: ScsiTask): Promise<ScsiResponse> {
  const request = decodeCompareAndWrite(task.cdb);
  const { geometry } = context;
  if (request.protect !== 0) {
    throw invalidFieldInCdb(1, 5);
  }
  if (request.blocks > geometry.maxCompareAndWriteBlocks) {
    throw invalidFieldInCdb(13);
  }
  const lengthBytes = request.blocks * geometry.blockBytes;
  // The data-out buffer is the verify instance followed by the write instance.
  if ((task.dataOut?.length ?? 0) !== 2 * lengthBytes) {
    throw invalidFieldInCdb(13);
  }
  assertWritable(context);
  assertRangeInCapacity(geometry, request);
  if (request.blocks === 0 || task.dataOut === undefined) {
    return GOOD;
  }
  const offset = byteOffset(geometry, request.lba);
  const release = await context.rangeLock.acquire(offset, lengthBytes);
  try {
    const current = Buffer.allocUnsafe(lengthBytes);
    await context.device.read(offset, current);
    const verifyInstance = task.dataOut.subarray(0, lengthBytes);
    for (let index = 0; index < lengthBytes; index += 1) {
      if (current[index] !== verifyInstance[index]) {
        throw miscompare(index);
      }
    }
    await context.device.write(offset, task.dataOut.subarray(lengthBytes), { fua: request.fua });
  } finally {
    release();
  }
  return { status: ScsiStatus.GOOD, transferBytes: 2 * lengthBytes };
}

/**
 * ORWRITE (16) (SBC-3, ORWRITE (16) command): each byte written is the OR of the data-out
 * byte and the byte on the medium. The read and the write happen under the
 * range lock, so no other write lands in between (the atomicity COMPARE AND
 * WRITE has). No protection information: ORPROTECT must be 0. When the
 * initiator sent less than the CDB asks for, only the whole blocks it sent
 * are merged, as for WRITE.
 */
export async function orWrite(context: BlockCommandContext, task: ScsiTask): Promise<ScsiResponse> {
  const { request, lengthBytes, sentBytes: mergeBytes } = checkedWrite(context, task);
  const dataOut = task.dataOut ?? Buffer.alloc(0);
  if (mergeBytes > 0) {
    const offset = byteOffset(context.geometry, request.lba);
    const release = await context.rangeLock.acquire(offset, mergeBytes);
    try {
      const merged = Buffer.allocUnsafe(mergeBytes);
      await context.device.read(offset, merged);
      for (let index = 0; index < mergeBytes; index += 1) {
        merged[index] = (merged[index] ?? 0) | (dataOut[index] ?? 0);
      }
      await context.device.write(offset, merged, { fua: request.fua });
    } finally {
      release();
    }
  }
  return { status: ScsiStatus.GOOD, transferBytes: lengthBytes };
}

/**
 * PRE-FETCH (10/16), SBC-3 §5.9: the replicated device keeps no cache the
 * initiator could warm, so after the range check this is GOOD ("the cache
 * does not have sufficient capacity"), never CONDITION MET.
 */
export function preFetch(context: BlockCommandContext, task: ScsiTask): ScsiResponse {
  const range = decodeBlockRange(task.cdb);
  if ((byteAt(task.cdb, 1) & ~0x02 & 0xff) !== 0) {
    throw invalidFieldInCdb(1);
  }
  assertRangeInCapacity(context.geometry, range);
  return GOOD;
}

/** SYNCHRONIZE CACHE (10/16): one flush covers every completed write (BlockDevice contract). */
export async function synchronizeCache(context: BlockCommandContext, range: BlockRange): Promise<ScsiResponse> {
  assertRangeInCapacity(context.geometry, range);
  await context.device.flush();
  return GOOD;
}
