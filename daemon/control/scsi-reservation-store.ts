import type { Logger } from 'pino';
import type { ReservationImage } from '../../blockdev/iscsi/scsi/scsi-reservation-image.js';
import type { ReservationStore } from '../../blockdev/iscsi/scsi/scsi-reservation-store.js';
import { PlinthError } from '../../common/plinth-error.js';
import { findVolumeById } from '../state/cluster-state.js';
import type { CommandProposer } from './command-proposer.js';

/**
 * The iSCSI ReservationStore on the cluster state (docs/iscsi.md
 * "Persistent reservations"): load reads the volume record this node has
 * applied; commit proposes volume.scsi-reservations as this node at the
 * generation it applied, which the state machine refuses unless this node
 * still owns the volume at that generation.
 */

export interface ClusterReservationStoreOptions {
  readonly nodeId: string;
}

export interface ClusterReservationStoreModules {
  readonly commands: CommandProposer;
  readonly logger: Logger;
}

export function createClusterReservationStore(options: ClusterReservationStoreOptions, modules: ClusterReservationStoreModules): ReservationStore {
  const { nodeId } = options;
  const { commands, logger } = modules;
  return {
    load(volumeId: string): ReservationImage | undefined {
      return findVolumeById(commands.state, volumeId)?.scsiReservations;
    },
    async commit(volumeId: string, image: ReservationImage): Promise<void> {
      const volume = findVolumeById(commands.state, volumeId);
      if (volume === undefined) {
        throw new PlinthError('VOLUME_NOT_FOUND', `volume ${volumeId} does not exist any more`, { volumeId });
      }
      // Fail fast here; the state machine makes the same check authoritatively at apply time.
      if (volume.attachedTo !== nodeId) {
        throw new PlinthError('FENCED', `volume ${volume.name} is served by ${volume.attachedTo ?? 'no node'}, not by node ${nodeId}`, {
          name: volume.name,
          generation: volume.generation,
        });
      }
      await commands.propose({ type: 'volume.scsi-reservations', name: volume.name, nodeId, generation: volume.generation, image });
      logger.debug({ volume: volume.name, generation: volume.generation, registrations: image.registrations.length }, 'persistent reservations committed');
    },
  };
}
