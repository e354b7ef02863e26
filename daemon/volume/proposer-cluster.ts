import { failpoints, hitFailpoint } from '../../common/failpoints/failpoints.js';
import { PlinthError } from '../../common/plinth-error.js';
import { type ClusterState, findNode, findVolume, isNodeUp, type VolumeRecord } from '../state/cluster-state.js';
import type { CommandProposer } from '../control/command-proposer.js';
import { expectVolumeResult } from '../control/command-proposer.js';
import type { DataPlaneCluster, PeerAddress, VolumePlacement } from './data-plane-cluster.js';

/**
 * The data plane's cluster port over the command log (Raft-backed in a
 * cluster, LocalCommandLog on a single node): reads the committed state,
 * proposes replica.* and volume.attach and resolves once they are committed.
 */

export interface ProposerClusterModules {
  readonly commands: CommandProposer;
  /** Timestamps travel in commands (apply is pure); injected for tests. */
  readonly nowIso?: () => string;
}

export function proposerCluster(modules: ProposerClusterModules): DataPlaneCluster {
  const { commands } = modules;
  const nowIso = modules.nowIso ?? (() => new Date().toISOString());
  const state = (): ClusterState => commands.state;
  const replicaCommand = async (type: 'replica.fault' | 'replica.rebuilding' | 'replica.in-sync', name: string, nodeId: string, generation: number): Promise<void> => {
    await commands.propose({ type, name, nodeId, generation, at: nowIso() });
  };
  // Delta resync (issue 4): the fault carries the in-sync replicas' dirty markers.
  const faultCommand = async (name: string, nodeId: string, generation: number, resyncMarkers: Readonly<Record<string, number>> | undefined): Promise<void> => {
    await commands.propose({ type: 'replica.fault', name, nodeId, generation, at: nowIso(), ...(resyncMarkers === undefined ? {} : { resyncMarkers }) });
  };
  return {
    volume: (name) => {
      const volume = findVolume(state(), name);
      return volume === undefined ? undefined : placementOf(volume);
    },
    nodeIsUp: (nodeId) => isNodeUp(state(), nodeId),
    peerAddress: (nodeId) => {
      const node = findNode(state(), nodeId);
      return node === undefined ? undefined : parsePeerAddress(node.addresses.peer);
    },
    attach: async (name, nodeId, force) => {
      const current = findVolume(state(), name);
      // Compare-and-set: a takeover based on a stale view (someone else took over first) is refused.
      const guard = force && current !== undefined ? { force, expectedGeneration: current.generation } : {};
      const result = await commands.propose({ type: 'volume.attach', name, nodeId, ...guard });
      return placementOf(expectVolumeResult(result));
    },
    faultReplica: async (name, nodeId, generation, resyncMarkers) => {
      const committing = faultCommand(name, nodeId, generation, resyncMarkers);
      // Proposed, not yet committed (issue 7); Promise.all keeps a rejection of either observed.
      if (failpoints.armed) await Promise.all([committing, hitFailpoint('controller.fault.before-commit', name)]);
      await committing;
    },
    markRebuilding: (name, nodeId, generation) => replicaCommand('replica.rebuilding', name, nodeId, generation),
    markInSync: (name, nodeId, generation) => replicaCommand('replica.in-sync', name, nodeId, generation),
  };
}

export function placementOf(volume: VolumeRecord): VolumePlacement {
  return {
    volumeId: volume.id,
    name: volume.name,
    sizeBytes: volume.sizeBytes,
    generation: volume.generation,
    ownerNodeId: volume.attachedTo,
    replicas: volume.replicas.map((replica) => ({
      nodeId: replica.nodeId,
      state: replica.state,
      ...(replica.resyncMarkers === undefined ? {} : { resyncMarkers: replica.resyncMarkers }),
      ...(replica.dataGeneration === undefined ? {} : { dataGeneration: replica.dataGeneration }),
    })),
    graceMs: volume.graceMs,
  };
}

/** "host:port" or "[v6]:port" as stored in NodeAddresses.peer. */
export function parsePeerAddress(address: string): PeerAddress {
  const colon = address.lastIndexOf(':');
  const port = Number(address.slice(colon + 1));
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new PlinthError('CONFIG_INVALID', `peer address ${JSON.stringify(address)} is not host:port`, { address });
  }
  return { host, port };
}
