/**
 * Delta resync markers in the cluster state (daemon/state/replica-commands.ts,
 * issue 4): replica.fault from in-sync records the markers of the other
 * in-sync replicas; a replica already out keeps those of its first fault;
 * in-sync drops them; replica.add/remove void the markers of that node.
 */
import t from 'tap';
import { PlinthError } from '../../../common/plinth-error.js';
import { applyCommand } from '../../../daemon/state/apply-command.js';
import { emptyClusterState, findReplica, findVolume, type ClusterState, type ReplicaRecord } from '../../../daemon/state/cluster-state.js';
import { decodeCommand, type Command } from '../../../daemon/state/commands.js';

const ADDRESSES = { api: '127.0.0.1:9700', peer: '127.0.0.1:9701', nbd: '127.0.0.1:10809', iscsi: '127.0.0.1:3260' };
const AT = '2026-01-01T00:00:00.000Z';

function ok(state: ClusterState, command: Command): ClusterState {
  const outcome = applyCommand(state, command);
  if (outcome instanceof PlinthError) throw outcome;
  return outcome.state;
}

function cluster(): ClusterState {
  let state = ok(emptyClusterState(), { type: 'cluster.init', clusterId: 'c1' });
  for (const id of ['n1', 'n2', 'n3', 'n4']) state = ok(state, { type: 'node.join', nodeId: id, addresses: ADDRESSES, joinedAt: AT });
  state = ok(state, { type: 'volume.create', id: 'v1', name: 'vol', sizeBytes: 1 << 30, replicaCount: 3, createdAt: AT, placement: ['n1', 'n2', 'n3'] });
  return ok(state, { type: 'volume.attach', name: 'vol', nodeId: 'n1' });
}

function replica(state: ClusterState, nodeId: string): ReplicaRecord | undefined {
  const volume = findVolume(state, 'vol');
  return volume === undefined ? undefined : findReplica(volume, nodeId);
}

function fault(nodeId: string, resyncMarkers?: Record<string, number>): Command {
  return { type: 'replica.fault', name: 'vol', nodeId, generation: 1, at: AT, ...(resyncMarkers === undefined ? {} : { resyncMarkers }) };
}

t.test('a fault from in-sync records the markers of the other in-sync replicas only', async (t) => {
  const state = ok(cluster(), fault('n3', { n1: 7, n2: 9, n3: 4, n4: 1 }));
  t.match(replica(state, 'n3'), { nodeId: 'n3', state: 'faulted', since: AT });
  t.same(replica(state, 'n3')?.resyncMarkers, { n1: 7, n2: 9 });
  t.equal(replica(state, 'n1')?.resyncMarkers, undefined);
});

t.test('an older fault without markers (or none offered) means a full copy later', async (t) => {
  t.notOk(Object.hasOwn(replica(ok(cluster(), fault('n3')), 'n3') ?? {}, 'resyncMarkers'));
  t.notOk(Object.hasOwn(replica(ok(cluster(), fault('n3', {})), 'n3') ?? {}, 'resyncMarkers'));
});

t.test('a replica already out keeps the markers of its first fault; in-sync drops them', async (t) => {
  let state = ok(cluster(), fault('n3', { n1: 7, n2: 9 }));
  state = ok(state, { type: 'replica.rebuilding', name: 'vol', nodeId: 'n3', generation: 1, at: AT });
  t.same(replica(state, 'n3')?.resyncMarkers, { n1: 7, n2: 9 }, 'kept while rebuilding');
  // It fails again mid-rebuild: newer markers would not cover what it missed before the first fault.
  state = ok(state, fault('n3', { n1: 70, n2: 90 }));
  t.same(replica(state, 'n3')?.resyncMarkers, { n1: 7, n2: 9 }, 'the first fault’s markers stay');
  // A new owner (generation 2) keeps them too.
  state = ok(state, { type: 'volume.attach', name: 'vol', nodeId: 'n2', force: true });
  t.same(replica(state, 'n3')?.resyncMarkers, { n1: 7, n2: 9 });
  state = ok(state, { type: 'replica.rebuilding', name: 'vol', nodeId: 'n3', generation: 2, at: AT });
  state = ok(state, { type: 'replica.in-sync', name: 'vol', nodeId: 'n3', generation: 2, at: AT });
  t.match(replica(state, 'n3'), { nodeId: 'n3', state: 'in-sync' });
  t.notOk(Object.hasOwn(replica(state, 'n3') ?? {}, 'resyncMarkers'), 'back in sync: no markers');
});

t.test('a removed or added replica voids the markers naming its node', async (t) => {
  let state = ok(cluster(), fault('n3', { n1: 7, n2: 9 }));
  state = ok(state, { type: 'replica.add', name: 'vol', nodeId: 'n4', at: AT });
  state = ok(state, { type: 'replica.remove', name: 'vol', nodeId: 'n2' });
  t.same(replica(state, 'n3')?.resyncMarkers, { n1: 7 }, 'n2 has no history there any more');
  state = ok(state, { type: 'replica.remove', name: 'vol', nodeId: 'n4' });
  state = ok(state, { type: 'replica.add', name: 'vol', nodeId: 'n2', at: AT });
  t.same(replica(state, 'n3')?.resyncMarkers, { n1: 7 }, 'a new replica on n2 does not bring the old markers back');
});

t.test('malformed markers are refused; the command decodes with and without them', async (t) => {
  const refused = applyCommand(cluster(), fault('n3', { n1: -1 }));
  t.ok(refused instanceof PlinthError && refused.code === 'INVALID_ARGUMENT', 'a negative marker is refused');
  const fractional = applyCommand(cluster(), fault('n3', { n1: 1.5 }));
  t.ok(fractional instanceof PlinthError && fractional.code === 'INVALID_ARGUMENT', 'a fractional marker is refused');
  t.same(decodeCommand(JSON.parse(JSON.stringify(fault('n3', { n1: 3 })))), fault('n3', { n1: 3 }));
  t.same(decodeCommand(JSON.parse(JSON.stringify(fault('n3')))), fault('n3'), 'old entries without markers still decode');
  t.throws(() => decodeCommand({ ...fault('n3'), resyncMarkers: [1, 2] }), { code: 'INVALID_ARGUMENT' });
});

t.test('a state snapshot from before markers existed applies faults as before', async (t) => {
  const old = JSON.parse(JSON.stringify(cluster())) as ClusterState;
  const state = ok(old, fault('n2', { n1: 5 }));
  t.same(replica(state, 'n2')?.resyncMarkers, { n1: 5 });
});
