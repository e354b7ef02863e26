import { decodeReservationImage, type ReservationImage } from '../../blockdev/iscsi/scsi/scsi-reservation-image.js';
import { PlinthError } from '../../common/plinth-error.js';
import type { ClusterState, VolumeRecord } from './cluster-state.js';
import type { VolumeApplied } from './replica-commands.js';
import { requireVolume, withVolume } from './state-assertions.js';

/**
 * iSCSI persistent reservations in the cluster state (docs/iscsi.md
 * "Persistent reservations"). The node serving a volume commits every
 * PERSISTENT RESERVE OUT here before it answers, so the registrations and
 * the reservation move with the volume on failover and the fence a
 * clustered application built with them holds on the new owner.
 */

/**
 * Replace a volume's reservation image. Refused with FENCED unless nodeId is
 * the volume's owner at its current generation: like a stale owner's
 * writes (ARCHITECTURE invariant 3), a former owner's late reservation
 * change must never overwrite what the new owner's initiators did.
 */
export interface VolumeScsiReservationsCommand {
  readonly type: 'volume.scsi-reservations';
  readonly name: string;
  readonly nodeId: string;
  readonly generation: number;
  readonly image: ReservationImage;
}

export function setScsiReservations(state: ClusterState, command: VolumeScsiReservationsCommand): VolumeApplied {
  const volume = requireVolume(state, command.name);
  if (volume.attachedTo !== command.nodeId || command.generation !== volume.generation) {
    throw new PlinthError(
      'FENCED',
      `volume ${volume.name} is served by ${volume.attachedTo ?? 'no node'} at generation ${volume.generation}; ` +
        `reservations from node ${command.nodeId} at generation ${command.generation} are refused`,
      { name: volume.name, nodeId: command.nodeId, generation: command.generation, currentGeneration: volume.generation, attachedTo: volume.attachedTo },
    );
  }
  // decodeCommand checked the image already; the state machine is the authority and checks again.
  const image = decodeReservationImage(command.image);
  const updated: VolumeRecord = { ...volume, scsiReservations: image };
  return { state: withVolume(state, updated), volume: updated };
}
