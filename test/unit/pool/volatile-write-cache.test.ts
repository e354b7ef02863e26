import t from 'tap';
import { SeededPrng } from '../../../common/prng.js';
import { type FileWrite, SECTOR_BYTES, VolatileWriteCache } from '../../../blockdev/pool/volatile-write-cache.js';

/**
 * The power-loss model (issue 7): reads see cached writes, sync hands back
 * everything, a cut keeps a seeded subset, torn only at sector boundaries,
 * and synced bytes survive every cut.
 */

const DISK_BYTES = 256 * 1024;

function apply(platter: Buffer, writes: readonly FileWrite[]): void {
  for (const { position, data } of writes) data.copy(platter, position);
}

/** A sector-sized block whose every byte says which write it came from. */
function tagged(lengthBytes: number, tag: number): Buffer {
  return Buffer.alloc(lengthBytes, (tag % 255) + 1);
}

t.test('reads see cached writes over the file, newest last; sync hands back all of them in order', async (t) => {
  const cache = new VolatileWriteCache({ maxCachedBytes: 1 << 20 });
  const file = Buffer.alloc(DISK_BYTES, 0x11);
  // Crosses the 64 KiB index buckets, overlaps, unaligned.
  cache.write([tagged(70_000, 1)], 70_000, 10);
  cache.write([tagged(100, 2), tagged(50, 3)], 150, 65_500);
  cache.write([tagged(10, 4)], 10, 69_995);
  const target = Buffer.from(file);
  cache.overlay(target, 0, DISK_BYTES, 0);
  const expected = Buffer.from(file);
  expected.fill(2, 10, 70_010).fill(3, 65_500, 65_600).fill(4, 65_600, 65_650).fill(5, 69_995, 70_005);
  t.same(target, expected, 'whole-disk read');
  const piece = Buffer.alloc(20);
  file.copy(piece, 0, 69_990, 70_010);
  cache.overlay(piece, 0, 20, 69_990);
  t.same(piece, expected.subarray(69_990, 70_010), 'a small read in the middle sees the same bytes');

  const synced = Buffer.from(file);
  apply(synced, cache.takeForSync());
  t.same(synced, expected, 'what sync writes is what reads saw');
  t.equal(cache.cachedBytes, 0);
  t.same(cache.powerCut(Math.random).writes, [], 'nothing left to lose after a sync');
});

t.test('a cut keeps synced data and gives, per sector, the synced bytes or one cached write', async (t) => {
  for (let seed = 1; seed <= 40; seed += 1) {
    const prng = new SeededPrng(seed);
    const cache = new VolatileWriteCache({ maxCachedBytes: 1 << 20 });
    const platter = Buffer.alloc(DISK_BYTES);
    const sectors = DISK_BYTES / SECTOR_BYTES;
    // Per sector: the tags it may hold after a cut (synced tag first).
    const allowed: Array<Set<number>> = Array.from({ length: sectors }, () => new Set([0]));
    let tag = 1;
    for (let step = 0; step < 60; step += 1) {
      if (prng.nextInt(8) === 0) {
        apply(platter, cache.takeForSync());
        for (let sector = 0; sector < sectors; sector += 1) allowed[sector] = new Set([platter[sector * SECTOR_BYTES] ?? -1]);
        continue;
      }
      const first = prng.nextInt(sectors - 16);
      const count = 1 + prng.nextInt(16);
      cache.write([tagged(count * SECTOR_BYTES, tag)], count * SECTOR_BYTES, first * SECTOR_BYTES);
      for (let sector = first; sector < first + count; sector += 1) allowed[sector]?.add((tag % 255) + 1);
      tag += 1;
    }
    const syncedState = Buffer.from(platter);
    const cutPrng = new SeededPrng(seed * 7);
    const outcome = cache.powerCut(() => cutPrng.nextFloat());
    apply(platter, outcome.writes);
    for (let sector = 0; sector < sectors; sector += 1) {
      const bytes = platter.subarray(sector * SECTOR_BYTES, (sector + 1) * SECTOR_BYTES);
      const first = bytes[0] ?? -1;
      if (!bytes.every((byte) => byte === first)) t.fail(`seed ${seed}: sector ${sector} mixes two writes`);
      if (!(allowed[sector]?.has(first) ?? false)) t.fail(`seed ${seed}: sector ${sector} holds ${first}, never written there since the sync`);
      if (allowed[sector]?.size === 1 && !bytes.equals(syncedState.subarray(sector * SECTOR_BYTES, (sector + 1) * SECTOR_BYTES))) {
        t.fail(`seed ${seed}: synced sector ${sector} changed`);
      }
    }
  }
  t.pass('40 seeds: synced sectors intact, every sector one whole version');
});

