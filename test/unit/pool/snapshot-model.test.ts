import { join } from 'node:path';
import t, { type Test } from 'tap';
import { SeededPrng } from '../../../common/prng.js';
import type { DiskPool } from '../../../blockdev/pool/disk-pool.js';
import type { Pool, VolumeStore } from '../../../blockdev/pool/pool-types.js';
import { MemoryPool } from '../../helpers/memory-pool.js';
import { EXTENT, makeTempDir, openTestDb, openTestPool, pattern, type TestDb } from './pool-fixture.js';

/**
 * Randomized model test of snapshots, clones and reverts (issue 8): seeded
 * random operations on volumes, their snapshots and clones, checked against
 * plain buffers. Run on the disk pool (with clean reopens, which rebuild
 * the refcounts from the durable maps) and on test/helpers/memory-pool.ts,
 * which the layers above use in their tests. Bounded in time.
 */

const VOLUME_EXTENTS = 6;
const VOLUME_BYTES = VOLUME_EXTENTS * EXTENT;
const MAX_VOLUMES = 4;
const MAX_SNAPSHOTS_PER_VOLUME = 4;
const OPERATIONS = 250;
const TIME_BUDGET_MS = 1500;

interface ModelVolume {
  content: Buffer;
  readonly snapshots: Map<string, Buffer>;
}

interface Harness {
  pool: Pool;
  /** Clean close and reopen (disk pool only); returns the new pool. */
  readonly reopen: (() => Promise<Pool>) | null;
}

class ModelRun {
  readonly model = new Map<string, ModelVolume>();
  readonly open = new Map<string, VolumeStore>();
  #nextId = 0;
  #seed = 1000;

  constructor(
    readonly t: Test,
    readonly harness: Harness,
    readonly prng: SeededPrng,
  ) {}

  get pool(): Pool {
    return this.harness.pool;
  }

  pick<T>(items: readonly T[]): T | undefined {
    return items[this.prng.nextInt(items.length)];
  }

  async volume(volumeId: string): Promise<VolumeStore> {
    let store = this.open.get(volumeId);
    if (store === undefined) {
      store = await this.pool.openVolume(volumeId, this.model.get(volumeId)?.content.length ?? VOLUME_BYTES);
      this.open.set(volumeId, store);
    }
    return store;
  }

  async closeVolume(volumeId: string): Promise<void> {
    await this.open.get(volumeId)?.close();
    this.open.delete(volumeId);
  }

  /** A range that often crosses extent boundaries and sometimes covers whole extents. */
  range(sizeBytes: number): [number, number] {
    if (this.prng.nextInt(4) === 0) {
      const first = this.prng.nextInt(VOLUME_EXTENTS);
      const count = 1 + this.prng.nextInt(VOLUME_EXTENTS - first);
      return [first * EXTENT, count * EXTENT];
    }
    const offset = this.prng.nextInt(sizeBytes - 1);
    return [offset, 1 + this.prng.nextInt(Math.min(sizeBytes - offset, 2 * EXTENT))];
  }

