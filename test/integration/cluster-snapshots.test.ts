/**
 * Issue 8 with three real daemons (docs/snapshots.md "In the cluster"): a
 * 2-replica volume, so one node holds no copy. A known pattern, a snapshot
 * taken while a writer keeps writing elsewhere in the volume, the pattern
 * overwritten, and `volume@snapshot` read back bit for bit over NBD on the
 * owner and on the node without a copy; then clone, space freed on delete,
 * revert, kill -9 of the owner, and deleting the source under the clone.
 */
import t from 'tap';
import type { Test } from 'tap';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, type DaemonProcess } from '../helpers/daemon-harness.js';
import { describeRun, missingToolsReason, run } from '../setup/e2e-process.js';
import { eventually, PYTHON, runClient, startCluster, writeClient } from './fixtures/replication-cluster.js';
import { PATTERN_CLIENT_PRELUDE_PY } from './fixtures/snapshot-rebuild-fixture.js';

const MiB = 1024 * 1024;
/** The pattern: the first 16 MiB in 64 KiB blocks; the churn writer stays in the upper half. */
const PATTERN_BLOCKS = 256;
const CHURN_START = 32 * MiB;

const SNAPSHOT_CLIENT_PY = PATTERN_CLIENT_PRELUDE_PY + String.raw`import errno, os, random, time

def pattern(uri, seed, count):
    h = connect(uri)
    for i in range(int(count)):
        h.pwrite(block(seed, i), i * BLOCK)
    h.flush()
    print(json.dumps({"written": int(count)}), flush=True)
    h.shutdown()

def verify(uri, seed, count):
    h = connect(uri)
    bad = [i for i in range(int(count)) if h.pread(BLOCK, i * BLOCK) != block(seed, i)]
    print(json.dumps({"badCount": len(bad), "bad": bad[:10], "readOnly": h.is_read_only(), "size": h.get_size()}), flush=True)
    h.shutdown()

def churn(uri, start, seconds):
    h = connect(uri)
    size = h.get_size()
    start = int(start)
    end = time.time() + float(seconds)
    writes = 0
    while time.time() < end:
        h.pwrite(os.urandom(4096), start + random.randrange((size - start) // 4096) * 4096)
        writes += 1
    h.flush()
    print(json.dumps({"writes": writes}), flush=True)
    h.shutdown()

def digest(uri):
    h = connect(uri)
    size = h.get_size()
    sha = hashlib.sha256()
    for offset in range(0, size, 1 << 20):
        sha.update(h.pread(min(1 << 20, size - offset), offset))
    print(json.dumps({"sha": sha.hexdigest(), "size": size}), flush=True)
    h.shutdown()

def trywrite(uri):
    h = connect(uri)
    read_only = h.is_read_only()
    # Not libnbd's own check: the server must refuse it (proto.md: EPERM on a read-only export).
    h.set_strict_mode(0)
    try:
        h.pwrite(b"x" * 4096, 0)
        error = None
    except nbd.Error as e:
        error = {"eperm": e.errno == errno.EPERM or "Operation not permitted" in e.string, "string": e.string}
    print(json.dumps({"readOnly": read_only, "error": error}), flush=True)
    h.shutdown()

def tryconnect(uri):
    try:
        h = connect(uri)
        print(json.dumps({"connected": True}), flush=True)
        h.shutdown()
    except nbd.Error as e:
        print(json.dumps({"connected": False, "string": e.string}), flush=True)

if __name__ == "__main__":
    {"pattern": pattern, "verify": verify, "churn": churn, "digest": digest, "trywrite": trywrite, "tryconnect": tryconnect}[sys.argv[1]](*sys.argv[2:])
`;

interface VolumeJson {
  readonly id: string;
  readonly generation: number;
  readonly attachedTo: string | null;
  readonly replicas: readonly { readonly nodeId: string; readonly state: string }[];
  readonly snapshots?: readonly string[];
  readonly clonedFrom?: { readonly volumeId: string; readonly snapshotId: string };
}

interface SnapshotJson {
  readonly id: string;
  readonly name: string;
  readonly holders: readonly string[];
  readonly sizeBytes: number;
  readonly space: { readonly measuredOn: string; readonly exclusiveBytes: number; readonly sharedBytes: number } | null;
}

