import type { Logger } from 'pino';
import { PlinthError, toError } from '../../common/plinth-error.js';
import type { Pool } from '../../blockdev/pool/pool-types.js';
import { Opcode } from '../../blockdev/replica/replica-protocol.js';
import type { ReplicaLink } from '../../blockdev/replica/replica-link.js';
import type { CommandProposer } from '../control/command-proposer.js';
import { findVolume, isNodeUp, type ReplicaRecord } from '../state/cluster-state.js';
import { snapshotsOf, type SnapshotRecord } from '../state/snapshot-commands.js';
import type { SnapshotReadLink, SnapshotReplicaClient, VolumeAtGeneration } from './snapshot-replica-client.js';

/**
 * Snapshots are rebuilt with their volume (issue 8 "snapshots survive node
 * loss like their volume and are rebuilt with it"; docs/snapshots.md
 * "Rebuilds"). Before the owner's live catch-up of the replica on node T,
 * every snapshot of the volume T does not hold is written into T's volume,
 * oldest first, taken there with the same id (SNAPSHOT_CREATE) and committed
 * (`snapshot.holder-add`):
 *
 * - source: this node's pool when it holds the snapshot (extent lists: the
 *   first one copied in a run: T's volume zeroed, then every extent of
 *   `snapshotExtents`; the next ones: only `changedExtents` against the one
 *   copied just before), else one up holder read over SNAPSHOT_READ, every
 *   byte (zero pieces are zeroed on T);
 * - writes go through T's ordinary WRITE / WRITE_ZEROES path at the
 *   session's generation, on a link of their own. T is out of the in-sync
 *   set meanwhile (it gets no live writes and serves no reads);
 * - afterwards, unless T is a new replica (its catch-up is a full copy),
 *   every byte range written here is restored from the volume's live read
 *   path: the delta catch-up that follows only copies what changed since T
 *   left, and a write racing this restore happened after T left, so it is in
 *   that delta too (invariant 4).
 *
 * Errors fail the rebuild attempt (the reconciler retries). A snapshot no
 * reachable holder has is skipped with a warning: the volume's rebuild
 * matters more than one more copy of it.
 */

export interface SnapshotRebuildOptions {
  /** This node: its pool is the preferred source. */
  readonly nodeId: string;
  /** Largest piece read and written per request (default 1 MiB). */
  readonly pieceBytes?: number;
}

export interface SnapshotRebuildModules {
  readonly pool: Pool;
  /** Read this node's pool copy of a snapshot (ReplicaService.snapshots.read). */
  readonly localRead: (volumeId: string, snapshotId: string, offset: number, target: Buffer) => Promise<void>;
  readonly commands: Pick<CommandProposer, 'state' | 'propose'>;
  readonly client: SnapshotReplicaClient;
  readonly logger: Logger;
}

/** What the copy needs of the owner's session (VolumeSession satisfies it). */
export interface RebuildSessionView {
  readonly name: string;
  readonly volumeId: string;
  readonly generation: number;
  /** The volume's live read path (its in-sync replicas). */
  readonly volume: { readonly sizeBytes: number; read(offset: number, target: Buffer): Promise<void> };
}

export interface SnapshotRebuildOutcome {
  readonly copied: readonly string[];
  readonly skipped: readonly string[];
  readonly writtenBytes: number;
}

const DEFAULT_PIECE_BYTES = 1024 * 1024;

/** A byte range of the volume written on T. */
interface Written {
  readonly offset: number;
  readonly lengthBytes: number;
}

export class SnapshotRebuild {
  readonly #options: SnapshotRebuildOptions;
  readonly #modules: SnapshotRebuildModules;
  readonly #pieceBytes: number;

