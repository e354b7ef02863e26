import { EventEmitter, once } from 'node:events';
import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import { formatSize } from '../../common/sizes.js';
import type { BlockDevice, BlockSizeHints } from '../../blockdev/block-device.js';
import type { ExportClient, ExportDescription, ExportHandle, ExportProvider } from '../../blockdev/export-provider.js';
import type { Pool } from '../../blockdev/pool/pool-types.js';
import { DEFAULT_MAX_IO_BYTES } from '../../blockdev/replica/replica-protocol.js';
import { VOLUME_BLOCK_SIZE, VOLUME_CAPABILITIES } from '../../blockdev/pool/volume-store.js';
import { findVolume, type VolumeRecord } from '../state/cluster-state.js';
import { attachedHere } from '../volume/applied-state-watcher.js';
import type { VolumeSession } from '../volume/volume-session.js';
import type { VolumeSessions } from '../volume/volume-sessions.js';
import { SoleLocalDevice } from '../volume/sole-local-device.js';
import type { CommandProposer } from './command-proposer.js';
import { expectVolumeResult } from './command-proposer.js';
import { KeyedMutex } from './keyed-mutex.js';
import { MeteredDevice } from '../metrics/metered-device.js';
import type { VolumeIoRecorder } from '../metrics/volume-io-stats.js';
import { findSnapshot, type SnapshotRecord } from '../state/snapshot-commands.js';
import { assertNotReceiving, receiveWriterConnectionId } from '../state/receive-commands.js';
import type { OpenSnapshotExport } from '../snapshots/snapshot-readers.js';
import { SNAPSHOT_BLOCK_SIZE, SNAPSHOT_EXPORT_CAPABILITIES } from '../snapshots/snapshot-export-device.js';

export interface VolumeExportsOptions {
  /** This node: opening an export attaches the volume here. */
  readonly nodeId: string;
  /** Connections per volume (NBD multi-conn clients open a few); more are refused with BUSY. */
  readonly maxConnectionsPerVolume?: number;
  /** How long a forced detach waits for disconnected clients to let go. */
  readonly disconnectTimeoutMs?: number;
}

export interface VolumeExportsModules {
  readonly commands: CommandProposer;
  readonly pool: Pool;
  readonly logger: Logger;
  /**
   * Drop every protocol connection to the export (the NBD server's
   * disconnectExport). Late-bound: the servers are built after this provider.
   */
  readonly disconnectClients: (exportName: string) => Promise<void> | void;
  /**
   * The data plane's replicated volume sessions (daemon/volume). With them a
   * connection attaches through VolumeSessions (new generation, failover
   * resync, fan-out to every replica); without them (single node, no data
   * plane wired) the volume is served from this node's pool store directly.
   */
  readonly sessions?: VolumeSessions;
  /**
   * True when this node's replica service has admitted a generation above
   * `generation` for the volume: a new owner opened the replica, so the
   * sole-local fast path must stop even before the attach is applied here.
   */
  readonly fencedLocally?: (volumeId: string, generation: number) => boolean;
  /** Per-volume I/O counters for /metrics; absent: handles get the bare device. */
  readonly volumeIo?: VolumeIoRecorder;
  /**
   * Issue 8: opens the read-only device of a `volume@snapshot` export
   * (daemon/snapshots/snapshot-readers.ts). Absent: such exports are refused
   * with NOT_SUPPORTED.
   */
  readonly openSnapshot?: (volume: VolumeRecord, snapshot: SnapshotRecord, exportName: string) => Promise<OpenSnapshotExport>;
}

/**
 * `volume@snapshot` split at its last '@' (snapshot names hold no '@');
 * undefined for a plain volume name. Also `volume.snap.snapshot`, the form
 * an iSCSI target name can carry (`iqn.2026-11.io.plinth:db.snap.nightly`):
 * '@' is not allowed in an IQN (RFC 3722), volume names hold no '.', so the
 * first '.snap.' ends the volume name.
 */
export function splitSnapshotExportName(name: string): { readonly volume: string; readonly snapshot: string } | undefined {
  const at = name.lastIndexOf('@');
  if (at >= 0) return { volume: name.slice(0, at), snapshot: name.slice(at + 1) };
  const dot = name.indexOf(ISCSI_SNAPSHOT_SEPARATOR);
  return dot <= 0 ? undefined : { volume: name.slice(0, dot), snapshot: name.slice(dot + ISCSI_SNAPSHOT_SEPARATOR.length) };
}

