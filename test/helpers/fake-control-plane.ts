import { PlinthError } from '../../common/plinth-error.js';
import { DEFAULT_GRACE_MS } from '../../daemon/state/cluster-state.js';
import type {
  ClusterView,
  ControlPlane,
  CreateVolumeRequest,
  NodeView,
  Readiness,
  VolumeChapRequest,
  VolumeView,
} from '../../daemon/control-plane.js';

/**
 * Test double of the control plane: volumes in a Map, a fixed node list and
 * a capacity limit, enough to drive every REST route and error path. Not
 * product code; the real one lives in daemon/.
 */
export interface FakeControlPlaneOptions {
  readonly capacityBytes?: number;
  readonly nodeIds?: readonly string[];
  readonly defaultReplicaCount?: number;
}

const GIB = 1024 ** 3;

export class FakeControlPlane implements ControlPlane {
  readonly volumes = new Map<string, VolumeView>();
  /** What setVolumeChap was last given per volume (secrets included): the routes' tests check what arrived. */
  readonly chapRequests = new Map<string, VolumeChapRequest>();
  readinessState: Readiness = { ready: true, reasons: [] };
  /** When set, the next call of any method throws it (then it clears). */
  failNext: Error | undefined;
  private readonly capacityBytes: number;
  private readonly nodeIds: readonly string[];
  private readonly defaultReplicaCount: number;
  private nextId = 1;

  constructor(options: FakeControlPlaneOptions = {}) {
    this.capacityBytes = options.capacityBytes ?? 100 * GIB;
    this.nodeIds = options.nodeIds ?? ['node-1', 'node-2', 'node-3'];
    this.defaultReplicaCount = options.defaultReplicaCount ?? 1;
  }

  async cluster(): Promise<ClusterView> {
    this.maybeFail();
    return {
      clusterId: 'cluster-test',
      leaderId: this.nodeIds[0] ?? null,
      nodeCount: this.nodeIds.length,
      volumeCount: this.volumes.size,
      capacityBytes: this.capacityBytes,
      usedBytes: this.usedBytes(),
      version: '0.1.0-test',
    };
  }

  async nodes(): Promise<NodeView[]> {
    this.maybeFail();
    return this.nodeIds.map((id, index) => ({
      id,
      state: 'up',
      leader: index === 0,
      addresses: { api: `127.0.0.1:${9700 + index * 10}`, peer: '127.0.0.1:9701', nbd: '127.0.0.1:10809', iscsi: '127.0.0.1:3260' },
      labels: index === 0 ? { zone: 'z1', rack: 'r1' } : {},
      disks: [{ id: `${id}-disk-0`, path: `/data/${id}/disk-0.img`, kind: 'file', capacityBytes: this.capacityBytes, usedBytes: 0, extentSizeBytes: 1024 ** 2 }],
      capacityBytes: this.capacityBytes,
      usedBytes: 0,
    }));
  }

