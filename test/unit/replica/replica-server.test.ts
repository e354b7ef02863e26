import { connect, createServer, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { RemoteReplica } from '../../../blockdev/replica/remote-replica.js';
import { connectReplica, makeTempDir, MiB, pattern, SECRET, silentLogger, startReplicaNode, VOLUME_BYTES } from './replica-fixture.js';

/** A real replica server over a real pool in a temp dir, driven by RemoteReplica over loopback. */

t.test('read, write, flush, trim and zeroes are byte-exact through RemoteReplica', async (t) => {
  const node = await startReplicaNode(t, await makeTempDir(t));
  const replica = await connectReplica(t, node.server, { connections: 2 });
  const expected = Buffer.alloc(8 * MiB);
  const writes = [0, 5000, 3 * MiB - 100, 6 * MiB].map((offset, index) => ({ offset, data: pattern(300_000 + index * 7, index + 1) }));
  // Pipelined: all writes in flight at once over two connections.
  await Promise.all(writes.map(({ offset, data }, index) => replica.write(offset, data, { fua: index === 0 })));
  for (const { offset, data } of writes) data.copy(expected, offset);
  await replica.flush();
  await replica.trim(1 * MiB, 1 * MiB);
  expected.fill(0, 1 * MiB, 2 * MiB);
  await replica.writeZeroes(6 * MiB + 10, 1000, { noHole: true });
  expected.fill(0, 6 * MiB + 10, 6 * MiB + 1010);
  const back = Buffer.alloc(8 * MiB);
  await replica.read(0, back);
  t.ok(back.equals(expected), 'whole 8 MiB reads back byte-exact');
  const runs = await replica.blockStatus(0, 8 * MiB);
  t.ok(runs.length > 0 && runs.reduce((sum, run) => sum + run.lengthBytes, 0) <= 8 * MiB, 'block status answers contiguous runs');
  const tail = Buffer.alloc(4096, 0xff);
  await replica.read(VOLUME_BYTES - 4096, tail);
  t.ok(tail.every((byte) => byte === 0), 'unwritten range reads zeroes');
  await t.rejects(replica.read(VOLUME_BYTES - 10, Buffer.alloc(20)), { code: 'OUT_OF_RANGE' });
  await replica.ping();
});

t.test('generation fencing: a lower generation is refused, also after a restart', async (t) => {
  const dir = await makeTempDir(t);
  const node = await startReplicaNode(t, dir);
  const oldOwner = await connectReplica(t, node.server, { generation: 1 });
  await oldOwner.write(0, pattern(4096, 1));
  const newOwner = await connectReplica(t, node.server, { generation: 2 });
  await newOwner.write(0, pattern(4096, 2), { fua: true }); // durable: the node crashes below
  await t.rejects(oldOwner.write(0, pattern(4096, 3)), { code: 'FENCED', details: { volume: 'vol-1', generation: 1 } });
  await t.rejects(oldOwner.read(0, Buffer.alloc(10)), { code: 'FENCED' }, 'the fenced device stays fenced');
  const back = Buffer.alloc(4096);
  await newOwner.read(0, back);
  t.ok(back.equals(pattern(4096, 2)), "the fenced owner's write did not land");

  newOwner.close();
  await node.crash();
  const restarted = await startReplicaNode(t, dir);
  await t.rejects(connectReplica(t, restarted.server, { generation: 1 }), { code: 'FENCED' }, 'generation 2 survived the restart');
  const again = await connectReplica(t, restarted.server, { generation: 2 });
  await again.read(0, back);
  t.ok(back.equals(pattern(4096, 2)), 'generation 2 still serves');
});

t.test('a wrong cluster secret is refused', async (t) => {
  const node = await startReplicaNode(t, await makeTempDir(t));
  await t.rejects(connectReplica(t, node.server, { secret: Buffer.from('not-the-secret') }), { code: 'UNAUTHORIZED' });
  const good = await connectReplica(t, node.server);
  await good.ping();
});

t.test('a garbage connection costs only itself', async (t) => {
  const node = await startReplicaNode(t, await makeTempDir(t));
  const good = await connectReplica(t, node.server);
  await good.write(0, pattern(1000, 5));
  const { port } = node.server.address();
  const closed = await new Promise<boolean>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(3)));
      socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    });
    socket.on('error', () => undefined); // the server resets us; that is the point
    socket.on('close', () => resolve(true));
  });
  t.ok(closed, 'the server dropped the garbage connection');
  const back = Buffer.alloc(1000);
  await good.read(0, back);
  t.ok(back.equals(pattern(1000, 5)), 'the good connection keeps working');
});

