import t from 'tap';
import pino from 'pino';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRunMarker, RUN_MARKER_FILE } from '../../../daemon/lifecycle/run-marker.js';
import { reconcileInFlightRegions, sourceOrder, type ResyncReplica } from '../../../daemon/volume/failover-resync.js';
import { MemoryBlockDevice } from '../../helpers/memory-block-device.js';

const logger = pino({ level: 'silent' });

t.test('a run that ends without markClean is seen as unclean by the next one', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-run-marker-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = await openRunMarker(dir, { logger });
  t.equal(first.previousRunEndedUncleanly, false, 'a fresh data dir');
  // No markClean: a crash or a power cut.
  const second = await openRunMarker(dir, { logger });
  t.equal(second.previousRunEndedUncleanly, true, 'the marker of the crashed run is found');
  await second.markClean();
  await t.rejects(stat(join(dir, RUN_MARKER_FILE)), { code: 'ENOENT' }, 'a clean shutdown removes it');
  const third = await openRunMarker(dir, { logger });
  t.equal(third.previousRunEndedUncleanly, false, 'after a clean shutdown');
  await third.markClean();
});

t.test('failover source order: local, then remote, and a replica of an uncleanly restarted node last', async (t) => {
  const replica = (id: string, local: boolean, uncleanRestart = false): ResyncReplica => ({
    id,
    local,
    uncleanRestart,
    device: new MemoryBlockDevice({ sizeBytes: 4096 }),
    getActivity: async () => ({ markerSeq: 0, complete: true, regionSizeBytes: 4096, regions: [] }),
  });
  t.same(sourceOrder([replica('n2', false), replica('n1', true), replica('n3', false)]).map((r) => r.id), ['n1', 'n2', 'n3']);
  t.same(sourceOrder([replica('n1', true, true), replica('n2', false), replica('n3', false)]).map((r) => r.id), ['n2', 'n3', 'n1'], 'the power-cut owner is not the source');
  t.same(sourceOrder([replica('n1', true, true)]).map((r) => r.id), ['n1'], 'alone, it is still a candidate');
});

t.test('a remote replica that says it restarted uncleanly is not the source; its lost write is repaired from another', async (t) => {
  const sizeBytes = 4 * 4096;
  const activity = (uncleanRestart: boolean) => async () => ({ markerSeq: 1, complete: true, regionSizeBytes: 4096, regions: [1], uncleanRestart });
  const owner = new MemoryBlockDevice({ sizeBytes });
  const crashed = new MemoryBlockDevice({ sizeBytes });
  const intact = new MemoryBlockDevice({ sizeBytes });
  const acknowledged = Buffer.alloc(4096, 7);
  // The write reached every replica; the crashed node's power cut lost it there.
  await owner.write(4096, acknowledged);
  await intact.write(4096, acknowledged);
  const replicas: ResyncReplica[] = [
    { id: 'n2', local: false, device: crashed, getActivity: activity(true) },
    { id: 'n3', local: false, device: intact, getActivity: activity(false) },
    { id: 'n1', local: true, device: owner, getActivity: activity(false) },
  ];
  const outcome = await reconcileInFlightRegions(replicas, { sizeBytes }, { logger });
  t.equal(outcome.sourceId, 'n1', 'the local replica that did not restart is the source');
  const onlyRemote = await reconcileInFlightRegions(replicas.filter((replica) => !replica.local), { sizeBytes }, { logger });
  t.equal(onlyRemote.sourceId, 'n3', 'of two remote replicas, the one that did not restart');
  const read = Buffer.alloc(4096);
  await crashed.read(4096, read);
  t.same(read, acknowledged, 'the crashed replica got the acknowledged write back');
});
