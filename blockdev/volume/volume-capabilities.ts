import { PlinthError } from '../../common/plinth-error.js';
import type { BlockCapabilities, BlockDevice, BlockSizeHints } from '../block-device.js';

/**
 * What a replicated volume can promise, given its replicas. Every replica
 * must behave identically for an operation that changes data, otherwise
 * reads of the same block could differ between replicas:
 *   - trim, fastZero and blockStatus are offered only when every replica has them;
 *   - fua and writeZeroes are always offered: the controller emulates them per
 *     replica (write + flush; zero-filled writes) where a replica lacks them;
 *   - multiConn holds because a write completes only once every in-sync
 *     replica completed it, and flush reaches every in-sync replica.
 */

export function volumeCapabilities(devices: readonly BlockDevice[], readOnly: boolean): BlockCapabilities {
  const all = (pick: (caps: BlockCapabilities) => boolean): boolean =>
    devices.length > 0 && devices.every((device) => pick(device.capabilities));
  return {
    readOnly: readOnly || devices.some((device) => device.capabilities.readOnly),
    fua: true,
    trim: all((caps) => caps.trim),
    writeZeroes: true,
    fastZero: all((caps) => caps.fastZero),
    blockStatus: all((caps) => caps.blockStatus),
    multiConn: true,
  };
}

export function volumeBlockSize(devices: readonly BlockDevice[]): BlockSizeHints {
  const minimumBytes = Math.max(1, ...devices.map((device) => device.blockSize.minimumBytes));
  const preferredBytes = Math.max(minimumBytes, ...devices.map((device) => device.blockSize.preferredBytes));
  const maximumBytes = Math.min(...devices.map((device) => device.blockSize.maximumBytes));
  return { minimumBytes, preferredBytes, maximumBytes: Math.max(preferredBytes, maximumBytes) };
}

/** A replica joining later must keep every promise already made to clients. */
export function assertReplicaFits(
  replicaId: string,
  device: BlockDevice,
  sizeBytes: number,
  promised: BlockCapabilities,
): void {
  if (device.sizeBytes < sizeBytes) {
    throw new PlinthError('INVALID_ARGUMENT', `replica ${replicaId} holds ${device.sizeBytes} bytes, the volume needs ${sizeBytes}`, {
      replicaId,
      replicaSizeBytes: device.sizeBytes,
      sizeBytes,
    });
  }
  const missing: string[] = (['trim', 'fastZero', 'blockStatus'] as const).filter(
    (capability) => promised[capability] && !device.capabilities[capability],
  );
  if (device.capabilities.readOnly && !promised.readOnly) missing.push('writable');
  if (missing.length > 0) {
    throw new PlinthError('INVALID_ARGUMENT', `replica ${replicaId} lacks capabilities the volume offers: ${missing.join(', ')}`, {
      replicaId,
      missing,
    });
  }
}