/** A loopback TCP proxy that can freeze (stop forwarding) and cut its connections. */
async function startProxy(t: Test, targetPort: number) {
  const pairs: Socket[][] = [];
  let frozen = false;
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    for (const socket of [client, upstream]) socket.on('error', () => undefined); // a cut pair errors; expected
    client.on('data', (chunk: Buffer) => frozen || upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => frozen || client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const pair of pairs) for (const socket of pair) socket.destroy();
    server.close();
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy not on TCP');
  return {
    port: address.port,
    freeze: (value: boolean) => {
      frozen = value;
    },
    cut: () => {
      for (const pair of pairs.splice(0)) for (const socket of pair) socket.destroy();
    },
  };
}

t.test('client timeout, broken connection and reconnect', async (t) => {
  const node = await startReplicaNode(t, await makeTempDir(t));
  const proxy = await startProxy(t, node.server.address().port);
  const replica = new RemoteReplica(
    { host: '127.0.0.1', port: proxy.port, nodeId: 'node-a', secret: SECRET, volumeId: 'vol-1', sizeBytes: VOLUME_BYTES, generation: 1, requestTimeoutMs: 300, reconnectBaseDelayMs: 20, reconnectMaxDelayMs: 100 },
    { logger: silentLogger },
  );
  t.teardown(() => replica.close());
  await replica.connect();
  await replica.write(0, pattern(512, 9));

  proxy.freeze(true);
  await t.rejects(replica.ping(), { code: 'TIMEOUT' }, 'a silent replica times out');
  const inFlight = replica.read(0, Buffer.alloc(512));
  proxy.cut();
  await t.rejects(inFlight, { code: 'IO_ERROR' }, 'a broken connection fails in-flight requests with IO_ERROR');
  proxy.freeze(false);

  const deadline = Date.now() + 5000;
  let back: Buffer | undefined;
  while (back === undefined && Date.now() < deadline) {
    const target = Buffer.alloc(512);
    try {
      await replica.read(0, target);
      back = target;
    } catch (err) {
      t.ok(err instanceof Error, 'retrying while the link reconnects');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  t.ok(back?.equals(pattern(512, 9)), 'after reconnecting, reads work again');
});

t.test('bounded client queue: overflow is BUSY', async (t) => {
  const node = await startReplicaNode(t, await makeTempDir(t));
  const replica = await connectReplica(t, node.server, { maxQueuedRequests: 4 });
  const requests = Array.from({ length: 6 }, (_, index) => replica.write(index * 4096, pattern(4096, index)).then(() => 'ok', (err: unknown) => err));
  const outcomes = await Promise.all(requests);
  t.equal(outcomes.filter((outcome) => outcome === 'ok').length, 4, 'four fit in the queue');
  t.match(outcomes.slice(4), [{ code: 'BUSY' }, { code: 'BUSY' }], 'the rest overflow with BUSY');
});

t.test('activity log marks survive a crash; dirty tracking answers since a marker', async (t) => {
  const dir = await makeTempDir(t);
  const node = await startReplicaNode(t, dir);
  const replica = await connectReplica(t, node.server);
  const start = await replica.getDirty(Number.MAX_SAFE_INTEGER, 0, VOLUME_BYTES);
  t.equal(start.complete, false, 'a marker from the future is not answerable');
  const marker = start.markerSeq;
  await replica.write(0, pattern(100, 1));
  await replica.write(9 * MiB, pattern(100, 2));
  await replica.flush();
  await replica.flush();
  await replica.flush();
  const cleared = await replica.getActivity(0, VOLUME_BYTES);
  t.same(cleared.regions, [], 'idle regions leave the activity log after two flushes');
  await replica.write(17 * MiB, pattern(100, 3)); // region 4: in flight at the "crash"
  const dirty = await replica.getDirty(marker, 0, VOLUME_BYTES);
  t.same(dirty.regions, [0, 2, 4], 'regions changed since the marker');
  t.equal(dirty.regionSizeBytes, 4 * MiB);
  replica.close();
  await node.crash();

  const restarted = await startReplicaNode(t, dir);
  const again = await connectReplica(t, restarted.server, { generation: 2 });
  const activity = await again.getActivity(0, VOLUME_BYTES);
  t.same(activity.regions, [4], 'the region written before the crash is still in the activity log');
  const afterCrash = await again.getDirty(dirty.markerSeq, 0, VOLUME_BYTES);
  t.ok(afterCrash.complete, 'the marker handed out before the crash is still answerable');
  t.same(afterCrash.regions, [4], 'the active region counts as changed');
  const local = await restarted.server.service.activeRegions('vol-1', 0, VOLUME_BYTES);
  t.same(local.regions, [4], 'the local API agrees');
});
