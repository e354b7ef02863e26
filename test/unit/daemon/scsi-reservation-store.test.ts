import pino from 'pino';
import t from 'tap';
import { createScsiTargetRegistry } from '../../../blockdev/iscsi/scsi/scsi-target-registry.js';
import type { ScsiLogicalUnitSession } from '../../../blockdev/iscsi/scsi/scsi-task.js';
import { PlinthError } from '../../../common/plinth-error.js';
import type { CommandProposer } from '../../../daemon/control/command-proposer.js';
import { createClusterReservationStore } from '../../../daemon/control/scsi-reservation-store.js';
import { applyCommand, type CommandResult } from '../../../daemon/state/apply-command.js';
import { emptyClusterState, findVolume, type ClusterState } from '../../../daemon/state/cluster-state.js';
import { decodeCommand, type Command } from '../../../daemon/state/commands.js';
import { MemoryBlockDevice } from '../../helpers/memory-block-device.js';
import { fakeExportDescription, proutCdb, proutParameters, send } from '../iscsi/helpers/scsi-fixture.js';

/**
 * The daemon's ReservationStore over the cluster state machine, in process:
 * every proposal goes through decodeCommand (as read back from a log) and
 * applyCommand, like a one-node command log. Two nodes' SCSI registries
 * share that state: a failover keeps the reservations, and the former owner,
 * with a session still open, can no longer change them.
 */

const ADDRESSES = { api: '127.0.0.1:1', peer: '127.0.0.1:2', nbd: '127.0.0.1:3', iscsi: '127.0.0.1:4' };
const AT = '2026-01-01T00:00:00.000Z';
const VOLUME_ID = fakeExportDescription(new MemoryBlockDevice({ sizeBytes: 1 << 20 })).id;

class InProcessLog implements CommandProposer {
  state: ClusterState = emptyClusterState();
  proposals = 0;

  async propose(command: Command): Promise<CommandResult> {
    this.proposals += 1;
    const outcome = applyCommand(this.state, decodeCommand(JSON.parse(JSON.stringify(command))));
    if (outcome instanceof PlinthError) throw outcome;
    this.state = outcome.state;
    return outcome.result;
  }
}

async function clusterWithVolume(): Promise<InProcessLog> {
  const log = new InProcessLog();
  await log.propose({ type: 'cluster.init', clusterId: 'c1' });
  for (const nodeId of ['n1', 'n2']) await log.propose({ type: 'node.join', nodeId, addresses: ADDRESSES, joinedAt: AT });
  await log.propose({ type: 'volume.create', id: VOLUME_ID, name: 'v1', sizeBytes: 1 << 20, replicaCount: 2, createdAt: AT });
  await log.propose({ type: 'volume.attach', name: 'v1', nodeId: 'n1' });
  return log;
}

function openOn(log: InProcessLog, nodeId: string): (initiator: string) => ScsiLogicalUnitSession {
  const logger = pino({ level: 'silent' });
  const registry = createScsiTargetRegistry({ logger, reservationStore: createClusterReservationStore({ nodeId }, { commands: log, logger }) });
  const device = new MemoryBlockDevice({ sizeBytes: 1 << 20 });
  const description = fakeExportDescription(device);
  return (initiator) => registry.openLogicalUnit(description, device, { initiatorName: initiator, isid: '400000000001', targetPortalGroupTag: 1 });
}

async function prout(session: ScsiLogicalUnitSession, serviceActionKey: bigint, action = 6, type = 0, key = 0n): Promise<number> {
  return (await send(session, proutCdb(action, type), { dataOut: proutParameters(key, serviceActionKey) })).status;
}

t.test('committed through the state machine; a failover keeps them; the former owner is fenced', async (t) => {
  const log = await clusterWithVolume();
  const onN1 = openOn(log, 'n1');
  const holder = onN1('iqn.2026-11.test:holder');
  const other = onN1('iqn.2026-11.test:other');
  t.equal(await prout(holder, 0xan), 0, 'holder registers');
  t.equal(await prout(other, 0xbn), 0, 'other registers');
  t.equal(await prout(holder, 0n, 1, 1, 0xan), 0, 'holder reserves WRITE EXCLUSIVE');
  const image = findVolume(log.state, 'v1')?.scsiReservations;
  t.equal(image?.registrations.length, 2, 'the image is in the cluster state');
  t.equal(image?.reservation?.type, 1);

  await log.propose({ type: 'volume.attach', name: 'v1', nodeId: 'n2', force: true });
  const onN2 = openOn(log, 'n2');
  const otherOnN2 = onN2('iqn.2026-11.test:other');
  const write = await send(otherOnN2, [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], { dataOut: Buffer.alloc(512) });
  t.equal(write.status, 0x18, 'on n2 the non-holder conflicts');

  const proposalsBefore = log.proposals;
  await t.rejects(send(other, proutCdb(3), { dataOut: proutParameters(0xbn, 0n) }), { code: 'FENCED' }, 'n1 (session still open) may not CLEAR any more');
  t.equal(log.proposals, proposalsBefore, 'refused before proposing: n1 sees it is no longer the owner');
  t.same(findVolume(log.state, 'v1')?.scsiReservations, image, 'the reservations are untouched');

  // The authoritative check: a stale owner whose applied state lags still proposes, and the state machine refuses.
  const stale = createClusterReservationStore({ nodeId: 'n1' }, { commands: { state: attachedToN1(log.state), propose: (command) => log.propose(command) }, logger: pino({ level: 'silent' }) });
  await t.rejects(stale.commit(VOLUME_ID, { generation: 0, aptpl: false, registrations: [], reservation: null }), { code: 'FENCED' });
  t.same(findVolume(log.state, 'v1')?.scsiReservations, image, 'still untouched');
  t.equal(await prout(otherOnN2, 0n, 3, 0, 0xbn), 0, 'the new owner changes them: CLEAR');
  t.same(findVolume(log.state, 'v1')?.scsiReservations?.registrations, [], 'committed');
});

t.test('load of an unknown or never-reserved volume is undefined; commit of a deleted one is refused', async (t) => {
  const log = await clusterWithVolume();
  const store = createClusterReservationStore({ nodeId: 'n1' }, { commands: log, logger: pino({ level: 'silent' }) });
  t.equal(store.load(VOLUME_ID), undefined);
  t.equal(store.load('no-such-id'), undefined);
  await t.rejects(store.commit('no-such-id', { generation: 0, aptpl: false, registrations: [], reservation: null }), { code: 'VOLUME_NOT_FOUND' });
});

/** n1's view from before the failover: the volume still attached to it at generation 1. */
function attachedToN1(state: ClusterState): ClusterState {
  const volume = findVolume(state, 'v1');
  if (volume === undefined) throw new Error('no volume');
  return { ...state, volumes: { ...state.volumes, v1: { ...volume, attachedTo: 'n1', generation: 1 } } };
}