  async step(): Promise<string> {
    const volumeIds = [...this.model.keys()];
    const volumeId = this.pick(volumeIds);
    if (volumeId === undefined) {
      return 'nothing to do';
    }
    const entry = this.model.get(volumeId);
    if (entry === undefined) return 'gone';
    const choice = this.prng.nextInt(100);
    if (choice < 40) {
      const [offset, lengthBytes] = this.range(entry.content.length);
      const data = pattern(lengthBytes, (this.#seed += 1));
      await (await this.volume(volumeId)).write(offset, data);
      data.copy(entry.content, offset);
      return `write ${volumeId} ${offset}+${lengthBytes}`;
    }
    if (choice < 50) {
      const [offset, lengthBytes] = this.range(entry.content.length);
      const store = await this.volume(volumeId);
      const kind = this.prng.nextInt(3);
      if (kind === 0) await store.trim(offset, lengthBytes);
      else await store.writeZeroes(offset, lengthBytes, { noHole: kind === 2 });
      entry.content.fill(0, offset, offset + lengthBytes);
      return `zero(${kind}) ${volumeId} ${offset}+${lengthBytes}`;
    }
    if (choice < 65 && entry.snapshots.size < MAX_SNAPSHOTS_PER_VOLUME) {
      const snapshotId = `s${(this.#nextId += 1)}`;
      await this.pool.createSnapshot(volumeId, snapshotId);
      entry.snapshots.set(snapshotId, Buffer.from(entry.content));
      return `snapshot ${volumeId}@${snapshotId}`;
    }
    const snapshotId = this.pick([...entry.snapshots.keys()]);
    if (choice < 73 && snapshotId !== undefined) {
      await this.pool.deleteSnapshot(volumeId, snapshotId);
      entry.snapshots.delete(snapshotId);
      return `delete snapshot ${volumeId}@${snapshotId}`;
    }
    if (choice < 81 && snapshotId !== undefined && this.model.size < MAX_VOLUMES) {
      const cloneId = `c${(this.#nextId += 1)}`;
      const source = entry.snapshots.get(snapshotId) ?? Buffer.alloc(0);
      const grow = this.prng.nextInt(2) === 0 ? 0 : EXTENT;
      await this.pool.cloneVolume(volumeId, snapshotId, cloneId, source.length + grow);
      this.model.set(cloneId, { content: Buffer.concat([source, Buffer.alloc(grow)]), snapshots: new Map() });
      return `clone ${volumeId}@${snapshotId} -> ${cloneId}`;
    }
    if (choice < 88 && snapshotId !== undefined) {
      await this.closeVolume(volumeId);
      await this.pool.revertVolume(volumeId, snapshotId);
      const source = entry.snapshots.get(snapshotId) ?? Buffer.alloc(0);
      entry.content = Buffer.concat([source, Buffer.alloc(entry.content.length - source.length)]);
      return `revert ${volumeId} to ${snapshotId}`;
    }
    if (choice < 93 && this.model.size > 1) {
      await this.closeVolume(volumeId);
      await this.pool.deleteVolume(volumeId);
      this.model.delete(volumeId);
      return `delete volume ${volumeId}`;
    }
    if (this.harness.reopen !== null) {
      this.open.clear();
      this.harness.pool = await this.harness.reopen();
      return 'reopen';
    }
    await (await this.volume(volumeId)).flush();
    return `flush ${volumeId}`;
  }

  /** Every volume and snapshot reads its model; changedExtents covers every difference; the space adds up. */
  async check(label: string): Promise<boolean> {
    for (const [volumeId, entry] of this.model) {
      const store = await this.volume(volumeId);
      const actual = Buffer.alloc(entry.content.length);
      await store.read(0, actual);
      if (!actual.equals(entry.content)) return this.t.fail(`${label}: volume ${volumeId} differs from the model`);
      for (const [snapshotId, expected] of entry.snapshots) {
        const device = await this.pool.openSnapshot(volumeId, snapshotId);
        const bytes = Buffer.alloc(expected.length);
        await device.read(0, bytes);
        await device.close();
        if (!bytes.equals(expected)) return this.t.fail(`${label}: snapshot ${volumeId}@${snapshotId} differs from the model`);
      }
      if (!this.#checkChangedExtents(volumeId, entry, label)) return false;
      for (const info of this.pool.listSnapshots(volumeId)) {
        const allocated = [...this.pool.snapshotExtents(volumeId, info.snapshotId)].length * EXTENT;
        if (info.exclusiveBytes + info.sharedBytes !== allocated) return this.t.fail(`${label}: ${volumeId}@${info.snapshotId} space does not add up`);
      }
    }
    return true;
  }

  #checkChangedExtents(volumeId: string, entry: ModelVolume, label: string): boolean {
    const ids = [...entry.snapshots.keys()];
    const [fromId, toId] = [ids[0], ids[ids.length - 1]];
    if (fromId === undefined || toId === undefined) return true;
    const from = entry.snapshots.get(fromId) ?? Buffer.alloc(0);
    const to = entry.snapshots.get(toId) ?? Buffer.alloc(0);
    const changed = new Set(this.pool.changedExtents(volumeId, fromId, toId));
    const mapped = new Set([...this.pool.snapshotExtents(volumeId, fromId), ...this.pool.snapshotExtents(volumeId, toId)]);
    for (let extent = 0; extent < VOLUME_EXTENTS; extent += 1) {
      const start = extent * EXTENT;
      const differs = !from.subarray(start, start + EXTENT).equals(to.subarray(start, start + EXTENT));
      if (differs && !changed.has(extent)) return this.t.fail(`${label}: ${volumeId} extent ${extent} changed between ${fromId} and ${toId} but is not listed`);
      if (changed.has(extent) && !mapped.has(extent)) return this.t.fail(`${label}: ${volumeId} extent ${extent} listed but mapped in neither snapshot`);
    }
    return true;
  }
}

async function runModel(t: Test, harness: Harness, seed: number): Promise<void> {
  const run = new ModelRun(t, harness, new SeededPrng(seed));
  run.model.set('vol', { content: Buffer.alloc(VOLUME_BYTES), snapshots: new Map() });
  await run.volume('vol');
  const deadline = Date.now() + TIME_BUDGET_MS;
  const history: string[] = [];
  let operations = 0;
  for (; operations < OPERATIONS && Date.now() < deadline; operations += 1) {
    history.push(await run.step());
    if (operations % 10 === 9 && !(await run.check(`seed ${seed} after ${history.slice(-10).join('; ')}`))) return;
  }
  if (!(await run.check(`seed ${seed} at the end`))) return;
  // Deleting everything gives every extent back: the refcounts never leaked nor double-freed.
  for (const volumeId of [...run.model.keys()]) {
    for (const snapshotId of run.model.get(volumeId)?.snapshots.keys() ?? []) await run.pool.deleteSnapshot(volumeId, snapshotId);
    await run.closeVolume(volumeId);
    await run.pool.deleteVolume(volumeId);
  }
  t.equal(run.pool.stats().usedBytes, 0, `seed ${seed}: ${operations} operations, every extent freed at the end`);
}

async function diskHarness(t: Test): Promise<Harness> {
  const dir = await makeTempDir(t);
  const disks = [{ path: join(dir, 'disk0'), sizeBytes: 256 * EXTENT }];
  let db: TestDb = openTestDb(t, dir);
  let pool: DiskPool = await openTestPool(t, db, { disks });
  const harness: Harness = {
    pool,
    reopen: async () => {
      await pool.close();
      // After the closing flush: no free is pending any more.
      const used = pool.stats().usedBytes;
      await db.root.close();
      db = openTestDb(t, dir);
      pool = await openTestPool(t, db, { disks });
      t.equal(pool.stats().usedBytes, used, 'the reopened pool counts the same extents');
      return pool;
    },
  };
  return harness;
}

for (const seed of [1, 2, 3]) {
  t.test(`disk pool, seed ${seed}`, async (t) => runModel(t, await diskHarness(t), seed));
  t.test(`memory pool, seed ${seed}`, async (t) => runModel(t, { pool: new MemoryPool({ extentSizeBytes: EXTENT }), reopen: null }, seed));
}
