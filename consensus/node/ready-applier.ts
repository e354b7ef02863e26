/**
 * Step 3 of the Ready loop (consensus/raft/types.ts): restore a snapshot,
 * apply committed entries in order, hand out read states; plus the runner's
 * own replicated state (the peer address book) and periodic snapshots with
 * log compaction (Raft §7).
 */
import type { Logger } from 'pino';
import { toError } from '../../common/plinth-error.js';
import { applyConfChange, decodeConfChange, EMPTY_CONF_STATE, isMember } from '../raft/conf-change.js';
import type { RaftCore } from '../raft/raft-core.js';
import type { ConfState, Entry, Ready, Snapshot } from '../raft/types.js';
import type { RaftLogStorage } from '../storage/raft-log-storage.js';
import type { PeerAddress, Transport } from '../transport/transport-types.js';
import type { Message } from '../raft/types.js';
import { decodeBatch } from './command-batch.js';
import { decodeNodeSnapshot, encodeNodeSnapshot } from './node-snapshot.js';
import type { PendingRequests } from './pending-requests.js';
import type { StateMachine } from './state-machine.js';

export interface ReadyApplierOptions {
  readonly nodeId: string;
  readonly selfAddress: PeerAddress;
  readonly snapshotEveryEntries: number;
}

export interface ReadyApplierModules<R> {
  readonly logger: Logger;
  readonly transport: Transport<Message>;
  readonly stateMachine: StateMachine<R>;
  readonly storage: RaftLogStorage;
  readonly core: RaftCore;
  readonly pending: PendingRequests<R>;
}

export class ReadyApplier<R> {
  readonly #options: ReadyApplierOptions;
  readonly #modules: ReadyApplierModules<R>;
  /** Replicated address book (from the log and snapshots). */
  readonly #replicated = new Map<string, PeerAddress>();
  /** What this node knows: the replicated book over the addresses configured locally. */
  readonly addresses = new Map<string, PeerAddress>();
  #conf: ConfState = EMPTY_CONF_STATE;
  appliedIndex = 0;
  snapshotIndex = 0;

  constructor(options: ReadyApplierOptions, modules: ReadyApplierModules<R>, configured: ReadonlyMap<string, PeerAddress>) {
    this.#options = options;
    this.#modules = modules;
    for (const [id, address] of configured) this.#learnAddress(id, address);
    this.#learnAddress(options.nodeId, options.selfAddress);
  }

  restoreFromStorage(snapshot: Snapshot | null): void {
    if (snapshot !== null) this.#restore(snapshot);
  }

  apply(ready: Ready, leaderHint: string | null): void {
    if (ready.snapshot !== undefined) this.#restore(ready.snapshot);
    for (const entry of ready.committedEntries) this.#applyEntry(entry, leaderHint);
    for (const readState of ready.readStates) this.#modules.pending.readIndexKnown(readState.context.toString('hex'), readState.index);
    this.#modules.pending.settleReads(this.appliedIndex);
  }

  /** A new leader replicates the addresses it knows that the log does not yet hold. */
  onBecameLeader(replicate: (nodeId: string, address: PeerAddress) => void): void {
    for (const [id, address] of this.addresses) {
      const known = this.#replicated.get(id);
      if (known === undefined || known.host !== address.host || known.port !== address.port) replicate(id, address);
    }
  }

  /** Every `snapshotEveryEntries` applied entries: snapshot, compact the core and storage (§7). */
  async maybeSnapshot(): Promise<void> {
    if (this.appliedIndex - this.snapshotIndex < this.#options.snapshotEveryEntries) return;
    const image = encodeNodeSnapshot({ addresses: this.#replicated, application: this.#modules.stateMachine.snapshot() });
    const snapshot = this.#modules.core.compact(this.appliedIndex, image);
    await this.#modules.storage.saveLocalSnapshot(snapshot);
    this.snapshotIndex = snapshot.metadata.index;
    this.#modules.logger.info({ index: snapshot.metadata.index, sizeBytes: image.length }, 'raft: snapshot taken, log compacted');
  }

  #restore(snapshot: Snapshot): void {
    const image = decodeNodeSnapshot(snapshot.data);
    this.#modules.stateMachine.restore(image.application);
    this.#replicated.clear();
    for (const [id, address] of image.addresses) {
      this.#replicated.set(id, address);
      this.#learnAddress(id, address);
    }
    this.#setConf(snapshot.metadata.confState);
    this.appliedIndex = snapshot.metadata.index;
    this.snapshotIndex = snapshot.metadata.index;
    this.#modules.logger.info({ index: snapshot.metadata.index }, 'raft: state machine restored from snapshot');
  }

  #applyEntry(entry: Entry, leaderHint: string | null): void {
    const results: R[] = [];
    if (entry.type === 'conf-change') {
      this.#applyConfChange(entry);
    } else {
      for (const item of decodeBatch(entry.data)) {
        if (item.kind === 'command') {
          results.push(this.#modules.stateMachine.apply({ index: entry.index, term: entry.term, command: item.command }));
        } else {
          this.#replicated.set(item.nodeId, item.address);
          this.#learnAddress(item.nodeId, item.address);
          // Address registrations resolve like commands; their "result" is never read.
          results.push(undefined as R);
        }
      }
    }
    this.appliedIndex = entry.index;
    this.#modules.pending.settleApplied(entry.index, entry.term, results, leaderHint);
  }

  #applyConfChange(entry: Entry): void {
    try {
      this.#setConf(applyConfChange(this.#conf, decodeConfChange(entry.data)));
    } catch (err) {
      this.#modules.logger.error({ err: toError(err), index: entry.index }, 'raft: undecodable conf-change entry ignored');
    }
  }

  /** Keep the transport's peer set equal to the members (minus ourselves). */
  #setConf(conf: ConfState): void {
    this.#conf = conf;
    for (const id of this.addresses.keys()) {
      if (id === this.#options.nodeId) continue;
      const address = this.addresses.get(id);
      if (isMember(conf, id) && address !== undefined) this.#modules.transport.setPeer(id, address);
    }
    for (const id of [...this.#replicated.keys(), ...this.addresses.keys()]) {
      if (id !== this.#options.nodeId && !isMember(conf, id) && conf.voters.length > 0) this.#modules.transport.removePeer(id);
    }
  }

  #learnAddress(id: string, address: PeerAddress): void {
    this.addresses.set(id, address);
    if (id !== this.#options.nodeId) this.#modules.transport.setPeer(id, address);
  }
}
