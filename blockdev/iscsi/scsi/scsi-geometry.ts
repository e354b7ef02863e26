import type { BlockCapabilities } from '../../block-device.js';
import type { ExportDescription } from '../../export-provider.js';

/**
 * What the device server tells initiators about the logical unit's shape,
 * derived once from the ExportDescription: logical block size, capacity,
 * transfer and UNMAP/WRITE SAME limits (SBC-3 §6.5.3 Block Limits VPD).
 *
 * Logical blocks are 512 bytes: every Plinth volume is byte-addressable
 * (BlockSizeHints.minimumBytes is 1 for the pool and replicated devices), and
 * 512 is what every initiator handles. A device that asks for a larger
 * minimum (a power of two up to 4096) gets that as its logical block size.
 * The preferred size becomes the physical block (LOGICAL BLOCKS PER PHYSICAL
 * BLOCK EXPONENT), so initiators align to it.
 */
export interface LogicalUnitGeometry {
  readonly blockBytes: number;
  readonly blockCount: bigint;
  /**
   * log2(physical block / logical block), SBC-3 §5.16.2. Reported as 0: the
   * preferred I/O size goes out as OPTIMAL TRANSFER LENGTH GRANULARITY
   * instead. With 3 (4 KiB physical blocks), libiscsi 1.19's
   * GetLBAStatus.UnmapSingle fails: its second loop asks GET LBA STATUS for
   * LBA i+1 and wants the first descriptor to start at i+LBPPB, while SBC-4
   * ("LBA status descriptor relationships") has the first descriptor start
   * at the requested LBA (and qemu's iscsi driver fails block-status with EIO
   * otherwise). Every other
   * libiscsi test passes with 3 (the five LBPPB >= 2 ones included), so this
   * is the only thing holding the exponent at 0.
   */
  readonly physicalBlockExponent: number;
  /** Blocks per preferred I/O unit (Block Limits VPD OPTIMAL TRANSFER LENGTH GRANULARITY). */
  readonly granularityBlocks: number;
  readonly maxTransferBlocks: number;
  readonly optimalTransferBlocks: number;
  readonly maxWriteSameBlocks: number;
  readonly maxUnmapBlocks: number;
  readonly maxUnmapDescriptors: number;
  readonly maxCompareAndWriteBlocks: number;
  /** UNMAP / WRITE SAME with UNMAP are offered: the device can trim (LBPME). */
  readonly thinProvisioned: boolean;
  /** Deallocated blocks read as zeroes (ARCHITECTURE invariant 5), so LBPRZ is set. */
  readonly readsZeroAfterUnmap: boolean;
  readonly readOnly: boolean;
  readonly capabilities: BlockCapabilities;
}

const DEFAULT_BLOCK_BYTES = 512;
const MAX_BLOCK_BYTES = 4096;
/** A limit on every request's buffer: reads allocate the whole transfer at once. */
const MAX_TRANSFER_BYTES = 8 * 1024 * 1024;
/** libiscsi requires 0 < MAXIMUM UNMAP LBA COUNT <= 1 Mi unless unlimited. */
const MAX_UNMAP_BLOCKS = 1024 * 1024;
const MAX_UNMAP_DESCRIPTORS = 256;
const MAX_COMPARE_AND_WRITE_BLOCKS = 255;

function isPowerOfTwo(value: number): boolean {
  return value > 0 && (value & (value - 1)) === 0;
}

export function geometryOf(description: ExportDescription): LogicalUnitGeometry {
  const minimum = description.blockSize.minimumBytes;
  const blockBytes =
    isPowerOfTwo(minimum) && minimum > DEFAULT_BLOCK_BYTES && minimum <= MAX_BLOCK_BYTES ? minimum : DEFAULT_BLOCK_BYTES;
  const preferred = description.blockSize.preferredBytes;
  const granularityBlocks = isPowerOfTwo(preferred) && preferred > blockBytes ? Math.min(preferred / blockBytes, 0xffff) : 1;
  const maximumBytes = Math.max(blockBytes, Math.min(description.blockSize.maximumBytes, MAX_TRANSFER_BYTES));
  const maxTransferBlocks = Math.floor(maximumBytes / blockBytes);
  const thinProvisioned = description.capabilities.trim && !description.readOnly;
  return {
    blockBytes,
    blockCount: BigInt(Math.floor(description.sizeBytes / blockBytes)),
    physicalBlockExponent: 0,
    granularityBlocks,
    maxTransferBlocks,
    optimalTransferBlocks: Math.max(1, Math.min(maxTransferBlocks, Math.floor((1024 * 1024) / blockBytes))),
    // libiscsi writes MAXIMUM WRITE SAME LENGTH blocks with one WRITE first, so it may not exceed a transfer.
    maxWriteSameBlocks: maxTransferBlocks,
    maxUnmapBlocks: thinProvisioned ? MAX_UNMAP_BLOCKS : 0,
    maxUnmapDescriptors: thinProvisioned ? MAX_UNMAP_DESCRIPTORS : 0,
    maxCompareAndWriteBlocks: MAX_COMPARE_AND_WRITE_BLOCKS,
    thinProvisioned,
    readsZeroAfterUnmap: thinProvisioned,
    readOnly: description.readOnly,
    capabilities: description.capabilities,
  };
}