async function volume(via: DaemonProcess, name: string): Promise<VolumeJson> {
  const response = await via.api('GET', `/v1/volumes/${name}`);
  if (response.status !== 200) throw new Error(`GET ${name}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body as VolumeJson;
}

async function usedBytesOf(node: DaemonProcess, id: string): Promise<number> {
  const { nodes } = (await node.api('GET', '/v1/nodes')).body as { nodes: Array<{ id: string; usedBytes: number }> };
  const found = nodes.find((candidate) => candidate.id === id);
  if (found === undefined) throw new Error(`node ${id} missing`);
  return found.usedBytes;
}

function errorCode(body: unknown): string | undefined {
  return (body as { error?: { code?: string } }).error?.code;
}

t.test('snapshots across the cluster: exports, clone, delete, revert, owner loss', { timeout: 240_000 }, async (t) => {
  const members = await startCluster(t, { dataDirPrefix: 'plinth-snapclu-' });
  const byId = new Map(members.map((member, index) => [`n${index + 1}`, member]));
  const node = (id: string): DaemonProcess => {
    const found = byId.get(id);
    if (found === undefined) throw new Error(`no member ${id}`);
    return found;
  };
  const client = await writeClient(t, SNAPSHOT_CLIENT_PY);
  const py = async (args: string[], timeoutMs = 60_000): Promise<Record<string, unknown>> => {
    const lines = await runClient(client, args, timeoutMs);
    const last = lines.at(-1);
    if (last === undefined) throw new Error(`${PYTHON} ${args.join(' ')}: no output`);
    return last;
  };
  const [n1] = members;
  const created = await n1.api('POST', '/v1/volumes', { name: 'snapvol', size: '64MiB', replicas: 2 });
  t.equal(created.status, 201, JSON.stringify(created.body));
  const placed = (created.body as VolumeJson).replicas.map((replica) => replica.nodeId);
  const [ownerId, otherId] = placed;
  const outsiderId = ['n1', 'n2', 'n3'].find((id) => !placed.includes(id));
  if (ownerId === undefined || otherId === undefined || outsiderId === undefined) throw new Error(`unexpected placement ${placed.join(',')}`);
  const owner = node(ownerId);
  const other = node(otherId);
  const outsider = node(outsiderId);
  t.comment(`replicas on ${ownerId} (owner) and ${otherId}; ${outsiderId} holds none`);

  await t.test('a snapshot taken under writes reads bit for bit on the owner and on a node without a copy', async (t) => {
    t.same(await py(['pattern', owner.nbdUri('snapvol'), 'A', String(PATTERN_BLOCKS)]), { written: PATTERN_BLOCKS });
    const churn = py(['churn', owner.nbdUri('snapvol'), String(CHURN_START), '6']);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const taken = await owner.api('POST', '/v1/volumes/snapvol/snapshots', { name: 's1' }, { timeoutMs: 30_000 });
    t.equal(taken.status, 201, JSON.stringify(taken.body));
    const snapshot = taken.body as SnapshotJson;
    t.same([...snapshot.holders].sort(), [...placed].sort(), 'held by both in-sync replicas');
    t.equal(snapshot.sizeBytes, 64 * MiB);
    // Overwrite the pattern while the writer still runs: the snapshot must not change.
    t.same(await py(['pattern', owner.nbdUri('snapvol'), 'B', String(PATTERN_BLOCKS)]), { written: PATTERN_BLOCKS });
    const churned = await churn;
    t.ok(Number(churned['writes']) > 0, `the writer kept writing (${String(churned['writes'])} writes)`);
    for (const [where, via] of [['owner', owner], ['non-holder', outsider]] as const) {
      const read = await py(['verify', via.nbdUri('snapvol@s1'), 'A', String(PATTERN_BLOCKS)]);
      t.match(read, { badCount: 0, readOnly: true, size: 64 * MiB }, `snapvol@s1 on the ${where} reads pattern A`);
    }
    t.match(await py(['verify', owner.nbdUri('snapvol'), 'B', String(PATTERN_BLOCKS)]), { badCount: 0, readOnly: false }, 'the volume reads pattern B');
    // Each holder serves its own copy: identical everywhere, churned half included (the owner paused and drained).
    const ownerCopy = await py(['digest', owner.nbdUri('snapvol@s1')]);
    const otherCopy = await py(['digest', other.nbdUri('snapvol@s1')]);
    t.equal(otherCopy['sha'], ownerCopy['sha'], 'both holders\' copies of s1 are identical, bit for bit');
    t.equal((await volume(outsider, 'snapvol')).attachedTo, ownerId, 'reading the snapshot did not move the volume');
  });

  await t.test('refusals: read-only export, unknown and duplicate snapshots, revert while attached', async (t) => {
    const write = await py(['trywrite', outsider.nbdUri('snapvol@s1')]);
    t.match(write, { readOnly: true, error: { eperm: true } }, `a write to volume@snapshot gets EPERM: ${JSON.stringify(write)}`);
    t.match(await py(['tryconnect', outsider.nbdUri('snapvol@nope')]), { connected: false }, 'unknown snapshot export');
    const unknown = await outsider.api('GET', '/v1/volumes/snapvol/snapshots/nope');
    t.equal(unknown.status, 404);
    t.equal(errorCode(unknown.body), 'SNAPSHOT_NOT_FOUND');
    const duplicate = await owner.api('POST', '/v1/volumes/snapvol/snapshots', { name: 's1' });
    t.equal(duplicate.status, 409);
    t.equal(errorCode(duplicate.body), 'SNAPSHOT_EXISTS');
    const badName = await owner.api('POST', '/v1/volumes/snapvol/snapshots', { name: 'a@b' });
    t.equal(badName.status, 400);
    const revert = await outsider.api('POST', '/v1/volumes/snapvol/snapshots/s1/revert');
    t.equal(revert.status, 409);
    t.equal(errorCode(revert.body), 'VOLUME_ATTACHED');
    t.match((revert.body as { error: { message: string } }).error.message, ownerId, 'the refusal names the owner');
  });

  await t.test('iSCSI: the snapshot as a write-protected target (IQN …:volume.snap.snapshot)', { skip: missingToolsReason(['qemu-img', 'qemu-io']) ?? false }, async (t) => {
    const url = outsider.iscsiUri('snapvol.snap.s1');
    const dir = await makeTempDir(t, 'plinth-snapclu-iscsi-');
    const copy = join(dir, 's1.raw');
    const read = await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', url, copy], { timeoutMs: 60_000 });
    t.equal(read.code, 0, `qemu-img read the snapshot over iSCSI: ${describeRun(read)}`);
    const viaNbd = await py(['digest', outsider.nbdUri('snapvol@s1')]);
    t.equal(createHash('sha256').update(await readFile(copy)).digest('hex'), viaNbd['sha'], 'the same bytes as over NBD');
    const write = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x55 0 4096', url], { timeoutMs: 30_000 });
    t.ok(write.code !== 0 || /denied|protect|not permitted|read-only|error/i.test(write.stdout + write.stderr), `a write is refused: ${describeRun(write)}`);
    t.match(await py(['verify', outsider.nbdUri('snapvol@s1'), 'A', String(PATTERN_BLOCKS)]), { badCount: 0 }, 'and changed nothing');
  });

  await t.test('list: holders and space measured by a holder', async (t) => {
    const listed = await owner.api('GET', '/v1/volumes/snapvol/snapshots');
    t.equal(listed.status, 200);
    const [s1] = (listed.body as { snapshots: SnapshotJson[] }).snapshots;
    t.equal(s1?.name, 's1');
    t.equal(s1?.space?.measuredOn, ownerId);
    t.ok((s1?.space?.exclusiveBytes ?? 0) >= 8 * MiB, `pattern A is the snapshot's alone now (${s1?.space?.exclusiveBytes ?? 0} bytes)`);
    const fromOutsider = (await outsider.api('GET', '/v1/volumes/snapvol/snapshots')).body as { snapshots: SnapshotJson[] };
    t.equal(fromOutsider.snapshots[0]?.space, null, 'a node without a copy does not make numbers up');
    t.same((await volume(outsider, 'snapvol')).snapshots, ['s1'], 'volume inspect shows its snapshots');
  });

  await t.test('clone: writable, on the holders, independent of the snapshot', async (t) => {
    const cloned = await outsider.api('POST', '/v1/volumes/snapvol/snapshots/s1/clone', { name: 'snapclone' }, { timeoutMs: 30_000 });
    t.equal(cloned.status, 201, JSON.stringify(cloned.body));
    const clone = cloned.body as VolumeJson;
    t.same(clone.replicas.map((replica) => replica.nodeId).sort(), [...placed].sort());
    t.ok(clone.clonedFrom !== undefined, 'remembers its origin');
    t.match(await py(['verify', other.nbdUri('snapclone'), 'A', String(PATTERN_BLOCKS)]), { badCount: 0, readOnly: false }, 'the clone starts as the snapshot');
    t.same(await py(['pattern', other.nbdUri('snapclone'), 'C', String(PATTERN_BLOCKS)]), { written: PATTERN_BLOCKS });
    t.match(await py(['verify', outsider.nbdUri('snapvol@s1'), 'A', String(PATTERN_BLOCKS)]), { badCount: 0 }, 'writing the clone leaves the snapshot alone');
  });

  await t.test('deleting a snapshot frees its space on every holder', async (t) => {
    const taken = await outsider.api('POST', '/v1/volumes/snapvol/snapshots', { name: 's2' }, { timeoutMs: 30_000 });
    t.equal(taken.status, 201, `taken through a node that is not the owner: ${JSON.stringify(taken.body)}`);
    // Pattern D over B: the B extents now belong to s2 alone.
    t.same(await py(['pattern', owner.nbdUri('snapvol'), 'D', String(PATTERN_BLOCKS)]), { written: PATTERN_BLOCKS });
    const before = new Map([[ownerId, await usedBytesOf(owner, ownerId)], [otherId, await usedBytesOf(other, otherId)]]);
    const removed = await outsider.api('DELETE', '/v1/volumes/snapvol/snapshots/s2');
    t.equal(removed.status, 204);
    for (const [id, via] of [[ownerId, owner], [otherId, other]] as const) {
      const usedBefore = before.get(id) ?? 0;
      const usedAfter = await eventually(`space freed on ${id}`, 15_000, async () => {
        const used = await usedBytesOf(via, id);
        return usedBefore - used >= 8 * MiB ? used : undefined;
      });
      t.ok(usedAfter < usedBefore, `${id}: ${usedBefore} → ${usedAfter} bytes used`);
    }
    t.same((await volume(owner, 'snapvol')).snapshots, ['s1']);
  });

  await t.test('revert a detached volume, then lose its owner: the snapshot still reads', async (t) => {
    const detached = await owner.api('POST', '/v1/volumes/snapvol/detach', { force: true });
    t.equal(detached.status, 200, JSON.stringify(detached.body));
    const generation = (await volume(owner, 'snapvol')).generation;
    const reverted = await outsider.api('POST', '/v1/volumes/snapvol/snapshots/s1/revert', undefined, { timeoutMs: 30_000 });
    t.equal(reverted.status, 200, JSON.stringify(reverted.body));
    t.ok((reverted.body as VolumeJson).generation > generation, 'a new generation');
    t.match(await py(['verify', owner.nbdUri('snapvol'), 'A', String(PATTERN_BLOCKS)]), { badCount: 0 }, 'the volume reads the snapshot again');

    await owner.kill();
    await eventually(`${ownerId} down`, 20_000, async () => {
      const { nodes } = (await outsider.api('GET', '/v1/nodes')).body as { nodes: Array<{ id: string; state: string }> };
      return nodes.find((candidate) => candidate.id === ownerId)?.state === 'down' ? true : undefined;
    });
    t.match(await py(['verify', outsider.nbdUri('snapvol@s1'), 'A', String(PATTERN_BLOCKS)]), { badCount: 0 }, 'read from the surviving holder');
    const readOnSurvivor = await eventually('the volume attached on the survivor', 30_000, async () => {
      const result = await py(['verify', other.nbdUri('snapvol'), 'A', String(PATTERN_BLOCKS)]);
      return result['badCount'] === 0 ? result : undefined;
    }, 1000);
    t.match(readOnSurvivor, { badCount: 0 }, 'failed over to the survivor, still the snapshot\'s content');
  });

  await t.test('the clone outlives its source volume', async (t) => {
    t.equal((await other.api('POST', '/v1/volumes/snapvol/detach', { force: true })).status, 200);
    const removed = await other.api('DELETE', '/v1/volumes/snapvol');
    t.equal(removed.status, 204, JSON.stringify(removed.body));
    if (removed.status !== 204) t.comment(other.describeOutput());
    const read = await eventually('the clone readable from the survivor', 30_000, async () => {
      const result = await py(['verify', other.nbdUri('snapclone'), 'C', String(PATTERN_BLOCKS)]);
      return result['badCount'] === 0 ? result : undefined;
    }, 1000);
    t.match(read, { badCount: 0 });
  });
});

export type { Test };
