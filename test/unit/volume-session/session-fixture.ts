import type { Test } from 'tap';
import { VolumeSession } from '../../../daemon/volume/volume-session.js';
import { makeTempDir, SECRET, silentLogger, startReplicaNode, type ReplicaNode } from '../replica/replica-fixture.js';
import { FakeCluster } from './fake-cluster.js';

/** Three real replica nodes (pool + replica server on 127.0.0.1) and a FakeCluster naming them n1..n3. */

export const NODE_IDS = ['n1', 'n2', 'n3'] as const;
export const SESSION_VOLUME_BYTES = 16 * 1024 * 1024;
/** Small activity regions so a test can tell which regions a resync copied. */
export const REGION_BYTES = 64 * 1024;

export interface SessionCluster {
  readonly cluster: FakeCluster;
  readonly nodes: Map<string, ReplicaNode>;
  readonly dirs: Map<string, string>;
  open(nodeId: string, force?: boolean): Promise<VolumeSession>;
  /** Crash a replica node (its server stops; its disk keeps synced data). */
  crash(nodeId: string): Promise<void>;
  /** Start it again on the same port. */
  restart(t: Test, nodeId: string): Promise<void>;
}

export async function startSessionCluster(t: Test): Promise<SessionCluster> {
  const cluster = new FakeCluster('db', SESSION_VOLUME_BYTES, NODE_IDS);
  const nodes = new Map<string, ReplicaNode>();
  const dirs = new Map<string, string>();
  for (const nodeId of NODE_IDS) {
    const dir = await makeTempDir(t);
    const node = await startReplicaNode(t, dir, { nodeId, regionSizeBytes: REGION_BYTES });
    dirs.set(nodeId, dir);
    nodes.set(nodeId, node);
    cluster.peers.set(nodeId, { host: '127.0.0.1', port: node.server.address().port });
  }
  const sessions: VolumeSession[] = [];
  t.teardown(async () => {
    for (const session of sessions) await session.close();
  });
  return {
    cluster,
    nodes,
    dirs,
    open: async (nodeId, force) => {
      const node = nodes.get(nodeId);
      if (node === undefined) throw new Error(`no node ${nodeId}`);
      const session = await VolumeSession.open(
        { name: 'db', nodeId, handshakeTimeoutMs: 1000, requestTimeoutMs: 2000, ...(force === undefined ? {} : { force }) },
        { cluster, service: node.server.service, secret: SECRET, logger: silentLogger },
      );
      sessions.push(session);
      return session;
    },
    crash: async (nodeId) => {
      await nodes.get(nodeId)?.crash();
    },
    restart: async (t, nodeId) => {
      const dir = dirs.get(nodeId);
      const port = cluster.peers.get(nodeId)?.port;
      if (dir === undefined || port === undefined) throw new Error(`no node ${nodeId}`);
      nodes.set(nodeId, await startReplicaNode(t, dir, { nodeId, port, regionSizeBytes: REGION_BYTES }));
    },
  };
}
