import { PlinthError } from '../../common/plinth-error.js';
import type { SnapshotGroupView, SnapshotView, VolumeView } from '../../daemon/control-plane.js';
import { FakeControlPlane } from './fake-control-plane.js';

/**
 * FakeControlPlane with snapshots in memory (issue 8), for the route, CLI
 * and dashboard tests: names are unique per volume, clones become volumes,
 * a revert of an attached volume is refused, a group snapshot carries one
 * group id. `space` is what every snapshot reports as measured.
 */
export class SnapshotControlPlane extends FakeControlPlane {
  readonly snapshotsByVolume = new Map<string, SnapshotView[]>();
  readonly #space: SnapshotView['space'];

  constructor(options: { readonly space?: SnapshotView['space'] } = {}) {
    super();
    this.#space = options.space ?? null;
  }

  async listSnapshots(volume: string): Promise<SnapshotView[]> {
    await this.getVolume(volume);
    return this.snapshotsByVolume.get(volume) ?? [];
  }

  async createSnapshot(volume: string, snapshot: string, groupId?: string): Promise<SnapshotView> {
    const view = await this.getVolume(volume);
    const list = this.snapshotsByVolume.get(volume) ?? [];
    if (list.some((item) => item.name === snapshot)) throw new PlinthError('SNAPSHOT_EXISTS', `volume ${volume} already has a snapshot ${snapshot}`);
    const created: SnapshotView = {
      id: `snap-${list.length + 1}`, name: snapshot, volume, createdAt: new Date(0).toISOString(), sizeBytes: view.sizeBytes,
      generation: view.generation, holders: view.replicas.map((replica) => replica.nodeId), space: this.#space, ...(groupId === undefined ? {} : { groupId }),
    };
    this.snapshotsByVolume.set(volume, [...list, created]);
    return created;
  }

  async deleteSnapshot(volume: string, snapshot: string): Promise<void> {
    const list = await this.listSnapshots(volume);
    if (!list.some((item) => item.name === snapshot)) throw new PlinthError('SNAPSHOT_NOT_FOUND', `volume ${volume} has no snapshot ${snapshot}`);
    this.snapshotsByVolume.set(volume, list.filter((item) => item.name !== snapshot));
  }

  async cloneVolume(volume: string, snapshot: string, cloneName: string): Promise<VolumeView> {
    const source = (await this.listSnapshots(volume)).find((item) => item.name === snapshot);
    if (source === undefined) throw new PlinthError('SNAPSHOT_NOT_FOUND', `volume ${volume} has no snapshot ${snapshot}`);
    return this.createVolume({ name: cloneName, sizeBytes: source.sizeBytes });
  }

  async revertVolume(volume: string): Promise<VolumeView> {
    const view = await this.getVolume(volume);
    if (view.attachedTo !== null) throw new PlinthError('VOLUME_ATTACHED', `volume ${volume} is attached to node ${view.attachedTo}; detach it before reverting`);
    return view;
  }

  async createSnapshotGroup(name: string, volumes: readonly string[]): Promise<SnapshotGroupView> {
    const snapshots: SnapshotView[] = [];
    for (const volume of volumes) snapshots.push(await this.createSnapshot(volume, name, 'group-1'));
    return { groupId: 'group-1', name, snapshots };
  }
}
