import t from 'tap';
import { LocalReplica } from '../../../daemon/volume/local-replica.js';
import { connectReplica, makeTempDir, MiB, pattern, startReplicaNode, VOLUME_BYTES } from './replica-fixture.js';

/**
 * The batched, copy-free data path (perf round) over a real replica server
 * on loopback: many requests sent in one turn share writevs on two links,
 * 4 MiB payloads travel as their own chunks both ways, and the local
 * replica reads straight into the caller's buffer. Every byte must come
 * back as written.
 */

t.test('a burst of small writes and large writes in one turn all land intact', async (t) => {
  const node = await startReplicaNode(t, await makeTempDir(t));
  const remote = await connectReplica(t, node.server, { connections: 2 });
  const small = Array.from({ length: 64 }, (_, index) => ({ offset: index * 8192, data: pattern(4096, index + 1) }));
  const large = [0, 1].map((index) => ({ offset: 8 * MiB + index * 4 * MiB, data: pattern(4 * MiB, 100 + index) }));
  // All issued synchronously: the links gather them into writevs.
  await Promise.all([...small, ...large].map(({ offset, data }) => remote.write(offset, data)));
  for (const { offset, data } of [...small, ...large]) {
    const back = Buffer.alloc(data.length);
    await remote.read(offset, back);
    if (!back.equals(data)) t.fail(`bytes at ${offset} differ`);
  }
  const reads = await Promise.all(large.map(async ({ offset, data }) => {
    const back = Buffer.alloc(data.length);
    await remote.read(offset, back);
    return back.equals(data);
  }));
  t.same(reads, [true, true], 'concurrent 4 MiB reads come back intact');
  t.pass('every write read back');
});

t.test('the local replica reads into the caller buffer with the data written through it', async (t) => {
  const node = await startReplicaNode(t, await makeTempDir(t));
  const local = await LocalReplica.open({ volumeId: 'vol-local', sizeBytes: VOLUME_BYTES, generation: 1 }, { service: node.server.service });
  const data = pattern(4 * MiB, 7);
  await local.write(MiB, data);
  const target = Buffer.alloc(4 * MiB);
  await local.read(MiB, target);
  t.ok(target.equals(data), '4 MiB read back');
  const small = Buffer.alloc(100);
  await local.read(MiB + 10, small);
  t.ok(small.equals(data.subarray(10, 110)), 'an unaligned small read too');
});
