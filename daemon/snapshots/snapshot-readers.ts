import type { Logger } from 'pino';
import { isPlinthError, PlinthError, toError } from '../../common/plinth-error.js';
import type { BlockDevice } from '../../blockdev/block-device.js';
import { isNodeUp, type ClusterState, type VolumeRecord } from '../state/cluster-state.js';
import type { SnapshotRecord } from '../state/snapshot-commands.js';
import { SnapshotExportDevice } from './snapshot-export-device.js';
import type { SnapshotReadLink, SnapshotReplicaClient } from './snapshot-replica-client.js';

/**
 * Where a `volume@snapshot` export reads from (issue 8): this node's pool
 * when it holds the snapshot, otherwise a holder the cluster sees up, over
 * SNAPSHOT_READ. Neither attaches the volume nor changes its generation, so
 * a snapshot reads the same while the volume is written elsewhere. A broken
 * link to a holder is replaced by one to the next holder on the next read.
 */

export interface SnapshotReadersOptions {
  readonly nodeId: string;
}

export interface SnapshotReadersModules {
  readonly state: () => ClusterState;
  /** Read this node's copy (ReplicaService.snapshots.read); absent: always remote. */
  readonly localRead?: (volumeId: string, snapshotId: string, offset: number, target: Buffer) => Promise<void>;
  /** True when this node's pool holds the snapshot (it may be a holder whose copy is not there yet). */
  readonly holdsLocally: (volumeId: string, snapshotId: string) => boolean;
  readonly client: SnapshotReplicaClient;
  readonly logger: Logger;
}

export interface OpenSnapshotExport {
  readonly device: BlockDevice;
  close(): void;
}

export class SnapshotReaders {
  readonly #options: SnapshotReadersOptions;
  readonly #modules: SnapshotReadersModules;

  constructor(options: SnapshotReadersOptions, modules: SnapshotReadersModules) {
    this.#options = options;
    this.#modules = modules;
  }

  async open(volume: VolumeRecord, snapshot: SnapshotRecord, exportName: string): Promise<OpenSnapshotExport> {
    const { localRead, holdsLocally, logger } = this.#modules;
    const sizeBytes = snapshot.sizeBytes;
    if (localRead !== undefined && snapshot.holders.includes(this.#options.nodeId) && holdsLocally(volume.id, snapshot.id)) {
      logger.info({ export: exportName, source: 'local pool' }, 'snapshot export opened');
      const device = new SnapshotExportDevice({ exportName, sizeBytes }, (offset, target) => localRead(volume.id, snapshot.id, offset, target));
      return { device, close: () => undefined };
    }
    const remote = new RemoteSnapshotSource(volume.name, snapshot, this.#options.nodeId, this.#modules);
    await remote.connect();
    const device = new SnapshotExportDevice({ exportName, sizeBytes }, (offset, target) => remote.read(offset, target));
    return { device, close: () => remote.close() };
  }
}

/** SNAPSHOT_READ from one holder at a time, moving on to the next one up when its link breaks. */
class RemoteSnapshotSource {
  readonly #volumeName: string;
  readonly #snapshot: SnapshotRecord;
  readonly #nodeId: string;
  readonly #modules: SnapshotReadersModules;
  #link: SnapshotReadLink | undefined;
  #connecting: Promise<SnapshotReadLink> | undefined;
  #closed = false;

  constructor(volumeName: string, snapshot: SnapshotRecord, nodeId: string, modules: SnapshotReadersModules) {
    this.#volumeName = volumeName;
    this.#snapshot = snapshot;
    this.#nodeId = nodeId;
    this.#modules = modules;
  }

  async connect(): Promise<void> {
    await this.#current();
  }

  async read(offset: number, target: Buffer): Promise<void> {
    const link = await this.#current();
    try {
      await link.read(offset, target);
    } catch (err) {
      // Only a broken link is retried elsewhere; a refusal (range, size) is the answer.
      // FENCED: a new owner attached since the link opened; a link at the new generation reads the same snapshot.
      if (!isPlinthError(err, 'IO_ERROR') && !isPlinthError(err, 'TIMEOUT') && !isPlinthError(err, 'FENCED')) throw err;
      link.close();
      await (await this.#current()).read(offset, target);
    }
  }

  close(): void {
    this.#closed = true;
    this.#link?.close();
  }

  #current(): Promise<SnapshotReadLink> {
    if (this.#closed) return Promise.reject(new PlinthError('SHUTTING_DOWN', `snapshot export ${this.#volumeName}@${this.#snapshot.name} is closed`));
    if (this.#link !== undefined && !this.#link.closed) return Promise.resolve(this.#link);
    this.#connecting ??= this.#connectToAHolder().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connectToAHolder(): Promise<SnapshotReadLink> {
    const state = this.#modules.state();
    const volume: VolumeRecord | undefined = Object.values(state.volumes).find((candidate) => candidate.name === this.#volumeName);
    if (volume === undefined) throw new PlinthError('VOLUME_NOT_FOUND', `volume ${this.#volumeName} does not exist any more`, { name: this.#volumeName });
    const holders = this.#snapshot.holders.filter((nodeId) => nodeId !== this.#nodeId && isNodeUp(state, nodeId));
    let lastError: PlinthError | undefined;
    for (const holder of holders) {
      try {
        const link = await this.#modules.client.openReadLink(holder, { volumeId: volume.id, sizeBytes: volume.sizeBytes, generation: volume.generation }, this.#snapshot.id);
        this.#link = link;
        this.#modules.logger.info({ export: `${this.#volumeName}@${this.#snapshot.name}`, source: holder }, 'snapshot export reading from a holder');
        return link;
      } catch (err) {
        lastError = isPlinthError(err) ? err : new PlinthError('IO_ERROR', toError(err).message, {}, { cause: err });
        this.#modules.logger.warn({ err: toError(err), holder }, 'snapshot holder did not answer; trying the next');
      }
    }
    throw new PlinthError(
      'IO_ERROR',
      `no holder of ${this.#volumeName}@${this.#snapshot.name} answers (holders: ${this.#snapshot.holders.join(', ') || 'none'})${lastError === undefined ? '' : `: ${lastError.message}`}`,
      { name: this.#volumeName, snapshot: this.#snapshot.name, holders: this.#snapshot.holders },
    );
  }
}
