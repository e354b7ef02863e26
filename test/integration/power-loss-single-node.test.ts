/**
 * Issue 7, power loss on one node: plinthd runs with the power-loss disk
 * layer (PLINTH_TEST_DISK=power-loss:seed=N; un-synced writes live in memory)
 * and a `power-cut` failpoint (PLINTH_FAILPOINTS). A libnbd client writes
 * versioned 4 KiB blocks over a few extents, overwriting often, with a
 * FLUSH after every round, and prints each write before sending it and each
 * completed FLUSH. The failpoint applies a seeded, possibly torn subset of
 * the un-synced writes to the disk file and SIGKILLs the daemon. Restarted
 * on the same data dir (without the layer), the pool must open and every
 * 512-byte sector must read as the version a completed FLUSH covered, or as
 * one written after it (zeroes where nothing was flushed) — never garbage,
 * never a mix inside a sector, never an older version.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { makeTempDir } from '../helpers/daemon-harness.js';
import { createVolumeOn, DATA_DIR_PREFIX, runAckedClient, startFailpointMember } from './fixtures/failpoint-cluster.js';

const CLIENT_PY = String.raw`import json, random, struct, sys
import nbd

BLOCK = 4096
SECTOR = 512
STRIDE = 64 * 1024
SLOTS = 96

def content(offset, version):
    return b"".join(struct.pack("<QII", offset, version, sector) * (SECTOR // 16) for sector in range(BLOCK // SECTOR))

def workload(uri, seed, rounds, per_round):
    rng = random.Random(int(seed))
    h = nbd.NBD()
    h.connect_uri(uri)
    version = 0
    try:
        for round_index in range(int(rounds)):
            for _ in range(int(per_round)):
                offset = rng.randrange(SLOTS) * STRIDE
                version += 1
                print(json.dumps({"w": offset, "v": version}), flush=True)
                h.pwrite(content(offset, version), offset)
            h.flush()
            print(json.dumps({"flushed": round_index}), flush=True)
        print(json.dumps({"done": True}), flush=True)
    except nbd.Error as error:
        print(json.dumps({"error": str(error)}), flush=True)

def read(uri, path):
    h = nbd.NBD()
    h.connect_uri(uri)
    found = {}
    for offset in json.load(open(path)):
        data = h.pread(BLOCK, offset)
        versions = []
        for sector in range(BLOCK // SECTOR):
            piece = data[sector * SECTOR:(sector + 1) * SECTOR]
            if piece == bytes(SECTOR):
                versions.append(0)
                continue
            got_offset, version, got_sector = struct.unpack("<QII", piece[:16])
            whole = piece == piece[:16] * (SECTOR // 16)
            versions.append(version if whole and got_offset == offset and got_sector == sector else -1)
        found[str(offset)] = versions
    print(json.dumps({"blocks": found}), flush=True)
    h.shutdown()

if __name__ == "__main__":
    {"workload": workload, "read": read}[sys.argv[1]](*sys.argv[2:])
`;

const ROUNDS = 6;
const WRITES_PER_ROUND = 25;

/** Per block: the version the last completed FLUSH covered (0 = none) and every version sent since. */
interface BlockHistory {
  latest: number;
  flushed: number;
  since: Set<number>;
}

function replay(lines: ReadonlyArray<Record<string, unknown>>): { blocks: Map<number, BlockHistory>; flushes: number; error: string | undefined } {
  const blocks = new Map<number, BlockHistory>();
  let flushes = 0;
  let error: string | undefined;
  for (const line of lines) {
    if (typeof line.w === 'number' && typeof line.v === 'number') {
      const block = blocks.get(line.w) ?? { latest: 0, flushed: 0, since: new Set<number>() };
      block.latest = line.v;
      block.since.add(line.v);
      blocks.set(line.w, block);
    } else if (typeof line.flushed === 'number') {
      flushes += 1;
      for (const block of blocks.values()) {
        block.flushed = block.latest;
        block.since = new Set();
      }
    } else if (typeof line.error === 'string') {
      error = line.error;
    }
  }
  return { blocks, flushes, error };
}

