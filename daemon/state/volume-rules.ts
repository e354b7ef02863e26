import { PlinthError } from '../../common/plinth-error.js';
import { formatSize } from '../../common/sizes.js';

/**
 * The rules a volume must obey, shared by the state machine (the authority)
 * and anyone who wants to fail fast at the edge with the same message.
 */
export const MAX_REPLICAS = 5;
export const DEFAULT_MAX_REPLICAS = 3;
/** Sizes are whole 512-byte sectors: both NBD and SCSI address in them. */
export const SECTOR_BYTES = 512;
/** 1 PiB: far beyond any pool today, but a limit keeps offsets sane everywhere. */
export const MAX_VOLUME_SIZE_BYTES = 2 ** 50;
export const MAX_VOLUMES = 10_000;
export const MAX_NODES = 64;
/** 30 days: a replica away longer than that is surely gone. */
export const MAX_GRACE_MS = 30 * 24 * 60 * 60 * 1000;

export { assertVolumeName } from '../../common/volume-name.js';

export function assertVolumeSize(sizeBytes: number): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) {
    throw new PlinthError('INVALID_SIZE', `volume size must be a positive whole number of bytes, got ${sizeBytes}`, { sizeBytes });
  }
  if (sizeBytes % SECTOR_BYTES !== 0) {
    throw new PlinthError('INVALID_SIZE', `volume size ${sizeBytes} is not a multiple of ${SECTOR_BYTES} bytes`, { sizeBytes });
  }
  if (sizeBytes > MAX_VOLUME_SIZE_BYTES) {
    throw new PlinthError('INVALID_SIZE', `volume size ${formatSize(sizeBytes)} is above the limit of ${formatSize(MAX_VOLUME_SIZE_BYTES)}`, {
      sizeBytes,
    });
  }
}

/** replicaCount 1..5 and no more than the nodes that could each hold one (one replica per node). */
export function assertReplicaCount(replicaCount: number, nodes: number): void {
  if (!Number.isSafeInteger(replicaCount) || replicaCount < 1 || replicaCount > MAX_REPLICAS) {
    throw new PlinthError('INVALID_ARGUMENT', `replica count must be 1 to ${MAX_REPLICAS}, got ${replicaCount}`, { replicaCount });
  }
  if (replicaCount > nodes) {
    throw new PlinthError(
      'INVALID_ARGUMENT',
      `${replicaCount} replicas need ${replicaCount} nodes; the cluster has ${nodes}`,
      { replicaCount, nodeCount: nodes },
    );
  }
}

export function defaultReplicaCount(nodes: number): number {
  return Math.min(DEFAULT_MAX_REPLICAS, nodes);
}
