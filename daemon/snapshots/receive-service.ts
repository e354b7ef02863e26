import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { BlockDevice } from '../../blockdev/block-device.js';
import { isPlinthError, PlinthError, toError } from '../../common/plinth-error.js';
import type { CommandProposer } from '../control/command-proposer.js';
import { findVolume, type ClusterState, type VolumeRecord } from '../state/cluster-state.js';
import type { ReceiveRecord, ReceiveSource } from '../state/receive-commands.js';
import type { SendStreamHeader } from './send-stream-codec.js';
import { receiveStream, type ReceiveCheckpoint } from './receive-stream-writer.js';

/**
 * `POST /v1/volumes/{name}/receive` (issue 8; docs/snapshots.md "Receive"):
 * the cluster side of a receive.
 *
 * Full stream: `volume.receive-start` creates the volume already marked
 * receiving (one Raft entry: it is never visible half-made). Incremental:
 * the volume must exist, detached, holding the snapshot it received as the
 * stream's base (matched by source snapshot id); it is marked receiving and
 * reverted to that base first (changes made since are discarded, like
 * `zfs receive -F`: documented). Then the volume is attached to this node
 * internally and every verified chunk goes through the normal replicated
 * write path; progress is committed after each flush (resume point). When
 * the trailer verified: detach, take the snapshot with the sender's name,
 * `volume.receive-finish` makes it visible.
 *
 * Failures: a corrupt stream (any STREAM_* but truncation) is refused and
 * undone — a full receive deletes its volume, an incremental one reverts to
 * its base; a truncated transfer or a dropped connection keeps the hidden
 * volume and its progress so `receive --resume` continues it
 * (`send --from-chunk N`, N from GET …/receive); `abort` gives up.
 */
export interface ReceiveServiceOptions {
  /** This node: it attaches the volume to write it (the state lets only the receiving node attach it). */
  readonly nodeId: string;
  readonly checkpointEveryBytes?: number;
}

export interface ReceiveWriter {
  readonly device: BlockDevice;
  /** Close the device and detach the volume from this node. */
  release(): Promise<void>;
}

export interface ReceiveServiceModules {
  readonly commands: CommandProposer;
  /** Attach the volume here and open its replicated device for writing (the receive is its only writer). */
  readonly openWriter: (name: string) => Promise<ReceiveWriter>;
  readonly createSnapshot: (volume: string, snapshot: string) => Promise<unknown>;
  readonly revertVolume: (volume: string, snapshot: string) => Promise<unknown>;
  readonly resizeVolume: (volume: string, sizeBytes: number) => Promise<unknown>;
  readonly deleteVolume: (volume: string) => Promise<void>;
  /** Replica placement for a new volume (the scheduler, as volume create uses it). */
  readonly placement: (state: ClusterState, replicaCount: number | undefined) => string[];
  readonly logger: Logger;
  readonly clock?: () => Date;
  readonly newId?: () => string;
}

export interface ReceiveRequest {
  readonly name: string;
  readonly resume?: boolean;
  readonly replicaCount?: number;
}

export interface ReceiveResultView {
  readonly volume: string;
  readonly snapshot: string;
  readonly base: string | null;
  readonly chunkCount: number;
  readonly chunksWritten: number;
  readonly bytesWritten: number;
  readonly streamSha256: string;
}

export interface ReceiveStatusView {
  readonly volume: string;
  readonly receiving: boolean;
  readonly snapshot?: string;
  readonly sourceClusterId?: string;
  readonly sourceVolume?: string;
  readonly incremental?: boolean;
  /** `send --from-chunk` this. */
  readonly nextChunk?: number;
  readonly totalChunkCount?: number;
  readonly startedAt?: string;
}

const CORRUPTION_CODES = new Set(['STREAM_BAD_MAGIC', 'STREAM_BAD_VERSION', 'STREAM_MALFORMED', 'STREAM_CHECKSUM_MISMATCH', 'STREAM_OUT_OF_ORDER', 'STREAM_OUT_OF_RANGE']);

export class ReceiveService {
  readonly #options: ReceiveServiceOptions;
  readonly #modules: ReceiveServiceModules;
  readonly #active = new Set<string>();

  constructor(options: ReceiveServiceOptions, modules: ReceiveServiceModules) {
    this.#options = options;
    this.#modules = modules;
  }

  async status(name: string): Promise<ReceiveStatusView> {
    await this.#modules.commands.barrier?.();
    const volume = this.#requireVolume(name);
    const receive = volume.receive;
    if (receive === undefined) return { volume: name, receiving: false };
    return {
      volume: name,
      receiving: true,
      snapshot: receive.source.snapshotName,
      sourceClusterId: receive.source.sourceClusterId,
      sourceVolume: receive.source.sourceVolumeName,
      incremental: receive.source.baseSourceSnapshotId !== null,
      nextChunk: receive.progress.nextChunk,
      totalChunkCount: receive.source.totalChunkCount,
      startedAt: receive.startedAt,
    };
  }

