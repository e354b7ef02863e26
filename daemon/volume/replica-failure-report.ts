import type { Logger } from 'pino';
import { isPlinthError, toError } from '../../common/plinth-error.js';
import type { DataPlaneCluster } from './data-plane-cluster.js';

/**
 * The owner's report of a failed replica (replica.fault, invariant 2), with
 * one exception: a replica whose replica.remove is already committed (a
 * locality or drain move retired it, a replacement dropped it) is out of the
 * in-sync set for good, so its failure needs no commit. That happens when a
 * request was still travelling to the retiree as the move finished: the
 * session closes its link (SHUTTING_DOWN) or the retiree frees its copy
 * (issue 8) and refuses. Proposing the fault then is refused by the state
 * machine ("no replica on node") and the refusal would suspend the volume:
 * a client would see EIO because the cluster moved a replica (issue 4
 * "data locality"). Every other failure is reported exactly as before.
 */

/** A forwarded refusal can arrive before this node applied the removal it is based on: wait that long for it. */
export const REMOVAL_APPLY_WAIT_MS = 2000;
const REMOVAL_POLL_MS = 25;

export interface ReplicaFailureReportModules {
  readonly cluster: DataPlaneCluster;
  readonly logger: Logger;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly nowMs?: () => number;
}

export type ReportReplicaFailure = (replicaId: string, resyncMarkers: Readonly<Record<string, number>>) => Promise<void>;

/** Wraps the fault commit of volume `name` so that replicas already removed in the committed state are skipped. */
export function reportUnlessRemoved(name: string, commitFault: ReportReplicaFailure, modules: ReplicaFailureReportModules): ReportReplicaFailure {
  const { cluster, logger } = modules;
  const sleep = modules.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const nowMs = modules.nowMs ?? (() => performance.now());
  const removed = (replicaId: string): boolean => {
    const volume = cluster.volume(name);
    return volume !== undefined && !volume.replicas.some((replica) => replica.nodeId === replicaId);
  };
  return async (replicaId, resyncMarkers) => {
    if (removed(replicaId)) {
      logger.info({ replica: replicaId }, 'a retired replica failed after its removal was committed: nothing to report');
      return;
    }
    try {
      await commitFault(replicaId, resyncMarkers);
    } catch (error) {
      // Only the state machine's refusal can mean "removed meanwhile"; no quorum and fencing stay failures.
      if (!isPlinthError(error, 'INVALID_ARGUMENT')) throw error;
      const deadlineMs = nowMs() + REMOVAL_APPLY_WAIT_MS;
      while (!removed(replicaId) && nowMs() < deadlineMs) await sleep(REMOVAL_POLL_MS);
      if (!removed(replicaId)) throw error;
      logger.info({ err: toError(error), replica: replicaId }, 'fault refused because the replica was removed meanwhile: nothing to report');
    }
  };
}
