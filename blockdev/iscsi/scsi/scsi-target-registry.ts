import type pino from 'pino';
import type { BlockDevice } from '../../block-device.js';
import type { ExportDescription } from '../../export-provider.js';
import { geometryOf } from './scsi-geometry.js';
import { LogicalUnitSession } from './scsi-logical-unit-session.js';
import { LogicalUnitState } from './scsi-logical-unit-state.js';
import { loadReservations, type ReservationStore } from './scsi-reservation-store.js';
import type { InitiatorPort, ScsiLogicalUnitSession, ScsiTargetRegistry } from './scsi-task.js';
import { targetNameOf } from '../iscsi-constants.js';

/**
 * The node-wide ScsiTargetRegistry: one LogicalUnitState per volume (keyed
 * by the volume UUID, so a renamed or re-described volume keeps its
 * reservations), shared by every session on this node. State lives as long
 * as the registry: persistent reservations outlive sessions (SPC-4 §5.9.1).
 * With a ReservationStore they also outlive this node's ownership: a state
 * opened with no session on it (first session here, after a failover, or
 * back after the volume was served elsewhere) starts from the committed
 * image, and every PERSISTENT RESERVE OUT commits before it answers.
 */

export interface ScsiTargetRegistryModules {
  readonly logger: pino.Logger;
  /** Absent: reservations live in this node's memory only (unit tests). */
  readonly reservationStore?: ReservationStore;
}

export function createScsiTargetRegistry(modules: ScsiTargetRegistryModules): ScsiTargetRegistry {
  const states = new Map<string, LogicalUnitState>();
  const logger = modules.logger.child({ component: 'scsi' });
  const store = modules.reservationStore;
  return {
    openLogicalUnit(description: ExportDescription, device: BlockDevice, nexus: InitiatorPort): ScsiLogicalUnitSession {
      const geometry = geometryOf({ ...description, sizeBytes: device.sizeBytes });
      let state = states.get(description.id);
      if (state === undefined) {
        state = new LogicalUnitState(geometry, { reservations: loadReservations(store, description.id), ...reservationStoreOption(store) });
        states.set(description.id, state);
      } else {
        // The volume may have grown since the last session (a new generation on attach).
        state.geometry = geometry;
        if (store !== undefined && state.connectedNexuses.size === 0 && !state.changingReservations) {
          // Another node may have served the volume (and changed its reservations) since our last session.
          state.reservations = loadReservations(store, description.id);
        }
      }
      return new LogicalUnitSession(nexus, {
        state,
        device,
        identity: {
          volumeId: description.id,
          targetName: targetNameOf(description.name),
          targetPortalGroupTag: nexus.targetPortalGroupTag,
        },
        logger: logger.child({ volume: description.name }),
      });
    },
  };
}

/** exactOptionalPropertyTypes: leave the option out rather than pass undefined. */
function reservationStoreOption(store: ReservationStore | undefined): { reservationStore?: ReservationStore } {
  return store === undefined ? {} : { reservationStore: store };
}