interface Scenario {
  readonly seed: number;
  readonly failpoint: string;
  /** False where the cut comes right after a data sync: the cache is empty, only the map batch is missing. */
  readonly writesCached: boolean;
}

const SCENARIOS: readonly Scenario[] = [
  { seed: 1, failpoint: 'disk.sync=power-cut:skip=3', writesCached: true },
  { seed: 2, failpoint: 'pool.flush.after-data-sync=power-cut:skip=2', writesCached: false },
  { seed: 3, failpoint: 'disk.write=power-cut:skip=80', writesCached: true },
];

async function runScenario(t: Test, script: string, scenario: Scenario): Promise<void> {
  const env = { PLINTH_TEST_DISK: `power-loss:seed=${scenario.seed}`, PLINTH_FAILPOINTS: scenario.failpoint };
  const victim = await startFailpointMember(t, 'p1', { env });
  await createVolumeOn(t, victim, 'pl', '16MiB', 1);
  const lines = await runAckedClient(script, ['workload', victim.nbdUri('pl'), String(scenario.seed), String(ROUNDS), String(WRITES_PER_ROUND)], 30_000);
  const run = replay(lines);
  const exit = await victim.waitForExit({ timeoutMs: 10_000 });
  t.equal(exit.signal, 'SIGKILL', `the failpoint cut the power (${run.flushes} flushes completed, client: ${run.error ?? 'no error'})`);
  const cut = /power-loss disk .*: (\d+) writes landed, (\d+) torn, (\d+) lost/.exec(victim.stderr());
  t.ok(cut !== null, 'the layer applied a power cut before the kill');
  const [landed, torn, lost] = (cut?.slice(1) ?? []).map(Number);
  t.equal((landed ?? 0) + (torn ?? 0) + (lost ?? 0) > 0, scenario.writesCached, `un-synced writes at the cut: ${landed} landed, ${torn} torn, ${lost} lost`);

  const restarted = await startFailpointMember(t, 'p1', { restartOf: victim });
  const offsetsPath = join(await makeTempDir(t, `${DATA_DIR_PREFIX}pl-`), 'offsets.json');
  await writeFile(offsetsPath, JSON.stringify([...run.blocks.keys()]));
  const [result] = await runAckedClient(script, ['read', restarted.nbdUri('pl'), offsetsPath], 20_000);
  const found = (result?.blocks ?? {}) as Record<string, number[]>;
  const problems = checkBlocks(run.blocks, found);
  t.same(problems, [], `seed ${scenario.seed}: ${run.blocks.size} blocks, every sector its flushed version or one written since`);
  t.ok(run.flushes >= 1 && run.error !== undefined, 'the cut came after at least one completed flush, mid-workload');
  await restarted.kill();
}

function checkBlocks(blocks: ReadonlyMap<number, BlockHistory>, found: Readonly<Record<string, number[]>>): string[] {
  const problems: string[] = [];
  for (const [offset, history] of blocks) {
    const versions = found[String(offset)];
    if (versions === undefined) {
      problems.push(`block ${offset} was not read`);
      continue;
    }
    versions.forEach((version, sector) => {
      if (version !== history.flushed && !history.since.has(version)) {
        problems.push(`block ${offset} sector ${sector}: version ${version}; flushed ${history.flushed}, since [${[...history.since].join(',')}]`);
      }
    });
  }
  return problems.slice(0, 10);
}

t.test('power cuts on a single node: flushed data survives, the rest is old or new per sector', async (t) => {
  const dir = await makeTempDir(t, `${DATA_DIR_PREFIX}pl-client-`);
  const script = join(dir, 'power-cut-client.py');
  await writeFile(script, CLIENT_PY);
  for (const scenario of SCENARIOS) {
    await t.test(`${scenario.failpoint}, seed ${scenario.seed}`, (t) => runScenario(t, script, scenario));
  }
});