  /** Give up a receive left by a failed transfer: delete the volume (full) or revert it to its base (incremental). */
  async abort(name: string): Promise<void> {
    await this.#modules.commands.barrier?.();
    const volume = this.#requireVolume(name);
    if (volume.receive === undefined) throw new PlinthError('RECEIVE_CONFLICT', `volume ${name} has no receive in progress`, { name });
    this.#exclusive(name);
    try {
      await this.#undo(name, volume.receive);
    } finally {
      this.#active.delete(name);
    }
  }

  async receive(request: ReceiveRequest, body: AsyncIterable<Buffer | Uint8Array>): Promise<ReceiveResultView> {
    await this.#modules.commands.barrier?.();
    this.#exclusive(request.name);
    try {
      return await this.#receive(request, body);
    } finally {
      this.#active.delete(request.name);
    }
  }

  async #receive(request: ReceiveRequest, body: AsyncIterable<Buffer | Uint8Array>): Promise<ReceiveResultView> {
    const { name } = request;
    const resumeFrom = request.resume === true ? this.#resumeRecord(name) : undefined;
    let writer: ReceiveWriter | undefined;
    // Set once the stream's header was accepted for this target: only then can a corrupt stream undo anything.
    let record: ReceiveRecord | undefined;
    const checkpoint = resumeFrom === undefined || resumeFrom.progress.nextChunk === 0 ? undefined : (resumeFrom.progress satisfies ReceiveCheckpoint);
    try {
      const outcome = await receiveStream(body, { ...(checkpoint === undefined ? {} : { resume: checkpoint }), ...this.#checkpointOption() }, {
        openTarget: async (header) => {
          record = resumeFrom === undefined ? await this.#start(request, header) : await this.#resumeHere(name, resumeFrom, header);
          if (this.#requireVolume(name).sizeBytes < header.volumeSizeBytes) await this.#modules.resizeVolume(name, header.volumeSizeBytes);
          writer = await this.#modules.openWriter(name);
          return writer.device;
        },
        saveCheckpoint: async (saved) => {
          await this.#modules.commands.propose({ type: 'volume.receive-progress', name, ...saved });
        },
        logger: this.#modules.logger,
      });
      await this.#release(writer);
      writer = undefined;
      await this.#modules.createSnapshot(name, outcome.header.snapshotName);
      await this.#modules.commands.propose({ type: 'volume.receive-finish', name });
      this.#modules.logger.info({ volume: name, snapshot: outcome.header.snapshotName, chunks: outcome.chunkCount, bytes: outcome.bytesWritten }, 'receive complete; volume visible');
      return {
        volume: name,
        snapshot: outcome.header.snapshotName,
        base: outcome.header.baseSnapshotName,
        chunkCount: outcome.chunkCount,
        chunksWritten: outcome.chunksWritten,
        bytesWritten: outcome.bytesWritten,
        streamSha256: outcome.streamDigestHex,
      };
    } catch (error) {
      await this.#release(writer);
      throw await this.#failed(name, record, error);
    }
  }

  /** Corruption undoes the receive; anything else (truncation, a dropped connection, a write error) keeps it resumable. */
  async #failed(name: string, record: ReceiveRecord | undefined, error: unknown): Promise<unknown> {
    if (record === undefined) return error;
    if (isPlinthError(error) && CORRUPTION_CODES.has(error.code)) {
      this.#modules.logger.warn({ err: error, volume: name }, 'corrupt send stream refused; undoing the receive');
      await this.#undo(name, record).catch((undoError: unknown) => this.#modules.logger.error({ err: toError(undoError), volume: name }, 'undoing the refused receive failed; abort it by hand'));
      return error;
    }
    const nextChunk = findVolume(this.#modules.commands.state, name)?.receive?.progress.nextChunk ?? 0;
    this.#modules.logger.warn({ err: toError(error), volume: name, nextChunk }, 'receive interrupted; resumable');
    if (isPlinthError(error)) return new PlinthError(error.code, `${error.message} (resume with: plinth volume send … --from-chunk ${nextChunk} | plinth volume receive ${name} --resume)`, { ...error.details, nextChunk, resumable: true });
    return new PlinthError('STREAM_TRUNCATED', `receive of ${name} interrupted: ${toError(error).message} (resume from chunk ${nextChunk})`, { nextChunk, resumable: true }, { cause: error });
  }

