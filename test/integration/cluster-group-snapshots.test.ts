/**
 * Issue 8 "Show it": group snapshot consistency. Two volumes attached to two
 * different nodes are written in lock-step (sequence k to the data volume,
 * then k to the WAL volume, each acknowledged before the next); group
 * snapshots taken through a third node must each show a consistent cut:
 * data's sequence equals WAL's, or is one ahead (k written to data, not yet
 * to WAL), never behind and never further ahead.
 */
import t from 'tap';
import type { DaemonProcess } from '../helpers/daemon-harness.js';
import { runClient, startCluster, writeClient } from './fixtures/replication-cluster.js';

const LOCKSTEP_PY = String.raw`import json, struct, sys, time
import nbd

BLOCK = 4096

def connect(uri):
    h = nbd.NBD()
    h.connect_uri(uri)
    return h

def lockstep(data_uri, wal_uri, seconds):
    data, wal = connect(data_uri), connect(wal_uri)
    seq = 0
    end = time.time() + float(seconds)
    while time.time() < end:
        seq += 1
        record = struct.pack(">Q", seq) * (BLOCK // 8)
        data.pwrite(record, 0)
        wal.pwrite(record, 0)
    data.flush()
    wal.flush()
    print(json.dumps({"last": seq}), flush=True)
    data.shutdown()
    wal.shutdown()

def seq(uri):
    h = connect(uri)
    block = h.pread(BLOCK, 0)
    values = set(struct.unpack(">%dQ" % (BLOCK // 8), block))
    print(json.dumps({"seq": values.pop() if len(values) == 1 else -1, "torn": len(values) > 0}), flush=True)
    h.shutdown()

if __name__ == "__main__":
    {"lockstep": lockstep, "seq": seq}[sys.argv[1]](*sys.argv[2:])
`;

interface GroupJson {
  readonly groupId: string;
  readonly snapshots: ReadonlyArray<{ readonly volume: string; readonly name: string; readonly holders: readonly string[] }>;
}

t.test('group snapshots of two volumes written in lock-step show matching sequence numbers', { timeout: 120_000 }, async (t) => {
  const [n1, n2, n3] = await startCluster(t, { dataDirPrefix: 'plinth-snapgrp-', logLevel: process.env['PLINTH_TEST_LOG_LEVEL'] ?? 'warn' });
  t.teardown(() => {
    if (process.env['PLINTH_TEST_LOG_LEVEL'] !== undefined) for (const member of [n1, n2, n3]) console.error(member.describeOutput());
  });
  const client = await writeClient(t, LOCKSTEP_PY);
  const py = async (args: string[]): Promise<Record<string, unknown>> => {
    const last = (await runClient(client, args, 60_000)).at(-1);
    if (last === undefined) throw new Error(`no output from ${args.join(' ')}`);
    return last;
  };
  for (const name of ['gdata', 'gwal']) {
    // Three replicas: every node holds one, so no data-locality move changes the sets while the writer runs.
    const created = await n3.api('POST', '/v1/volumes', { name, size: '16MiB', replicas: 3 });
    t.equal(created.status, 201, JSON.stringify(created.body));
  }
  // Owners on two different nodes; the group is taken through the third, which must pause both remotely.
  const writer = py(['lockstep', n1.nbdUri('gdata'), n2.nbdUri('gwal'), '8']);
  const ownersOf = async (via: DaemonProcess): Promise<(string | null)[]> =>
    Promise.all(['gdata', 'gwal'].map(async (name) => ((await via.api('GET', `/v1/volumes/${name}`)).body as { attachedTo: string | null }).attachedTo));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.same(await ownersOf(n3), ['n1', 'n2'], 'each volume served by its own node');
  const groups: GroupJson[] = [];
  for (const name of ['g1', 'g2', 'g3']) {
    const taken = await n3.api('POST', '/v1/snapshot-groups', { name, volumes: ['gdata', 'gwal'] }, { timeoutMs: 30_000 });
    t.equal(taken.status, 201, JSON.stringify(taken.body));
    groups.push(taken.body as GroupJson);
    await new Promise((resolve) => setTimeout(resolve, 1500));
  }
  const written = await writer;
  t.ok(Number(written['last']) > 10, `the writer kept going (${String(written['last'])} steps)`);
  for (const group of groups) {
    const name = group.snapshots[0]?.name ?? '?';
    t.same(group.snapshots.map((snapshot) => snapshot.volume).sort(), ['gdata', 'gwal']);
    const listed = (await n1.api('GET', '/v1/volumes/gwal/snapshots')).body as { snapshots: Array<{ name: string; groupId?: string }> };
    t.equal(listed.snapshots.find((snapshot) => snapshot.name === name)?.groupId, group.groupId, `${name}: one groupId for both volumes`);
    const data = await py(['seq', n3.nbdUri(`gdata@${name}`)]);
    const wal = await py(['seq', n3.nbdUri(`gwal@${name}`)]);
    const gap = Number(data['seq']) - Number(wal['seq']);
    t.ok(Number(wal['seq']) > 0 && (gap === 0 || gap === 1), `${name}: data at ${String(data['seq'])}, WAL at ${String(wal['seq'])} (a consistent cut)`);
    t.notOk(data['torn'] === true || wal['torn'] === true, `${name}: no torn record`);
  }
  const duplicate = await n3.api('POST', '/v1/snapshot-groups', { name: 'g1', volumes: ['gdata', 'gwal'] });
  t.equal(duplicate.status, 409, 'a name taken on one of the volumes');
  const missing = await n3.api('POST', '/v1/snapshot-groups', { name: 'g9', volumes: ['gdata', 'nope'] });
  t.equal(missing.status, 404);
});
