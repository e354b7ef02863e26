import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import { DEFAULT_MAX_IO_BYTES, maxFrameBytesFor, Opcode } from '../../blockdev/replica/replica-protocol.js';
import { ReplicaLink } from '../../blockdev/replica/replica-link.js';
import { encodeSnapshotReference } from '../../blockdev/replica/snapshot-payloads.js';
import type { PeerAddress } from '../volume/data-plane-cluster.js';

/**
 * Talks the snapshot ops of the replication protocol (version 3;
 * blockdev/replica/snapshot-payloads.ts) to one node's replica server on
 * its peer port: a fresh authenticated link per operation (control-plane
 * rates), carrying the volume's committed generation so a replica that has
 * admitted a newer owner refuses it (FENCED, invariant 3). Reads of a
 * snapshot keep their link (SnapshotReadLink) for the life of an export.
 */

export interface SnapshotReplicaClientOptions {
  /** This node's id, proven in HELLO. */
  readonly nodeId: string;
  readonly secret: Buffer;
  /** Bound on connecting, authenticating and OPEN. */
  readonly handshakeTimeoutMs?: number;
  /** Bound on one snapshot op (a pool flush + a synced batch; a revert or clone remap). */
  readonly requestTimeoutMs?: number;
}

export interface SnapshotReplicaClientModules {
  readonly peerAddress: (nodeId: string) => PeerAddress | undefined;
  /** Mutual TLS in a TLS cluster (daemon/tls/peer-sockets.ts); plain TCP by default. */
  readonly connectPeer?: (host: string, port: number) => Socket;
  readonly logger: Logger;
}

/** Which volume, at which generation; `sizeBytes` is what the link's OPEN checks against the replica. */
export interface VolumeAtGeneration {
  readonly volumeId: string;
  readonly sizeBytes: number;
  readonly generation: number;
}

export type SnapshotOp = 'create' | 'delete' | 'revert';

const OPCODE_OF: Readonly<Record<SnapshotOp, number>> = {
  create: Opcode.SNAPSHOT_CREATE,
  delete: Opcode.SNAPSHOT_DELETE,
  revert: Opcode.REVERT,
};

export class SnapshotReplicaClient {
  readonly #options: SnapshotReplicaClientOptions;
  readonly #modules: SnapshotReplicaClientModules;

  constructor(options: SnapshotReplicaClientOptions, modules: SnapshotReplicaClientModules) {
    this.#options = options;
    this.#modules = modules;
  }

  /** SNAPSHOT_CREATE / SNAPSHOT_DELETE / REVERT of `snapshotId` on `nodeId`'s replica. */
  async run(nodeId: string, op: SnapshotOp, volume: VolumeAtGeneration, snapshotId: string): Promise<void> {
    await this.#once(nodeId, volume, (link) =>
      link.send({ opcode: OPCODE_OF[op] as Opcode, flags: 0, offset: 0, lengthBytes: 0, payload: encodeSnapshotReference({ snapshotId }) }),
    );
  }

  /** CLONE on `nodeId`: its pool makes `newVolumeId` from the snapshot, sharing its extents. */
  async clone(nodeId: string, volume: VolumeAtGeneration, snapshotId: string, newVolumeId: string): Promise<void> {
    await this.#once(nodeId, volume, (link) =>
      link.send({ opcode: Opcode.CLONE, flags: 0, offset: 0, lengthBytes: 0, payload: encodeSnapshotReference({ snapshotId, newVolumeId }) }),
    );
  }

  /** A link for SNAPSHOT_READs of one snapshot on `nodeId` (an export on a node that holds none). */
  async openReadLink(nodeId: string, volume: VolumeAtGeneration, snapshotId: string): Promise<SnapshotReadLink> {
    const link = await this.#open(nodeId, volume);
    return new SnapshotReadLink(link, snapshotId, this.#options.requestTimeoutMs ?? 30_000);
  }

  /**
   * An open, authenticated link to `nodeId`'s replica of the volume at its
   * generation, for ordinary data requests (a rebuild writing a snapshot's
   * content into a replica that lacks it: snapshot-rebuild.ts). The caller closes it.
   */
  openLink(nodeId: string, volume: VolumeAtGeneration): Promise<ReplicaLink> {
    return this.#open(nodeId, volume);
  }

  async #once(nodeId: string, volume: VolumeAtGeneration, send: (link: ReplicaLink) => Promise<Buffer>): Promise<void> {
    const link = await this.#open(nodeId, volume);
    try {
      await withTimeout(send(link), this.#options.requestTimeoutMs ?? 30_000, `node ${nodeId} did not answer a snapshot request`);
    } finally {
      link.close('snapshot request done');
    }
  }

  async #open(nodeId: string, volume: VolumeAtGeneration): Promise<ReplicaLink> {
    const address = this.#modules.peerAddress(nodeId);
    if (address === undefined) throw new PlinthError('NODE_NOT_FOUND', `no peer address known for node ${nodeId}`, { nodeId });
    const link = new ReplicaLink(
      {
        host: address.host,
        port: address.port,
        nodeId: this.#options.nodeId,
        secret: this.#options.secret,
        volumeId: volume.volumeId,
        sizeBytes: volume.sizeBytes,
        generation: volume.generation,
        maxFrameBytes: maxFrameBytesFor(DEFAULT_MAX_IO_BYTES),
        handshakeTimeoutMs: this.#options.handshakeTimeoutMs ?? 5000,
      },
      {
        connect: this.#modules.connectPeer ?? ((host, port) => netConnect({ host, port })),
        randomBytes: cryptoRandomBytes,
        logger: this.#modules.logger,
      },
    );
    await link.open();
    return link;
  }
}

/** SNAPSHOT_READ over one open link; fails for good once the link is down (the caller opens another). */
export class SnapshotReadLink {
  readonly #link: ReplicaLink;
  readonly #payload: Buffer;
  readonly #timeoutMs: number;

  constructor(link: ReplicaLink, snapshotId: string, timeoutMs: number) {
    this.#link = link;
    this.#payload = encodeSnapshotReference({ snapshotId });
    this.#timeoutMs = timeoutMs;
  }

  get closed(): boolean {
    return this.#link.closed;
  }

  async read(offset: number, target: Buffer): Promise<void> {
    const data = await withTimeout(
      this.#link.send({ opcode: Opcode.SNAPSHOT_READ, flags: 0, offset, lengthBytes: target.length, payload: this.#payload }),
      this.#timeoutMs,
      'snapshot read timed out',
    );
    if (data.length !== target.length) throw new PlinthError('IO_ERROR', `snapshot read of ${target.length} bytes answered with ${data.length}`);
    data.copy(target);
  }

  close(): void {
    this.#link.close('snapshot export closed');
  }
}

async function withTimeout<T>(work: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PlinthError('TIMEOUT', `${message} within ${timeoutMs} ms`, { timeoutMs })), timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