  async #undo(name: string, record: ReceiveRecord): Promise<void> {
    if (record.baseSnapshotName === null && record.source.baseSourceSnapshotId === null) {
      await this.#modules.deleteVolume(name);
      this.#modules.logger.info({ volume: name }, 'received volume deleted');
      return;
    }
    if (record.baseSnapshotName !== null) await this.#modules.revertVolume(name, record.baseSnapshotName);
    await this.#modules.commands.propose({ type: 'volume.receive-abort', name });
    this.#modules.logger.info({ volume: name, base: record.baseSnapshotName }, 'incremental receive undone: volume back at its base');
  }

  async #start(request: ReceiveRequest, header: SendStreamHeader): Promise<ReceiveRecord> {
    const { name } = request;
    const source: ReceiveSource = {
      sourceClusterId: header.sourceClusterId,
      sourceVolumeId: header.volumeId,
      sourceVolumeName: header.volumeName,
      snapshotName: header.snapshotName,
      sourceSnapshotId: header.snapshotId,
      baseSourceSnapshotId: header.baseSnapshotId,
      totalChunkCount: header.totalChunkCount,
      volumeSizeBytes: header.volumeSizeBytes,
    };
    const at = (this.#modules.clock ?? (() => new Date()))().toISOString();
    if (header.baseSnapshotId === null) {
      const state = this.#modules.commands.state;
      if (findVolume(state, name) !== undefined) throw new PlinthError('VOLUME_EXISTS', `volume ${name} already exists: a full stream creates its volume (receive under another name, or send an incremental)`, { name });
      const placement = this.#modules.placement(state, request.replicaCount);
      const create = { id: (this.#modules.newId ?? randomUUID)(), sizeBytes: header.volumeSizeBytes, replicaCount: placement.length, placement };
      await this.#modules.commands.propose({ type: 'volume.receive-start', name, nodeId: this.#options.nodeId, at, source, create });
    } else {
      await this.#modules.commands.propose({ type: 'volume.receive-start', name, nodeId: this.#options.nodeId, at, source });
    }
    const record = this.#requireVolume(name).receive;
    if (record === undefined) throw new PlinthError('INTERNAL', `volume ${name}: receive-start committed without a receive record`);
    if (record.baseSnapshotName !== null) await this.#revertToBase(name, record);
    return record;
  }

  async #revertToBase(name: string, record: ReceiveRecord): Promise<void> {
    const baseSnapshotName = record.baseSnapshotName;
    if (baseSnapshotName === null) return;
    try {
      await this.#modules.revertVolume(name, baseSnapshotName);
    } catch (error) {
      await this.#modules.commands.propose({ type: 'volume.receive-abort', name });
      throw error;
    }
  }

  #resumeRecord(name: string): ReceiveRecord {
    const receive = this.#requireVolume(name).receive;
    if (receive === undefined) throw new PlinthError('RECEIVE_CONFLICT', `volume ${name} has no receive to resume`, { name });
    return receive;
  }

  /** A resumed stream must be the same stream; a resume on another node makes this one the receiving node first. */
  async #resumeHere(name: string, record: ReceiveRecord, header: SendStreamHeader): Promise<ReceiveRecord> {
    this.#checkResume(name, record, header);
    if (record.nodeId === this.#options.nodeId) return record;
    await this.#modules.commands.propose({ type: 'volume.receive-resume', name, nodeId: this.#options.nodeId });
    return { ...record, nodeId: this.#options.nodeId };
  }

  /** Same source snapshot, base and chunk plan. */
  #checkResume(name: string, record: ReceiveRecord, header: SendStreamHeader): void {
    const { source } = record;
    const same = source.sourceClusterId === header.sourceClusterId && source.sourceSnapshotId === header.snapshotId
      && source.baseSourceSnapshotId === header.baseSnapshotId && source.totalChunkCount === header.totalChunkCount && source.volumeSizeBytes === header.volumeSizeBytes;
    if (!same) {
      throw new PlinthError('RECEIVE_CONFLICT', `volume ${name} is receiving ${source.sourceVolumeName}@${source.snapshotName} (${source.totalChunkCount} chunks); this stream is ${header.volumeName}@${header.snapshotName} (${header.totalChunkCount} chunks) — resume with the same send, from the same node`, {
        name,
      });
    }
  }

  #exclusive(name: string): void {
    if (this.#active.has(name)) throw new PlinthError('RECEIVE_CONFLICT', `a receive into ${name} is already running on this node`, { name });
    this.#active.add(name);
  }

  #requireVolume(name: string): VolumeRecord {
    const volume = findVolume(this.#modules.commands.state, name);
    if (volume === undefined) throw new PlinthError('VOLUME_NOT_FOUND', `volume ${name} does not exist`, { name });
    return volume;
  }

  #checkpointOption(): { checkpointEveryBytes?: number } {
    return this.#options.checkpointEveryBytes === undefined ? {} : { checkpointEveryBytes: this.#options.checkpointEveryBytes };
  }

  async #release(writer: ReceiveWriter | undefined): Promise<void> {
    if (writer === undefined) return;
    await writer.release();
  }
}
