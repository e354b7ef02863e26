import t, { type Test } from 'tap';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { findVolume } from '../../../daemon/state/cluster-state.js';
import { EXTENT_BYTES, MemoryCluster } from './helpers/memory-cluster.js';

/**
 * GET …/send → POST …/receive between two in-process clusters (real state
 * machine, real services and routes, memory pools): full and incremental
 * copies equal the snapshots; a corrupt stream leaves no volume (full) or
 * the base unchanged (incremental); a truncated one resumes from GET
 * …/receive's chunk; schedules round-trip.
 */

const SIZE = 16 * EXTENT_BYTES;
const OCTET = { 'content-type': 'application/octet-stream' };

function fill(seed: number, length: number): Buffer {
  const data = Buffer.alloc(length);
  for (let i = 0; i < length; i++) data[i] = (i * 13 + seed * 101 + (i >> 8)) & 0xff;
  return data;
}

async function write(cluster: MemoryCluster, name: string, offset: number, data: Buffer): Promise<void> {
  const volume = cluster.volume(name);
  const store = await cluster.pool.openVolume(volume.id, volume.sizeBytes);
  await store.write(offset, data);
  await store.close();
}

async function snapshotContent(cluster: MemoryCluster, name: string, snapshot: string): Promise<Buffer> {
  const volume = cluster.volume(name);
  const record = (volume.snapshots ?? []).find((candidate) => candidate.name === snapshot);
  if (record === undefined) throw new Error(`no snapshot ${snapshot}`);
  const device = await cluster.pool.openSnapshot(volume.id, record.id);
  const data = Buffer.alloc(device.sizeBytes);
  await device.read(0, data);
  return data;
}

async function sendBytes(app: FastifyInstance, url: string): Promise<Buffer> {
  const response = await app.inject({ method: 'GET', url });
  if (response.statusCode !== 200) throw new Error(`send ${url}: ${response.statusCode} ${response.body}`);
  return response.rawPayload;
}

function receive(app: FastifyInstance, name: string, payload: Buffer, query = ''): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: `/v1/volumes/${name}/receive${query}`, headers: OCTET, payload });
}

async function setup(t: Test): Promise<{ a: MemoryCluster; b: MemoryCluster; appA: FastifyInstance; appB: FastifyInstance }> {
  const a = new MemoryCluster('cluster-a');
  const b = new MemoryCluster('cluster-b');
  a.createVolume('db', SIZE);
  await write(a, 'db', 0, fill(1, 3 * EXTENT_BYTES));
  await write(a, 'db', 9 * EXTENT_BYTES + 100, fill(2, 2 * EXTENT_BYTES));
  await a.createSnapshot('db', 's1');
  await write(a, 'db', EXTENT_BYTES + 7, fill(3, 5000));
  await write(a, 'db', 14 * EXTENT_BYTES, fill(4, EXTENT_BYTES));
  await a.createSnapshot('db', 's2');
  const appA = await a.buildApp();
  const appB = await b.buildApp({ checkpointEveryBytes: 2 * EXTENT_BYTES });
  t.teardown(async () => {
    await appA.close();
    await appB.close();
  });
  return { a, b, appA, appB };
}

t.test('full, then incremental: the copy equals each snapshot and carries its name', async (t) => {
  const { a, b, appA, appB } = await setup(t);
  const full = await sendBytes(appA, '/v1/volumes/db/snapshots/s1/send');
  const first = await receive(appB, 'copy', full);
  t.equal(first.statusCode, 201, first.body);
  t.match(first.json(), { volume: 'copy', snapshot: 's1', base: null });
  t.ok((await b.content('copy')).equals(await snapshotContent(a, 'db', 's1')), 'copy = db@s1');
  t.same(b.volume('copy').snapshots?.map((snapshot) => snapshot.name), ['s1']);
  t.equal(b.volume('copy').receive, undefined, 'visible');

  const incremental = await sendBytes(appA, '/v1/volumes/db/snapshots/s2/send?base=s1');
  t.ok(incremental.length < full.length, 'the incremental stream is smaller');
  await write(b, 'copy', 0, fill(9, 512)); // a local change since s1: discarded by the receive (reverted to its base)
  const second = await receive(appB, 'copy', incremental);
  t.equal(second.statusCode, 201, second.body);
  t.ok((await b.content('copy')).equals(await snapshotContent(a, 'db', 's2')), 'copy = db@s2');
  t.same(b.volume('copy').snapshots?.map((snapshot) => snapshot.name), ['s1', 's2']);

  const again = await receive(appB, 'copy', full);
  t.equal(again.statusCode, 409, 'a full stream into an existing volume');
  t.match(again.json(), { error: { code: 'VOLUME_EXISTS' } });
  const noBase = await receive(appB, 'other', incremental);
  t.match(noBase.json(), { error: { code: 'VOLUME_NOT_FOUND' } }, 'an incremental needs its volume');
});