export const ISCSI_SNAPSHOT_SEPARATOR = '.snap.';

/** A volume open on this node: one device shared by all its connections. */
interface OpenVolume {
  readonly volumeId: string;
  readonly name: string;
  readonly device: BlockDevice;
  /** Fenced or suspended: serves nothing any more, the next open replaces it. */
  readonly stopped: () => boolean;
  readonly close: () => Promise<void>;
  connections: number;
  readonly idle: EventEmitter;
}

/** Replica links carry at most this much per request (replica-protocol.ts). */
const REPLICATED_BLOCK_SIZE: BlockSizeHints = { ...VOLUME_BLOCK_SIZE, maximumBytes: Math.min(VOLUME_BLOCK_SIZE.maximumBytes, DEFAULT_MAX_IO_BYTES) };

export interface ReleaseOptions {
  readonly force?: boolean;
}

/**
 * The ExportProvider the NBD (and later iSCSI) servers see. Connecting to an
 * export attaches the volume to this node through a command (ARCHITECTURE
 * "NBD": every node serves every volume), then shares one VolumeStore between
 * the volume's connections. The store stays open after the last client
 * leaves, because the volume stays attached; detach closes it.
 */
export class VolumeExports implements ExportProvider {
  readonly #nodeId: string;
  readonly #maxConnections: number;
  readonly #disconnectTimeoutMs: number;
  readonly #modules: VolumeExportsModules;
  readonly #open = new Map<string, OpenVolume>();
  /** Live connections per snapshot export name (each has its own read-only device). */
  readonly #snapshotConnections = new Map<string, number>();
  readonly #mutex = new KeyedMutex();
  #closing = false;

  constructor(options: VolumeExportsOptions, modules: VolumeExportsModules) {
    this.#nodeId = options.nodeId;
    this.#maxConnections = options.maxConnectionsPerVolume ?? 64;
    this.#disconnectTimeoutMs = options.disconnectTimeoutMs ?? 10_000;
    this.#modules = modules;
  }

