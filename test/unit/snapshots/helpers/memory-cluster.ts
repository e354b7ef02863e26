import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { installErrorHandling } from '../../../../api/error-handling.js';
import { registerSendReceiveRoutes } from '../../../../api/routes/send-receive-routes.js';
import { sharedSchemas } from '../../../../api/schemas/view-schemas.js';
import { PlinthError } from '../../../../common/plinth-error.js';
import type { CommandProposer } from '../../../../daemon/control/command-proposer.js';
import { ReceiveService } from '../../../../daemon/snapshots/receive-service.js';
import { RetentionScheduleService } from '../../../../daemon/snapshots/retention-schedule-service.js';
import { SendService } from '../../../../daemon/snapshots/send-service.js';
import { applyCommand, type CommandResult } from '../../../../daemon/state/apply-command.js';
import { findVolume, inSyncNodeIds, type ClusterState, type VolumeRecord } from '../../../../daemon/state/cluster-state.js';
import type { Command } from '../../../../daemon/state/commands.js';
import { requireSnapshot } from '../../../../daemon/state/snapshot-commands.js';
import { MemoryPool } from '../../../helpers/memory-pool.js';
import { ok, withNodes } from '../../daemon/helpers/cluster-state-fixture.js';

/**
 * A whole "cluster" in one process for send/receive tests: the real state
 * machine (applyCommand) behind a CommandProposer, one MemoryPool standing
 * for the replicas' identical copies, snapshot create/revert/delete done the
 * way the coordinator does them (pool first, then the command), and the real
 * send/receive services and routes on a fastify app (inject()).
 */
export const EXTENT_BYTES = 64 * 1024;
const AT = '2026-11-26T00:00:00.000Z';

export class MemoryCluster {
  state: ClusterState;
  readonly pool = new MemoryPool({ extentSizeBytes: EXTENT_BYTES });
  readonly commands: CommandProposer;
  readonly proposed: Command[] = [];
  #ids = 0;

  constructor(readonly clusterId: string) {
    this.state = { ...withNodes(['n1', 'n2'], AT), clusterId };
    const cluster = this;
    this.commands = {
      get state() {
        return cluster.state;
      },
      propose: async (command: Command): Promise<CommandResult> => {
        const applied = applyCommand(cluster.state, command);
        if (applied instanceof PlinthError) throw applied;
        cluster.proposed.push(command);
        cluster.state = applied.state;
        return applied.result;
      },
    };
  }

  newId(prefix: string): string {
    this.#ids += 1;
    return `${this.clusterId}-${prefix}-${this.#ids}`;
  }

  volume(name: string): VolumeRecord {
    const volume = findVolume(this.state, name);
    if (volume === undefined) throw new PlinthError('VOLUME_NOT_FOUND', `volume ${name} does not exist`, { name });
    return volume;
  }

  createVolume(name: string, sizeBytes: number): void {
    this.state = ok(this.state, { type: 'volume.create', id: this.newId('vol'), name, sizeBytes, replicaCount: 2, createdAt: AT }).state;
  }

  async createSnapshot(name: string, snapshotName: string): Promise<void> {
    const volume = this.volume(name);
    const snapshotId = this.newId('snap');
    await this.pool.openVolume(volume.id, volume.sizeBytes).then((store) => store.flush());
    await this.pool.createSnapshot(volume.id, snapshotId);
    await this.commands.propose({ type: 'snapshot.create', name, snapshotId, snapshotName, createdAt: new Date().toISOString(), generation: volume.generation, holders: inSyncNodeIds(volume) });
  }

  async revertVolume(name: string, snapshotName: string): Promise<void> {
    const volume = this.volume(name);
    await this.pool.openStores.get(volume.id)?.close();
    await this.pool.revertVolume(volume.id, requireSnapshot(volume, snapshotName).id);
    await this.commands.propose({ type: 'volume.revert', name, snapshotName, generation: volume.generation, at: new Date().toISOString() });
  }

  async deleteVolume(name: string): Promise<void> {
    const volume = this.volume(name);
    await this.commands.propose({ type: 'volume.delete', name });
    await this.pool.openStores.get(volume.id)?.close();
    for (const info of this.pool.listSnapshots(volume.id)) await this.pool.openSnapshot(volume.id, info.snapshotId).then((device) => device.close());
    await this.pool.deleteVolume(volume.id);
  }

  /** The volume's current content, read through the pool. */
  async content(name: string): Promise<Buffer> {
    const volume = this.volume(name);
    const store = await this.pool.openVolume(volume.id, volume.sizeBytes);
    const data = Buffer.alloc(volume.sizeBytes);
    await store.read(0, data);
    await store.close();
    return data;
  }

  /** `sendNodeId`: the node answering sends (default n1, a holder; another id takes the non-holder path). */
  async buildApp(options: { readonly checkpointEveryBytes?: number; readonly sendNodeId?: string } = {}): Promise<FastifyInstance> {
    const logger = pino({ level: 'silent' });
    const { sendNodeId = 'n1', ...receiveOptions } = options;
    const send = new SendService({ nodeId: sendNodeId }, {
      state: () => this.state,
      pool: this.pool,
      openSnapshot: async (volume, snapshot) => {
        const device = await this.pool.openSnapshot(volume.id, snapshot.id);
        return { device, close: () => undefined };
      },
      logger,
    });
    const receive = new ReceiveService({ nodeId: 'n1', ...receiveOptions }, {
      commands: this.commands,
      openWriter: async (name) => {
        await this.commands.propose({ type: 'volume.attach', name, nodeId: 'n1' });
        const volume = this.volume(name);
        const store = await this.pool.openVolume(volume.id, volume.sizeBytes);
        return { device: store, release: async () => { await store.close(); await this.commands.propose({ type: 'volume.detach', name }); } };
      },
      createSnapshot: (volume, snapshot) => this.createSnapshot(volume, snapshot),
      revertVolume: (volume, snapshot) => this.revertVolume(volume, snapshot),
      resizeVolume: async (volume, sizeBytes) => {
        await this.commands.propose({ type: 'volume.resize', name: volume, sizeBytes });
        await this.pool.resizeVolume(this.volume(volume).id, sizeBytes).catch((error: unknown) => {
          if (!(error instanceof PlinthError && error.code === 'VOLUME_NOT_FOUND')) throw error;
        });
      },
      deleteVolume: (volume) => this.deleteVolume(volume),
      placement: () => ['n1', 'n2'],
      logger,
      newId: () => this.newId('vol'),
    });
    // The app's own settings (build-api-app.ts): no type coercion, closed bodies.
    const app = Fastify({ logger: false, ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } } });
    for (const schema of sharedSchemas) app.addSchema(schema);
    installErrorHandling(app, 64 * 1024);
    await registerSendReceiveRoutes(app, { send, receive, schedules: new RetentionScheduleService({ commands: this.commands }) });
    await app.ready();
    return app;
  }
}
