import type { Logger } from 'pino';
import type { Pool } from '../../blockdev/pool/pool-types.js';
import { PlinthError } from '../../common/plinth-error.js';
import type { CommandProposer } from '../control/command-proposer.js';
import type { VolumeExports } from '../control/volume-exports.js';
import { choosePlacement } from '../control/volume-placement.js';
import type { ControlPlane } from '../control-plane.js';
import type { LeaderReconciler } from '../reconciler/leader-reconciler.js';
import { createSnapshotRetentionReconciler } from '../reconciler/snapshot-retention-reconciler.js';
import type { RetentionAction } from './retention-plan.js';
import type { VolumeRecord } from '../state/cluster-state.js';
import type { SnapshotRecord } from '../state/snapshot-commands.js';
import { receiveWriterConnectionId } from '../state/receive-commands.js';
import { ReceiveService, type ReceiveWriter } from './receive-service.js';
import { RetentionScheduleService } from './retention-schedule-service.js';
import { SendService, type OpenedSnapshot } from './send-service.js';

/**
 * The composition of send/receive and retention (issue 8) from the
 * daemon's real modules, so daemon/main.ts wires it in a few lines:
 *
 *   const sendReceive = createSendReceiveServices({ nodeId }, { commands, pool, exports, control, openSnapshot, logger });
 *   sendReceive.retention.start(); stack.push('snapshot retention', () => sendReceive.retention.close());
 *   buildApiApp(…, { …, sendReceive })   // api/routes/send-receive-routes.ts
 */
export interface SendReceiveServicesModules {
  readonly commands: CommandProposer;
  readonly pool: Pool;
  readonly exports: VolumeExports;
  readonly control: ControlPlane;
  /** SnapshotReaders.open: this node's pool or a holder over SNAPSHOT_READ. */
  readonly openSnapshot: (volume: VolumeRecord, snapshot: SnapshotRecord, exportName: string) => Promise<OpenedSnapshot>;
  readonly logger: Logger;
}

export interface SendReceiveServicesBundle {
  readonly send: SendService;
  readonly receive: ReceiveService;
  readonly schedules: RetentionScheduleService;
  readonly retention: LeaderReconciler<RetentionAction>;
}

export function createSendReceiveServices(options: { readonly nodeId: string }, modules: SendReceiveServicesModules): SendReceiveServicesBundle {
  const { commands, pool, exports, control, logger } = modules;
  const { nodeId } = options;
  const snapshotMethod = <K extends 'createSnapshot' | 'deleteSnapshot' | 'revertVolume'>(name: K): NonNullable<ControlPlane[K]> => {
    const method = control[name];
    if (method === undefined) throw new PlinthError('NOT_SUPPORTED', `this node's control plane has no ${name}`);
    return method.bind(control) as NonNullable<ControlPlane[K]>;
  };
  const send = new SendService({ nodeId }, {
    state: () => commands.state,
    ...(commands.barrier === undefined ? {} : { barrier: () => commands.barrier?.() ?? Promise.resolve() }),
    pool,
    openSnapshot: (volume, snapshot) => modules.openSnapshot(volume, snapshot, `${volume.name}@${snapshot.name} (send)`),
    logger: logger.child({ component: 'send' }),
  });
  const receive = new ReceiveService({ nodeId }, {
    commands,
    openWriter: (name) => openReceiveWriter(name, { commands, exports }),
    createSnapshot: (volume, snapshot) => snapshotMethod('createSnapshot')(volume, snapshot),
    revertVolume: (volume, snapshot) => snapshotMethod('revertVolume')(volume, snapshot),
    resizeVolume: (volume, sizeBytes) => control.resizeVolume(volume, sizeBytes),
    deleteVolume: (volume) => control.deleteVolume(volume),
    placement: (state, replicaCount) => choosePlacement(state, { name: 'received', sizeBytes: 0, ...(replicaCount === undefined ? {} : { replicaCount }) }, nodeId),
    logger: logger.child({ component: 'receive' }),
  });
  const retention = createSnapshotRetentionReconciler({}, {
    state: () => commands.state,
    isLeader: () => commands.leaderId === nodeId,
    nowMs: Date.now,
    createSnapshot: (volume, snapshot) => snapshotMethod('createSnapshot')(volume, snapshot),
    deleteSnapshot: (volume, snapshot) => snapshotMethod('deleteSnapshot')(volume, snapshot),
    logger,
  });
  return { send, receive, schedules: new RetentionScheduleService({ commands }), retention };
}

/**
 * The receive writes through the normal replicated path: it opens the volume
 * like a protocol client would (attaching it here with a new generation),
 * and detaches it when done so the received volume starts life detached.
 * VolumeExports must let this internal client in while the volume is
 * receiving (and refuse NBD/iSCSI clients then: assertNotReceiving).
 */
async function openReceiveWriter(name: string, modules: { readonly commands: CommandProposer; readonly exports: VolumeExports }): Promise<ReceiveWriter> {
  const handle = await modules.exports.openExport(name, { protocol: 'nbd', connectionId: receiveWriterConnectionId(name), remoteAddress: 'plinth volume receive' });
  return {
    device: handle.device,
    release: async () => {
      handle.release();
      await modules.exports.withVolumeReleased(name, {}, () => modules.commands.propose({ type: 'volume.detach', name }));
    },
  };
}
