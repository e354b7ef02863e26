import { type ExtentIo, settleAll } from './extent-io.js';

/**
 * Copy-on-write of one extent (issue 8, docs/snapshots.md): the first write,
 * zero or partial trim into an extent that a snapshot or clone also maps
 * goes to a fresh extent holding the old bytes where the request does not
 * reach and the request's bytes (or zeroes) where it does. The shared
 * extent is only read. The caller publishes the new mapping afterwards, so
 * the volume never maps a half-filled extent.
 */
export interface CopyOnWriteFill {
  readonly extentSizeBytes: number;
  /** The shared extent the volume maps now. */
  readonly fromLocation: number;
  /** The freshly allocated extent (its old contents do not matter: every byte is written). */
  readonly toLocation: number;
  readonly offsetInExtent: number;
  readonly lengthBytes: number;
  /** The request's bytes, or null for zeroes (write-zeroes, partial trim). */
  readonly source: Buffer | null;
  readonly sourceOffset: number;
}

/** Build the new extent in one buffer (at most one extent, <= 64 MiB by assertExtentSize) and write it whole. */
export async function fillCopiedExtent(io: ExtentIo, fill: CopyOnWriteFill): Promise<void> {
  const { extentSizeBytes, fromLocation, toLocation, offsetInExtent, lengthBytes, source, sourceOffset } = fill;
  const extent = Buffer.allocUnsafe(extentSizeBytes);
  const requestEnd = offsetInExtent + lengthBytes;
  const reads: Promise<void>[] = [];
  if (offsetInExtent > 0) {
    reads.push(io.read(fromLocation, 0, extent, 0, offsetInExtent));
  }
  if (requestEnd < extentSizeBytes) {
    reads.push(io.read(fromLocation, requestEnd, extent, requestEnd, extentSizeBytes - requestEnd));
  }
  await settleAll(reads);
  if (source === null) {
    extent.fill(0, offsetInExtent, requestEnd);
  } else {
    source.copy(extent, offsetInExtent, sourceOffset, sourceOffset + lengthBytes);
  }
  await io.write(toLocation, 0, extent, 0, extentSizeBytes);
}
