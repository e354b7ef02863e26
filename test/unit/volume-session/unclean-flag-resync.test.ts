/**
 * Issue 7 (test/integration/disk-fault-power-cut-stale-unclean.test.ts, the
 * chaos soak's seed 202): the unclean flag of a replica clears once a
 * failover resync made it identical to the source, so replicas whose nodes
 * crashed long ago no longer tie with a freshly power-cut owner, which would
 * then win as the local source and copy its lost writes over the others.
 * Replicas here are memory devices with a flag they report in their
 * activity answers and clear on markRepaired, as replica-service.ts does.
 */
import pino from 'pino';
import t from 'tap';
import { reconcileInFlightRegions, type ResyncReplica } from '../../../daemon/volume/failover-resync.js';
import { MemoryBlockDevice } from '../../helpers/memory-block-device.js';

const logger = pino({ level: 'silent' });
const REGION = 4096;
const SIZE = 4 * REGION;

interface FlaggedReplica extends ResyncReplica {
  readonly device: MemoryBlockDevice;
  unclean: boolean;
  repairs: number;
  failRepair: boolean;
}

function replica(id: string, local: boolean, unclean: boolean): FlaggedReplica {
  const entry: FlaggedReplica = {
    id,
    local,
    device: new MemoryBlockDevice({ sizeBytes: SIZE }),
    unclean,
    repairs: 0,
    failRepair: false,
    getActivity: async () => ({ markerSeq: 1, complete: true, regionSizeBytes: REGION, regions: [1], uncleanRestart: entry.unclean }),
    markRepaired: async () => {
      if (entry.failRepair) throw new Error(`${id} did not answer`);
      entry.repairs += 1;
      entry.unclean = false;
    },
  };
  return entry;
}

async function blockOf(device: MemoryBlockDevice): Promise<Buffer> {
  const read = Buffer.alloc(REGION);
  await device.read(REGION, read);
  return read;
}

t.test('crashes long ago no longer tie with a power-cut owner: the owner is not the source', async (t) => {
  const n1 = replica('n1', true, false);
  const n2 = replica('n2', false, true); // crashed once, long ago
  const n3 = replica('n3', false, true);
  const first = await reconcileInFlightRegions([n1, n2, n3], { sizeBytes: SIZE }, { logger });
  t.equal(first.sourceId, 'n1', 'an earlier failover: the clean local replica is the source');
  t.same([n2.unclean, n3.unclean, n1.repairs], [false, false, 0], 'the resynced flagged replicas are repaired; the clean one is not asked');

  // The owner acknowledged a write everywhere, then lost power before it was flushed: its copy is gone.
  const acknowledged = Buffer.alloc(REGION, 9);
  for (const target of [n2, n3]) await target.device.write(REGION, acknowledged);
  n1.unclean = true;
  const second = await reconcileInFlightRegions([n1, n2, n3], { sizeBytes: SIZE }, { logger });
  t.equal(second.sourceId, 'n2', 'a replica that still holds the write is the source, not the local power-cut one');
  for (const target of [n1, n2, n3]) t.same(await blockOf(target.device), acknowledged, `${target.id} holds the acknowledged write`);
  t.same([n1.unclean, n1.repairs], [false, 1], 'the power-cut owner is repaired by the copy');
});

t.test('when every candidate is flagged, all are identical after the resync and all are cleared', async (t) => {
  const replicas = [replica('n1', true, true), replica('n2', false, true), replica('n3', false, true)];
  await replicas[1]?.device.write(REGION, Buffer.alloc(REGION, 5));
  const outcome = await reconcileInFlightRegions(replicas, { sizeBytes: SIZE }, { logger });
  t.equal(outcome.sourceId, 'n1', 'the local one, as before (no better data to prefer)');
  t.same(outcome.identical, ['n1', 'n2', 'n3']);
  t.same(replicas.map((entry) => entry.unclean), [false, false, false], 'every flag cleared, the source\'s too');
  t.same(await blockOf(replicas[1]?.device ?? new MemoryBlockDevice({ sizeBytes: SIZE })), Buffer.alloc(REGION), 'n2 was made identical to the source');
});

t.test('a flagged target that cannot be told fails (leaves the set); a flagged source that cannot be told stays', async (t) => {
  const n1 = replica('n1', true, true);
  const n2 = replica('n2', false, true);
  const n3 = replica('n3', false, false);
  n2.failRepair = true;
  const outcome = await reconcileInFlightRegions([n1, n2, n3], { sizeBytes: SIZE }, { logger });
  t.equal(outcome.sourceId, 'n3');
  t.same(outcome.failed, ['n2'], 'n2 would stay in the set with a stale flag: it is faulted instead (a rebuild clears it)');
  t.same(outcome.identical, ['n1', 'n3']);

  const onlyFlagged = [replica('n1', true, true), replica('n2', false, true)];
  const source = onlyFlagged[0];
  if (source !== undefined) source.failRepair = true;
  const alone = await reconcileInFlightRegions(onlyFlagged, { sizeBytes: SIZE }, { logger });
  t.equal(alone.sourceId, 'n1');
  t.same(alone.failed, [], 'the source holds the data: it stays, still flagged');
  t.same(onlyFlagged.map((entry) => entry.unclean), [true, false]);
});