  /**
   * Volumes only: `volume@snapshot` exports are opened by name but not
   * listed, since iSCSI SendTargets answers from this list and '@' is not
   * allowed in an IQN (RFC 3722 stringprep profile).
   */
  async listExports(): Promise<ExportDescription[]> {
    return Object.values(this.#modules.commands.state.volumes)
      .map((volume) => this.#describe(volume))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async describeExport(name: string): Promise<ExportDescription> {
    const snapshotName = splitSnapshotExportName(name);
    if (snapshotName !== undefined) {
      const { volume, snapshot } = await this.#lookUpSnapshot(name);
      return describeSnapshot(volume, snapshot);
    }
    return this.#describe(await this.#lookUpVolume(name));
  }

  async openExport(name: string, client: ExportClient): Promise<ExportHandle> {
    if (splitSnapshotExportName(name) !== undefined) return this.#openSnapshotExport(name, client);
    const record = await this.#lookUpVolume(name);
    // A volume being received serves only the receive's own writer (issue 8).
    if (client.connectionId !== receiveWriterConnectionId(name)) assertNotReceiving(record);
    const volumeId = record.id;
    const open = await this.#mutex.run(volumeId, async () => {
      if (this.#closing) throw new PlinthError('SHUTTING_DOWN', 'plinthd is shutting down');
      const stale = this.#open.get(volumeId);
      if (stale !== undefined && stale.stopped()) await this.#closeEntry(stale, true);
      const volume = await this.#attachHere(name);
      const entry = this.#open.get(volume.id) ?? (await this.#openDevice(volume));
      if (entry.connections >= this.#maxConnections) {
        throw new PlinthError('BUSY', `volume ${name} already has ${entry.connections} connections (the limit)`, { name });
      }
      entry.connections += 1;
      return { entry, volume };
    });
    this.#modules.logger.info({ volume: name, ...client, connections: open.entry.connections }, 'export opened');
    return this.#handle(open.entry, open.volume, client);
  }

  /**
   * `volume attach NAME --node <this node>` with the data plane wired: open
   * the volume's session here now (new generation, takeover rules, resync)
   * instead of at the first connection. Without sessions, commit the attach.
   */
  async attachHere(name: string, options: { readonly force?: boolean } = {}): Promise<VolumeRecord> {
    if (this.#modules.sessions === undefined) {
      const command = options.force === true ? { type: 'volume.attach' as const, name, nodeId: this.#nodeId, force: true } : { type: 'volume.attach' as const, name, nodeId: this.#nodeId };
      return expectVolumeResult(await this.#modules.commands.propose(command));
    }
    const volumeId = this.#requireVolume(name).id;
    return this.#mutex.run(volumeId, async () => {
      if (this.#closing) throw new PlinthError('SHUTTING_DOWN', 'plinthd is shutting down');
      const current = this.#open.get(volumeId);
      // A live session here already holds the newest generation: nothing to do.
      if (current !== undefined && !current.stopped() && this.#requireVolume(name).attachedTo === this.#nodeId) return this.#requireVolume(name);
      if (current !== undefined) await this.#closeEntry(current, true);
      await this.#openDevice(this.#requireVolume(name), options.force === true);
      return this.#requireVolume(name);
    });
  }

  /** Live protocol connections of a volume on this node. */
  connectionCount(volumeId: string): number {
    return this.#open.get(volumeId)?.connections ?? 0;
  }

  totalConnections(): number {
    let total = 0;
    for (const entry of this.#open.values()) total += entry.connections;
    return total;
  }

  /**
   * Run `section` (typically a detach, delete or hand-over command) with the
   * volume's local store closed and nobody able to reopen it meanwhile.
   * Connected clients refuse the release with VOLUME_ATTACHED unless
   * `force`, which disconnects them first.
   */
  async withVolumeReleased<T>(name: string, options: ReleaseOptions, section: (volume: VolumeRecord) => Promise<T>): Promise<T> {
    const volumeId = this.#requireVolume(name).id;
    return this.#mutex.run(volumeId, async () => {
      const volume = this.#requireVolume(name);
      const entry = this.#open.get(volume.id);
      if (entry !== undefined) await this.#closeEntry(entry, options.force === true);
      return section(volume);
    });
  }

  /**
   * The committed state moved the volume away from this node (detached, or
   * attached elsewhere, or deleted), maybe by a command given on another
   * node: close its device here and drop its clients (AppliedStateWatcher).
   */
  async releaseUnowned(): Promise<void> {
    const entries = [...this.#open.values()];
    await Promise.all(
      entries.map((entry) =>
        this.#mutex.run(entry.volumeId, async () => {
          if (this.#open.get(entry.volumeId) !== entry) return;
          if (attachedHere(this.#modules.commands.state, entry.volumeId, this.#nodeId)) return;
          this.#modules.logger.info({ volume: entry.name, connections: entry.connections }, 'volume no longer attached here: closing it');
          await this.#closeEntry(entry, true);
        }),
      ),
    );
  }

  /** Shutdown: flush and close every open store. Connections must already be gone. */
  async closeAll(): Promise<void> {
    this.#closing = true;
    const entries = [...this.#open.values()];
    await Promise.all(entries.map((entry) => this.#mutex.run(entry.volumeId, () => this.#closeEntry(entry, true))));
  }

  async #attachHere(name: string): Promise<VolumeRecord> {
    const volume = this.#requireVolume(name);
    // The data plane attaches itself (takeover rules, generation, resync) when it opens the session.
    if (this.#modules.sessions !== undefined) return volume;
    if (volume.attachedTo === this.#nodeId) return volume;
    // A volume owned by another node is refused by the state machine (VOLUME_ATTACHED).
    const attached = expectVolumeResult(await this.#modules.commands.propose({ type: 'volume.attach', name, nodeId: this.#nodeId }));
    this.#modules.logger.info({ volume: name, generation: attached.generation }, 'volume attached to this node');
    return attached;
  }

  async #openDevice(volume: VolumeRecord, force = false): Promise<OpenVolume> {
    const base = { volumeId: volume.id, name: volume.name, connections: 0, idle: new EventEmitter() };
    const sessions = this.#modules.sessions;
    let entry: OpenVolume;
    if (sessions === undefined) {
      const store = await this.#modules.pool.openVolume(volume.id, volume.sizeBytes);
      entry = { ...base, device: store, stopped: () => false, close: () => store.close() };
    } else {
      const session = await sessions.acquire(volume.name, force ? { force } : {});
      const device = await this.#sessionDevice(session);
      const stopped = device instanceof SoleLocalDevice ? () => device.fenced || session.stopped : () => session.stopped;
      entry = { ...base, device, stopped, close: () => sessions.release(volume.name) };
    }
    this.#open.set(volume.id, entry);
    return entry;
  }

  /**
   * A volume whose only replica is this node's is served from the pool store
   * itself (fast paths kept; sole-local-device.ts says why that is safe);
   * every other one through the session's replicated volume.
   */
  async #sessionDevice(session: VolumeSession): Promise<BlockDevice> {
    const volume = findVolume(this.#modules.commands.state, session.name);
    const soleLocal = volume !== undefined && volume.replicas.length === 1 && volume.replicas[0]?.nodeId === this.#nodeId;
    if (!soleLocal) return session.device;
    const store = await this.#modules.pool.openVolume(session.volumeId, volume.sizeBytes);
    const { generation, name } = session;
    const stillOwner = (): boolean => {
      const current = findVolume(this.#modules.commands.state, name);
      const fenced = this.#modules.fencedLocally?.(session.volumeId, generation) ?? false;
      return !fenced && current !== undefined && current.attachedTo === this.#nodeId && current.generation === generation;
    };
    return new SoleLocalDevice({ name, generation }, { store, stillOwner });
  }

  async #closeEntry(entry: OpenVolume, force: boolean): Promise<void> {
    if (entry.connections > 0) {
      if (!force) {
        throw new PlinthError(
          'VOLUME_ATTACHED',
          `volume ${entry.name} has ${entry.connections} connected client(s); disconnect them or force the detach`,
          { name: entry.name, connections: entry.connections },
        );
      }
      await this.#disconnectAndWait(entry);
    }
    this.#open.delete(entry.volumeId);
    await entry.close();
    this.#modules.logger.info({ volume: entry.name }, 'volume device closed');
  }

  async #disconnectAndWait(entry: OpenVolume): Promise<void> {
    // A ref'd timer on purpose: the wait itself must keep the process alive.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.#disconnectTimeoutMs);
    const idle = once(entry.idle, 'idle', { signal: deadline.signal });
    try {
      await this.#modules.disconnectClients(entry.name);
      if (entry.connections > 0) await idle;
    } catch (err) {
      if (!deadline.signal.aborted) throw err;
      throw new PlinthError(
        'TIMEOUT',
        `volume ${entry.name}: ${entry.connections} client(s) still connected ${this.#disconnectTimeoutMs} ms after being disconnected`,
        { name: entry.name },
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
      deadline.abort();
      // The listener's promise rejects on the abort above when nobody awaited it.
      idle.catch(() => undefined);
    }
  }

  #handle(entry: OpenVolume, volume: VolumeRecord, client: ExportClient): ExportHandle {
    let released = false;
    return {
      description: this.#describe(volume),
      // Metered here so NBD and iSCSI are measured alike (daemon/metrics/metered-device.ts).
      device: this.#modules.volumeIo === undefined ? entry.device : new MeteredDevice(entry.device, this.#modules.volumeIo.statsFor(entry.name, client.protocol)),
      release: () => {
        if (released) {
          this.#modules.logger.warn({ volume: entry.name, ...client }, 'export released twice; ignored');
          return;
        }
        released = true;
        entry.connections -= 1;
        this.#modules.logger.info({ volume: entry.name, ...client, connections: entry.connections }, 'export released');
        if (entry.connections === 0) entry.idle.emit('idle');
      },
    };
  }

  #describe(volume: VolumeRecord): ExportDescription {
    return describe(volume, this.#modules.sessions === undefined ? VOLUME_BLOCK_SIZE : REPLICATED_BLOCK_SIZE);
  }

  /**
   * Issue 8: a `volume@snapshot` export. Its own read-only device per
   * connection; the volume is not attached and its generation stays.
   */
  async #openSnapshotExport(name: string, client: ExportClient): Promise<ExportHandle> {
    const { volume, snapshot } = await this.#lookUpSnapshot(name);
    const openSnapshot = this.#modules.openSnapshot;
    if (openSnapshot === undefined) throw new PlinthError('NOT_SUPPORTED', `export ${JSON.stringify(name)}: snapshot exports are not served by this node`, { name });
    if (this.#closing) throw new PlinthError('SHUTTING_DOWN', 'plinthd is shutting down');
    const connections = this.#snapshotConnections.get(name) ?? 0;
    if (connections >= this.#maxConnections) throw new PlinthError('BUSY', `snapshot export ${name} already has ${connections} connections (the limit)`, { name });
    const opened = await openSnapshot(volume, snapshot, name);
    this.#snapshotConnections.set(name, (this.#snapshotConnections.get(name) ?? 0) + 1);
    this.#modules.logger.info({ export: name, ...client }, 'snapshot export opened');
    let released = false;
    return {
      description: describeSnapshot(volume, snapshot),
      device: opened.device,
      release: () => {
        if (released) return;
        released = true;
        opened.close();
        const left = (this.#snapshotConnections.get(name) ?? 1) - 1;
        if (left === 0) this.#snapshotConnections.delete(name);
        else this.#snapshotConnections.set(name, left);
        this.#modules.logger.info({ export: name, ...client }, 'snapshot export released');
      },
    };
  }

  /** Like #lookUpVolume (barrier on a miss), for `volume@snapshot`: VOLUME_NOT_FOUND or SNAPSHOT_NOT_FOUND. */
  async #lookUpSnapshot(name: string): Promise<{ volume: VolumeRecord; snapshot: SnapshotRecord }> {
    const parts = splitSnapshotExportName(name);
    if (parts === undefined) throw new PlinthError('INVALID_ARGUMENT', `export ${JSON.stringify(name)} names no snapshot`, { name });
    const lookUp = (): { volume: VolumeRecord; snapshot: SnapshotRecord } | undefined => {
      const volume = findVolume(this.#modules.commands.state, parts.volume);
      const snapshot = volume === undefined ? undefined : findSnapshot(volume, parts.snapshot);
      return volume === undefined || snapshot === undefined ? undefined : { volume, snapshot };
    };
    let found = lookUp();
    if (found === undefined && this.#modules.commands.barrier !== undefined) {
      await this.#modules.commands.barrier();
      found = lookUp();
    }
    if (found !== undefined) return found;
    const volume = findVolume(this.#modules.commands.state, parts.volume);
    if (volume === undefined) throw new PlinthError('VOLUME_NOT_FOUND', `volume ${parts.volume} does not exist`, { name: parts.volume });
    throw new PlinthError('SNAPSHOT_NOT_FOUND', `volume ${parts.volume} has no snapshot ${JSON.stringify(parts.snapshot)}`, { name: parts.volume, snapshot: parts.snapshot });
  }

  /**
   * A name this node has not applied yet may be a volume just created
   * through another node: a miss waits for the read barrier (invariant 6)
   * before it says the volume does not exist. Hits cost nothing.
   */
  async #lookUpVolume(name: string): Promise<VolumeRecord> {
    const known = findVolume(this.#modules.commands.state, name) !== undefined;
    // `volume@snapshot` is refused by #requireVolume without asking the leader.
    if (known || name.includes('@') || this.#modules.commands.barrier === undefined) return this.#requireVolume(name);
    await this.#modules.commands.barrier();
    return this.#requireVolume(name);
  }

  #requireVolume(name: string): VolumeRecord {
    if (name.includes('@')) {
      throw new PlinthError('INVALID_ARGUMENT', `${JSON.stringify(name)} is a snapshot (volume@snapshot), not a volume`, { name });
    }
    const volume = findVolume(this.#modules.commands.state, name);
    if (volume === undefined) throw new PlinthError('VOLUME_NOT_FOUND', `volume ${name} does not exist`, { name });
    return volume;
  }
}

/** Issue 8: `volume@snapshot`, read-only (NBD_FLAG_READ_ONLY), the size the volume had when it was taken. */
function describeSnapshot(volume: VolumeRecord, snapshot: SnapshotRecord): ExportDescription {
  return {
    id: snapshot.id,
    name: `${volume.name}@${snapshot.name}`,
    description: `Plinth snapshot ${snapshot.name} of volume ${volume.name} (${formatSize(snapshot.sizeBytes)}, read-only)`,
    sizeBytes: snapshot.sizeBytes,
    readOnly: true,
    capabilities: SNAPSHOT_EXPORT_CAPABILITIES,
    blockSize: SNAPSHOT_BLOCK_SIZE,
  };
}

function describe(volume: VolumeRecord, blockSize: BlockSizeHints): ExportDescription {
  return {
    id: volume.id,
    name: volume.name,
    description: `Plinth volume ${volume.name} (${formatSize(volume.sizeBytes)})`,
    sizeBytes: volume.sizeBytes,
    readOnly: false,
    capabilities: VOLUME_CAPABILITIES,
    blockSize,
  };
}