  constructor(options: SnapshotRebuildOptions, modules: SnapshotRebuildModules) {
    this.#options = options;
    this.#modules = modules;
    this.#pieceBytes = options.pieceBytes ?? DEFAULT_PIECE_BYTES;
    if (!Number.isSafeInteger(this.#pieceBytes) || this.#pieceBytes < 512) {
      throw new PlinthError('INVALID_ARGUMENT', 'snapshot rebuild pieceBytes must be an integer >= 512', { pieceBytes: this.#pieceBytes });
    }
  }

  /** Give `targetNodeId` every snapshot of the session's volume it lacks (see the file comment). */
  async copyMissing(session: RebuildSessionView, targetNodeId: string, signal?: AbortSignal): Promise<SnapshotRebuildOutcome> {
    const volume = findVolume(this.#modules.commands.state, session.name);
    const replica = volume?.replicas.find((candidate) => candidate.nodeId === targetNodeId);
    if (volume === undefined || replica === undefined) return { copied: [], skipped: [], writtenBytes: 0 };
    const snapshots = snapshotsOf(volume);
    if (snapshots.every((snapshot) => snapshot.holders.includes(targetNodeId))) return { copied: [], skipped: [], writtenBytes: 0 };
    const logger = this.#modules.logger.child({ volume: session.name, replica: targetNodeId, component: 'snapshot-rebuild' });
    const at: VolumeAtGeneration = { volumeId: session.volumeId, sizeBytes: session.volume.sizeBytes, generation: session.generation };
    const link = await this.#modules.client.openLink(targetNodeId, at);
    try {
      const run = new CopyRun(this.#options.nodeId, targetNodeId, session, link, this.#pieceBytes, this.#modules, logger, signal);
      const outcome = await run.copyAll(snapshots);
      if (outcome.written.length > 0 && !isNewReplica(replica)) await run.restoreLive(outcome.written);
      logger.info({ copied: outcome.copied.length, skipped: outcome.skipped.length, writtenBytes: outcome.writtenBytes }, 'snapshots rebuilt on the replica');
      return { copied: outcome.copied, skipped: outcome.skipped, writtenBytes: outcome.writtenBytes };
    } finally {
      link.close('snapshot rebuild done');
    }
  }
}

/** Never held data (replica.add, no generation stamped, no markers): its catch-up copies everything. */
function isNewReplica(replica: ReplicaRecord): boolean {
  return replica.state !== 'in-sync' && replica.dataGeneration === undefined && replica.resyncMarkers === undefined;
}

/** One rebuild's copy of the missing snapshots into T, oldest first. */
class CopyRun {
  readonly #selfId: string;
  readonly #targetId: string;
  readonly #session: RebuildSessionView;
  readonly #link: ReplicaLink;
  readonly #pieceBytes: number;
  readonly #modules: SnapshotRebuildModules;
  readonly #logger: Logger;
  readonly #signal: AbortSignal | undefined;
  readonly #written: Written[] = [];
  #writtenBytes = 0;
  #zeroPiece: Buffer;

  constructor(selfId: string, targetId: string, session: RebuildSessionView, link: ReplicaLink, pieceBytes: number, modules: SnapshotRebuildModules, logger: Logger, signal: AbortSignal | undefined) {
    this.#selfId = selfId;
    this.#targetId = targetId;
    this.#session = session;
    this.#link = link;
    this.#pieceBytes = pieceBytes;
    this.#modules = modules;
    this.#logger = logger;
    this.#signal = signal;
    this.#zeroPiece = Buffer.alloc(pieceBytes);
  }

  async copyAll(snapshots: readonly SnapshotRecord[]): Promise<{ copied: string[]; skipped: string[]; written: Written[]; writtenBytes: number }> {
    const copied: string[] = [];
    const skipped: string[] = [];
    // The snapshot whose content this run just wrote into T's volume, all of it: T's volume holds exactly
    // that. Never a snapshot T held before: T's live data may differ from it in extents changed after the
    // snapshot but before T left, which no extent list between two snapshots names.
    let base: SnapshotRecord | undefined;
    for (const snapshot of snapshots) {
      if (snapshot.holders.includes(this.#targetId)) {
        base = undefined;
        continue;
      }
      this.#throwIfAborted();
      const done = await this.#copyOne(snapshot, base);
      if (done) {
        copied.push(snapshot.name);
        base = snapshot;
      } else {
        skipped.push(snapshot.name);
        base = undefined;
      }
    }
    return { copied, skipped, written: this.#written, writtenBytes: this.#writtenBytes };
  }

  /** Put back T's live data wherever a snapshot's content was written (see the file comment). */
  async restoreLive(written: readonly Written[]): Promise<void> {
    const merged = mergeRanges(written, this.#session.volume.sizeBytes);
    let restoredBytes = 0;
    for (const range of merged) {
      for (let done = 0; done < range.lengthBytes; done += this.#pieceBytes) {
        this.#throwIfAborted();
        const piece = Buffer.allocUnsafe(Math.min(this.#pieceBytes, range.lengthBytes - done));
        await this.#session.volume.read(range.offset + done, piece);
        await this.#send(Opcode.WRITE, range.offset + done, piece.length, piece);
        restoredBytes += piece.length;
      }
    }
    this.#logger.info({ restoredBytes, ranges: merged.length }, 'live data restored where snapshot content was written');
  }

  /** False when no reachable holder has it (skipped). */
  async #copyOne(snapshot: SnapshotRecord, base: SnapshotRecord | undefined): Promise<boolean> {
    const { pool, commands } = this.#modules;
    const volumeId = this.#session.volumeId;
    const localIds = new Set(pool.listSnapshots(volumeId).map((info) => info.snapshotId));
    const startedMs = Date.now();
    const before = this.#writtenBytes;
    if (snapshot.holders.includes(this.#selfId) && localIds.has(snapshot.id)) {
      const incremental = base !== undefined && localIds.has(base.id);
      await this.#copyFromLocalPool(snapshot, incremental ? base : undefined);
    } else {
      const state = commands.state;
      const holders = snapshot.holders.filter((nodeId) => nodeId !== this.#targetId && nodeId !== this.#selfId && isNodeUp(state, nodeId));
      const source = await this.#copyFromHolders(snapshot, holders);
      if (source === undefined) {
        this.#logger.warn({ snapshot: snapshot.name, holders: snapshot.holders }, 'no reachable holder of the snapshot: the replica is rebuilt without it');
        return false;
      }
    }
    this.#throwIfAborted();
    await this.#modules.client.run(this.#targetId, 'create', { volumeId, sizeBytes: this.#session.volume.sizeBytes, generation: this.#session.generation }, snapshot.id);
    await commands.propose({ type: 'snapshot.holder-add', name: this.#session.name, snapshotName: snapshot.name, nodeId: this.#targetId });
    this.#logger.info(
      { snapshot: snapshot.name, incrementalFrom: base?.name ?? null, writtenBytes: this.#writtenBytes - before, elapsedMs: Date.now() - startedMs },
      'snapshot copied to the replica and recorded',
    );
    return true;
  }

  /** Extent lists of this node's pool: every extent of a first snapshot, only changed ones after `base`. */
  async #copyFromLocalPool(snapshot: SnapshotRecord, base: SnapshotRecord | undefined): Promise<void> {
    const { pool, localRead } = this.#modules;
    const volumeId = this.#session.volumeId;
    const extentBytes = pool.extentSizeBytes;
    const mapped = new Set(pool.snapshotExtents(volumeId, snapshot.id));
    let extents: Iterable<number> = mapped;
    if (base === undefined) {
      // T's volume may hold anything (older data): what the snapshot does not map reads as zeroes.
      await this.#zero(0, this.#session.volume.sizeBytes);
    } else {
      extents = pool.changedExtents(volumeId, base.id, snapshot.id);
    }
    for (const extent of extents) {
      this.#throwIfAborted();
      const offset = extent * extentBytes;
      const lengthBytes = Math.min(extentBytes, snapshot.sizeBytes - offset, this.#session.volume.sizeBytes - offset);
      if (lengthBytes <= 0) continue;
      if (!mapped.has(extent)) {
        // Dropped since the base (a trim): zeroes on T.
        await this.#zero(offset, lengthBytes);
        continue;
      }
      for (let done = 0; done < lengthBytes; done += this.#pieceBytes) {
        const piece = Buffer.allocUnsafe(Math.min(this.#pieceBytes, lengthBytes - done));
        await localRead(volumeId, snapshot.id, offset + done, piece);
        await this.#writePiece(offset + done, piece);
      }
    }
  }

  /** Every byte over SNAPSHOT_READ from the first holder that answers; the holder used, or undefined. */
  async #copyFromHolders(snapshot: SnapshotRecord, holders: readonly string[]): Promise<string | undefined> {
    const at = { volumeId: this.#session.volumeId, sizeBytes: this.#session.volume.sizeBytes, generation: this.#session.generation };
    for (const holder of holders) {
      let reader: SnapshotReadLink;
      try {
        reader = await this.#modules.client.openReadLink(holder, at, snapshot.id);
      } catch (error) {
        this.#logger.warn({ err: toError(error), snapshot: snapshot.name, holder }, 'snapshot holder did not answer; trying the next');
        continue;
      }
      try {
        const lengthBytes = Math.min(snapshot.sizeBytes, this.#session.volume.sizeBytes);
        if (lengthBytes < this.#session.volume.sizeBytes) await this.#zero(lengthBytes, this.#session.volume.sizeBytes - lengthBytes);
        for (let offset = 0; offset < lengthBytes; offset += this.#pieceBytes) {
          this.#throwIfAborted();
          const piece = Buffer.allocUnsafe(Math.min(this.#pieceBytes, lengthBytes - offset));
          await reader.read(offset, piece);
          await this.#writePiece(offset, piece);
        }
        return holder;
      } finally {
        reader.close();
      }
    }
    return undefined;
  }

  /** An all-zero piece is zeroed (the pool need not allocate it), anything else written. */
  async #writePiece(offset: number, piece: Buffer): Promise<void> {
    const zero = piece.length === this.#zeroPiece.length ? piece.equals(this.#zeroPiece) : piece.equals(this.#zeroPiece.subarray(0, piece.length));
    if (zero) await this.#zero(offset, piece.length);
    else await this.#send(Opcode.WRITE, offset, piece.length, piece);
  }

  async #zero(offset: number, lengthBytes: number): Promise<void> {
    await this.#send(Opcode.WRITE_ZEROES, offset, lengthBytes, Buffer.alloc(0));
  }

  async #send(opcode: Opcode, offset: number, lengthBytes: number, payload: Buffer): Promise<void> {
    await this.#link.send({ opcode, flags: 0, offset, lengthBytes, payload });
    // Sequential pieces extend the last range: the list stays short.
    const last = this.#written[this.#written.length - 1];
    if (last !== undefined && last.offset + last.lengthBytes === offset) this.#written[this.#written.length - 1] = { offset: last.offset, lengthBytes: last.lengthBytes + lengthBytes };
    else this.#written.push({ offset, lengthBytes });
    this.#writtenBytes += lengthBytes;
  }

  #throwIfAborted(): void {
    if (this.#signal?.aborted === true) throw new PlinthError('SHUTTING_DOWN', 'snapshot rebuild aborted', {}, { cause: this.#signal.reason });
  }
}

/** Sorted, overlapping and touching ranges joined, clipped to the volume. */
export function mergeRanges(ranges: readonly Written[], sizeBytes: number): Written[] {
  const sorted = ranges
    .map((range) => ({ offset: range.offset, end: Math.min(sizeBytes, range.offset + range.lengthBytes) }))
    .filter((range) => range.end > range.offset)
    .sort((a, b) => a.offset - b.offset);
  const merged: { offset: number; end: number }[] = [];
  for (const range of sorted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && range.offset <= last.end) last.end = Math.max(last.end, range.end);
    else merged.push({ ...range });
  }
  return merged.map((range) => ({ offset: range.offset, lengthBytes: range.end - range.offset }));
}