t.test('torn writes: some sectors new, some old, each sector whole; the same seed gives the same cut', async (t) => {
  const cut = (seed: number): { platter: Buffer; torn: number } => {
    const cache = new VolatileWriteCache({ maxCachedBytes: 1 << 20, odds: { landed: 0, torn: 1 } });
    cache.write([tagged(64 * SECTOR_BYTES, 9)], 64 * SECTOR_BYTES, 3 * SECTOR_BYTES);
    const prng = new SeededPrng(seed);
    const platter = Buffer.alloc(80 * SECTOR_BYTES);
    const outcome = cache.powerCut(() => prng.nextFloat());
    apply(platter, outcome.writes);
    return { platter, torn: outcome.torn };
  };
  const first = cut(5);
  t.equal(first.torn, 1);
  const newSectors = Array.from({ length: 64 }, (_, index) => first.platter[(3 + index) * SECTOR_BYTES]).filter((byte) => byte === 10).length;
  t.ok(newSectors > 0 && newSectors < 64, `a torn write landed partly (${newSectors} of 64 sectors)`);
  t.same(cut(5).platter, first.platter, 'deterministic for a seed');
  t.notSame(cut(6).platter, first.platter, 'another seed tears differently');

  // An unaligned write tears at the disk's sector boundaries, not the write's.
  const cache = new VolatileWriteCache({ maxCachedBytes: 1 << 20, odds: { landed: 0, torn: 1 } });
  cache.write([tagged(3 * SECTOR_BYTES, 1)], 3 * SECTOR_BYTES, 100);
  const outcome = cache.powerCut(() => 0.25);
  t.same(outcome.writes.map(({ position, data }) => [position, data.length]), [[100, 3 * SECTOR_BYTES]], 'every piece landed');
  const none = new VolatileWriteCache({ maxCachedBytes: 1 << 20, odds: { landed: 0, torn: 1 } });
  none.write([tagged(3 * SECTOR_BYTES, 1)], 3 * SECTOR_BYTES, 100);
  let call = 0;
  const pieces = none.powerCut(() => [0.5, 0.1, 0.9, 0.1, 0.9][call++] ?? 0.9).writes;
  t.same(pieces.map(({ position, data }) => [position, data.length]), [[100, 412], [1024, 512]], 'sectors 0 and 2 of the disk landed, 1 and 3 did not');
});

t.test('bounded: past maxCachedBytes the oldest writes are written back, and reads stay right', async (t) => {
  const cache = new VolatileWriteCache({ maxCachedBytes: 4096 });
  t.same(cache.write([tagged(2048, 1)], 2048, 0), []);
  t.same(cache.write([tagged(2048, 2)], 2048, 1024), []);
  const back = cache.write([tagged(1024, 3)], 1024, 8192);
  t.same(back.map(({ position, data }) => [position, data.length]), [[0, 2048]], 'the oldest write went to the file');
  t.equal(cache.cachedBytes, 3072);
  const file = Buffer.alloc(16384);
  apply(file, back);
  cache.overlay(file, 0, file.length, 0);
  t.equal(file[0], 2, 'written back');
  t.equal(file[1024], 3, 'the newer cached write over it');
  t.equal(file[8192], 4);
  t.throws(() => new VolatileWriteCache({ maxCachedBytes: 0 }), { code: 'INVALID_ARGUMENT' });
});
