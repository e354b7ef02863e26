/**
 * Issue 7 (test/integration/disk-fault-power-cut-stale-unclean.test.ts): the
 * "unclean" bit of an activity answer means "this replica may lack writes it
 * acknowledged and has not been made identical to a good source since". It
 * is per volume and durable (replica-database.ts uncleanKey): set at an
 * unclean start for every volume held, not for a volume first opened later,
 * kept across restarts, cleared by MARK_REPAIRED from the owner.
 */
import t, { type Test } from 'tap';
import { decodeRequest, encodeRequest } from '../../../blockdev/replica/replica-codec.js';
import { Opcode, PROTOCOL_VERSION } from '../../../blockdev/replica/replica-protocol.js';
import { connectReplica, makeTempDir, pattern, type ReplicaNode, startReplicaNode, VOLUME_BYTES } from './replica-fixture.js';

async function flagged(t: Test, node: ReplicaNode, volumeId: string, generation: number): Promise<boolean> {
  const owner = await connectReplica(t, node.server, { volumeId, generation });
  const answer = await owner.getActivity(0, VOLUME_BYTES);
  owner.close();
  return answer.uncleanRestart === true;
}

t.test('the unclean flag is per volume, durable across restarts, and cleared only by MARK_REPAIRED', async (t) => {
  const dir = await makeTempDir(t);
  const first = await startReplicaNode(t, dir);
  const owner = await connectReplica(t, first.server, { generation: 1 });
  await owner.write(0, pattern(4096, 1));
  t.equal(await flagged(t, first, 'vol-1', 1), false, 'a first start flags nothing');
  owner.close();
  await first.crash();

  const afterCrash = await startReplicaNode(t, dir, { uncleanRestart: true });
  t.equal(await flagged(t, afterCrash, 'vol-1', 2), true, 'a volume held at the unclean start is flagged');
  t.equal(afterCrash.server.service.isUnclean('vol-1'), true, 'the local API says so too');
  t.equal((await afterCrash.server.service.activeRegions('vol-1', 0, VOLUME_BYTES)).uncleanRestart, true, 'and the local activity answer');
  t.equal(await flagged(t, afterCrash, 'vol-new', 1), false, 'a volume first opened after the unclean start lost nothing: not flagged');
  await afterCrash.crash();

  // A clean start (no run marker): the flag is not a property of the process, it stays until repaired.
  const cleanStart = await startReplicaNode(t, dir);
  t.equal(await flagged(t, cleanStart, 'vol-1', 3), true, 'still flagged after another (clean) restart');
  const repairer = await connectReplica(t, cleanStart.server, { generation: 3 });
  await repairer.markRepaired();
  t.equal(cleanStart.server.service.isUnclean('vol-1'), false, 'MARK_REPAIRED clears it at once');
  t.equal(await flagged(t, cleanStart, 'vol-1', 3), false, 'activity answers no longer carry it');
  await repairer.markRepaired();
  t.pass('MARK_REPAIRED of an unflagged volume is a no-op');
  await t.rejects(
    connectReplica(t, cleanStart.server, { generation: 2 }).then((stale) => stale.markRepaired()),
    { code: 'FENCED' },
    'a former owner cannot clear it (generation fence)',
  );
  repairer.close();
  await cleanStart.crash();

  const again = await startReplicaNode(t, dir);
  t.equal(await flagged(t, again, 'vol-1', 4), false, 'the clear survives a restart');
  t.equal(await flagged(t, again, 'vol-new', 4), false, 'the other volume never was flagged');
  await again.crash();

  const secondCrash = await startReplicaNode(t, dir, { uncleanRestart: true });
  t.equal(await flagged(t, secondCrash, 'vol-1', 5), true, 'the next unclean start flags it again');
  t.equal(await flagged(t, secondCrash, 'vol-new', 5), true, 'and every other volume held by then');
});

t.test('MARK_REPAIRED on the wire: a volume request without payload, protocol version 2', async (t) => {
  const request = { opcode: Opcode.MARK_REPAIRED, flags: 0, requestId: 7, generation: 3, offset: 0, lengthBytes: 0, volumeId: 'vol-1', payload: Buffer.alloc(0) };
  const frame = encodeRequest(request);
  t.equal(frame.readUInt8(4 + 4), PROTOCOL_VERSION, 'the version byte');
  t.ok(PROTOCOL_VERSION >= 2, 'bumped with the new opcode (3 since the snapshot ops)');
  t.same(decodeRequest(frame.subarray(4)), request, 'round trip');
  t.match(decodeRequest(encodeRequest({ ...request, payload: Buffer.alloc(1) }).subarray(4)), { reason: 'BAD_LENGTH' }, 'a payload is refused');
  const older = Buffer.from(frame.subarray(4));
  older.writeUInt8(1, 4);
  t.match(decodeRequest(older), { reason: 'BAD_VERSION' }, 'a peer of version 1 is refused at its first frame');
});
