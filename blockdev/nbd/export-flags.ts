import type { BlockCapabilities, BlockSizeHints } from '../block-device.js';
import type { ExportDescription } from '../export-provider.js';
import {
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
} from './constants.js';
import type { BlockSizeInfo } from './handshake-codec.js';

/**
 * What a client is told about an export: transmission flags from the
 * device's capabilities (proto.md "Transmission flags") and block size
 * constraints from its hints (proto.md "Block size constraints").
 */

export interface ExportFlagInputs {
  readonly capabilities: BlockCapabilities;
  /** The export is read-only even if the device is not (e.g. `volume@snapshot`). */
  readonly readOnly: boolean;
  readonly structuredReplies: boolean;
}

export function transmissionFlagsFor(inputs: ExportFlagInputs): number {
  const { capabilities } = inputs;
  const readOnly = inputs.readOnly || capabilities.readOnly;
  // FLUSH is part of every BlockDevice; CACHE is accepted as a hint we may ignore.
  let flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_CACHE;
  if (readOnly) {
    flags |= NBD_FLAG_READ_ONLY;
  } else {
    if (capabilities.fua) flags |= NBD_FLAG_SEND_FUA;
    if (capabilities.trim) flags |= NBD_FLAG_SEND_TRIM;
    if (capabilities.writeZeroes) {
      flags |= NBD_FLAG_SEND_WRITE_ZEROES;
      // proto.md: SEND_FAST_ZERO MUST be clear unless SEND_WRITE_ZEROES is set.
      if (capabilities.fastZero) flags |= NBD_FLAG_SEND_FAST_ZERO;
    }
  }
  if (capabilities.multiConn) flags |= NBD_FLAG_CAN_MULTI_CONN;
  // We always answer a READ with one OFFSET_DATA chunk, so "don't fragment"
  // costs nothing; proto.md: SEND_DF MUST be clear without structured replies.
  if (inputs.structuredReplies) flags |= NBD_FLAG_SEND_DF;
  return flags;
}

/** Smallest power of two >= value (value >= 1). */
function ceilPowerOfTwo(value: number): number {
  return 2 ** Math.ceil(Math.log2(value));
}

const MAX_MINIMUM_BLOCK_BYTES = 65_536;
const MIN_PREFERRED_BLOCK_BYTES = 512;

/**
 * Block sizes that obey proto.md whatever the device hints: minimum a power
 * of two <= 64 KiB (rounded up, so the device's alignment still holds),
 * preferred a power of two >= max(minimum, 512), maximum a multiple of the
 * minimum and at most our payload limit.
 */
export function advertisedBlockSize(hints: BlockSizeHints, maxPayloadBytes: number): BlockSizeInfo {
  const minimumBytes = Math.min(ceilPowerOfTwo(Math.max(1, hints.minimumBytes)), MAX_MINIMUM_BLOCK_BYTES);
  const preferredBytes = Math.min(
    ceilPowerOfTwo(Math.max(hints.preferredBytes, minimumBytes, MIN_PREFERRED_BLOCK_BYTES)),
    2 ** 31,
  );
  const cap = Math.min(Math.max(hints.maximumBytes, minimumBytes), maxPayloadBytes);
  const maximumBytes = Math.max(minimumBytes, cap - (cap % minimumBytes));
  return { minimumBytes, preferredBytes, maximumBytes };
}

/** Default constraints for a client that negotiated none (proto.md: 1 / 4096 / unlimited). */
export function defaultBlockSize(maxPayloadBytes: number): BlockSizeInfo {
  return { minimumBytes: 1, preferredBytes: 4096, maximumBytes: maxPayloadBytes };
}