  async listVolumes(): Promise<VolumeView[]> {
    this.maybeFail();
    return [...this.volumes.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  async getVolume(name: string): Promise<VolumeView> {
    this.maybeFail();
    return this.mustGet(name);
  }

  async createVolume(request: CreateVolumeRequest): Promise<VolumeView> {
    this.maybeFail();
    if (this.volumes.has(request.name)) {
      throw new PlinthError('VOLUME_EXISTS', `volume "${request.name}" already exists`, { name: request.name });
    }
    if (request.sizeBytes === 0) throw new PlinthError('INVALID_SIZE', 'size must be greater than zero');
    const replicaCount = request.replicaCount ?? this.defaultReplicaCount;
    if (replicaCount > this.nodeIds.length) {
      throw new PlinthError('NO_SPACE', `cannot place ${replicaCount} replicas on ${this.nodeIds.length} nodes`, { replicaCount });
    }
    if (this.usedBytes() + request.sizeBytes * replicaCount > this.capacityBytes) {
      throw new PlinthError('NO_SPACE', `not enough space for volume "${request.name}"`, { name: request.name });
    }
    const view: VolumeView = {
      id: `vol-${this.nextId++}`,
      name: request.name,
      sizeBytes: request.sizeBytes,
      replicaCount,
      createdAt: new Date(0).toISOString(),
      attachedTo: null,
      generation: 0,
      state: 'healthy',
      allocatedBytes: 0,
      replicas: this.nodeIds.slice(0, replicaCount).map((nodeId) => ({ nodeId, state: 'in-sync' })),
      connections: 0,
      graceMs: request.graceMs ?? DEFAULT_GRACE_MS,
      chap: null,
    };
    this.volumes.set(view.name, view);
    return view;
  }

  async resizeVolume(name: string, sizeBytes: number): Promise<VolumeView> {
    this.maybeFail();
    const current = this.mustGet(name);
    if (sizeBytes < current.sizeBytes) {
      throw new PlinthError('INVALID_SIZE', `volume "${name}" cannot shrink`, { sizeBytes, currentSizeBytes: current.sizeBytes });
    }
    return this.replace({ ...current, sizeBytes });
  }

  async deleteVolume(name: string): Promise<void> {
    this.maybeFail();
    const current = this.mustGet(name);
    if (current.attachedTo !== null) {
      throw new PlinthError('VOLUME_ATTACHED', `volume "${name}" is attached to ${current.attachedTo}`, { attachedTo: current.attachedTo });
    }
    this.volumes.delete(name);
  }

  async attachVolume(name: string, nodeId: string, options: { readonly force?: boolean } = {}): Promise<VolumeView> {
    this.maybeFail();
    const current = this.mustGet(name);
    if (!this.nodeIds.includes(nodeId)) {
      throw new PlinthError('INVALID_ARGUMENT', `unknown node "${nodeId}"`, { nodeId });
    }
    if (current.attachedTo !== null && current.attachedTo !== nodeId && options.force !== true) {
      throw new PlinthError('VOLUME_ATTACHED', `volume "${name}" is attached to ${current.attachedTo}`, { attachedTo: current.attachedTo });
    }
    return this.replace({ ...current, attachedTo: nodeId, generation: current.generation + 1 });
  }

  async detachVolume(name: string, options: { readonly force?: boolean } = {}): Promise<VolumeView> {
    this.maybeFail();
    const current = this.mustGet(name);
    if (current.connections > 0 && options.force !== true) {
      throw new PlinthError('VOLUME_ATTACHED', `volume "${name}" has ${current.connections} live connections`, { connections: current.connections });
    }
    return this.replace({ ...current, attachedTo: null, connections: 0 });
  }

  readiness(): Readiness {
    return this.readinessState;
  }

  async setVolumeChap(name: string, request: VolumeChapRequest): Promise<VolumeView> {
    this.maybeFail();
    const current = this.mustGet(name);
    this.chapRequests.set(name, request);
    return this.replace({ ...current, chap: { user: request.user, mutual: request.targetUser !== undefined } });
  }

  async clearVolumeChap(name: string): Promise<VolumeView> {
    this.maybeFail();
    const current = this.mustGet(name);
    this.chapRequests.delete(name);
    return this.replace({ ...current, chap: null });
  }

  /** Test hook: pretend NBD clients are connected. */
  setConnections(name: string, connections: number): void {
    this.replace({ ...this.mustGet(name), connections });
  }

  private mustGet(name: string): VolumeView {
    const view = this.volumes.get(name);
    if (view === undefined) throw new PlinthError('VOLUME_NOT_FOUND', `volume "${name}" not found`, { name });
    return view;
  }

  private replace(view: VolumeView): VolumeView {
    this.volumes.set(view.name, view);
    return view;
  }

  private usedBytes(): number {
    let total = 0;
    for (const view of this.volumes.values()) total += view.sizeBytes * view.replicaCount;
    return total;
  }

  private maybeFail(): void {
    const failure = this.failNext;
    if (failure === undefined) return;
    this.failNext = undefined;
    throw failure;
  }
}