t.test('a corrupt stream is refused: no volume after a full one, the base intact after an incremental', async (t) => {
  const { a, b, appA, appB } = await setup(t);
  const full = await sendBytes(appA, '/v1/volumes/db/snapshots/s1/send');
  const bad = Buffer.from(full);
  const at = Math.floor(full.length * 0.7);
  bad[at] = (bad[at] ?? 0) ^ 0x01;
  const refused = await receive(appB, 'copy', bad);
  t.match(refused.json(), { error: { code: 'STREAM_CHECKSUM_MISMATCH' } });
  t.equal(findVolume(b.state, 'copy'), undefined, 'no volume left behind');

  t.equal((await receive(appB, 'copy', full)).statusCode, 201);
  const incremental = await sendBytes(appA, '/v1/volumes/db/snapshots/s2/send?base=s1');
  const badIncremental = Buffer.from(incremental);
  badIncremental[badIncremental.length - 40] = (badIncremental[badIncremental.length - 40] ?? 0) ^ 0xff;
  const refusedIncremental = await receive(appB, 'copy', badIncremental);
  t.match(refusedIncremental.json(), { error: { code: /^STREAM_/ } });
  t.equal(b.volume('copy').receive, undefined, 'no receive left');
  t.ok((await b.content('copy')).equals(await snapshotContent(a, 'db', 's1')), 'still equal to its base s1');
  t.same(b.volume('copy').snapshots?.map((snapshot) => snapshot.name), ['s1']);
});

t.test('a truncated transfer stays hidden and resumes with --from-chunk from GET …/receive', async (t) => {
  const { a, b, appA, appB } = await setup(t);
  const full = await sendBytes(appA, '/v1/volumes/db/snapshots/s2/send');
  const cut = await receive(appB, 'copy', full.subarray(0, Math.floor(full.length * 0.6)));
  t.match(cut.json(), { error: { code: 'STREAM_TRUNCATED', details: { resumable: true } } });
  const status = (await appB.inject({ method: 'GET', url: '/v1/volumes/copy/receive' })).json() as { receiving: boolean; nextChunk: number; totalChunkCount: number };
  t.match(status, { receiving: true, snapshot: 's2' });
  t.ok(status.nextChunk > 0 && status.nextChunk < status.totalChunkCount, `resume at chunk ${status.nextChunk} of ${status.totalChunkCount}`);
  t.notOk(b.volume('copy').receive === undefined, 'still hidden (receiving)');

  const wrong = await receive(appB, 'copy', full, '?resume=true');
  t.match(wrong.json(), { error: { code: 'STREAM_OUT_OF_ORDER' } }, 'a stream from chunk 0 does not resume');
  const rest = await sendBytes(appA, `/v1/volumes/db/snapshots/s2/send?fromChunk=${status.nextChunk}`);
  const resumed = await receive(appB, 'copy', rest, '?resume=true');
  t.equal(resumed.statusCode, 201, resumed.body);
  t.ok((await b.content('copy')).equals(await snapshotContent(a, 'db', 's2')), 'copy = db@s2 after the resume');
  t.equal((await appB.inject({ method: 'GET', url: '/v1/volumes/copy/receive' })).json().receiving, false);
});

t.test('abort gives up a hidden receive; send errors and schedules', async (t) => {
  const { b, appA, appB } = await setup(t);
  const full = await sendBytes(appA, '/v1/volumes/db/snapshots/s1/send');
  await receive(appB, 'copy', full.subarray(0, full.length - 100));
  t.equal((await appB.inject({ method: 'DELETE', url: '/v1/volumes/copy/receive' })).statusCode, 204);
  t.equal(findVolume(b.state, 'copy'), undefined);
  t.match((await appA.inject({ method: 'GET', url: '/v1/volumes/db/snapshots/nope/send' })).json(), { error: { code: 'SNAPSHOT_NOT_FOUND' } });
  t.equal((await appA.inject({ method: 'GET', url: '/v1/volumes/db/snapshots/s1/send?fromChunk=-1' })).statusCode, 400);
  t.match((await appA.inject({ method: 'GET', url: '/v1/volumes/db/snapshots/s1/send?fromChunk=999999' })).json(), { error: { code: 'INVALID_ARGUMENT' } });
  t.equal((await appA.inject({ method: 'POST', url: '/v1/volumes/x/receive', headers: { 'content-type': 'application/json' }, payload: '{}' })).statusCode, 415, 'JSON is not a stream');

  const put = await appA.inject({ method: 'PUT', url: '/v1/volumes/db/snapshot-schedule', payload: { everyMs: 3_600_000, keep: 24 } });
  t.same(put.json(), { volume: 'db', schedule: { everyMs: 3_600_000, keep: 24 } });
  t.equal((await appA.inject({ method: 'PUT', url: '/v1/volumes/db/snapshot-schedule', payload: { everyMs: 10, keep: 24 } })).statusCode, 400);
  t.same((await appA.inject({ method: 'DELETE', url: '/v1/volumes/db/snapshot-schedule' })).json(), { volume: 'db', schedule: null });
});

t.test('a node that holds no copy sends every extent (and compares snapshots for an incremental): same content', async (t) => {
  const { a, b, appA, appB } = await setup(t);
  const elsewhere = await a.buildApp({ sendNodeId: 'n9' });
  t.teardown(() => elsewhere.close());
  const holderFull = await sendBytes(appA, '/v1/volumes/db/snapshots/s1/send');
  const full = await sendBytes(elsewhere, '/v1/volumes/db/snapshots/s1/send');
  t.ok(full.length > holderFull.length, 'every extent goes out (unmapped ones as zero chunks)');
  t.equal((await receive(appB, 'copy', full)).statusCode, 201);
  t.ok((await b.content('copy')).equals(await snapshotContent(a, 'db', 's1')));
  const holderIncremental = await sendBytes(appA, '/v1/volumes/db/snapshots/s2/send?base=s1');
  const incremental = await sendBytes(elsewhere, '/v1/volumes/db/snapshots/s2/send?base=s1');
  t.equal(incremental.length, holderIncremental.length, 'the content compare finds the same changed extents as the pool');
  t.equal((await receive(appB, 'copy', incremental)).statusCode, 201);
  t.ok((await b.content('copy')).equals(await snapshotContent(a, 'db', 's2')));
});
