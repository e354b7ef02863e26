import t from 'tap';
import type { ReservationImage } from '../../../blockdev/iscsi/scsi/scsi-reservation-image.js';
import { MAX_REGISTRATIONS } from '../../../blockdev/iscsi/scsi/scsi-persistent-reservations.js';
import { findVolume, type ClusterState } from '../../../daemon/state/cluster-state.js';
import { decodeCommand } from '../../../daemon/state/commands.js';
import type { VolumeScsiReservationsCommand } from '../../../daemon/state/scsi-reservation-commands.js';
import { ok, refused, withNodes } from './helpers/cluster-state-fixture.js';

/** volume.scsi-reservations: iSCSI persistent reservations in the cluster state, owner-only (invariant 3). */

const AT = '2026-01-01T00:00:00.000Z';

const NEXUS_ONE = { initiatorName: 'iqn.2026-11.test:one', isid: '400000000001', targetPortalGroupTag: 1 };
const NEXUS_TWO = { initiatorName: 'iqn.2026-11.test:two', isid: '400000000002', targetPortalGroupTag: 1 };

/** Two registrations and a WRITE EXCLUSIVE reservation held by the first. */
const IMAGE: ReservationImage = {
  generation: 2,
  aptpl: false,
  registrations: [
    { ...NEXUS_ONE, key: '0000000000000abc' },
    { ...NEXUS_TWO, key: '0000000000000def' },
  ],
  reservation: { holder: NEXUS_ONE, type: 1 },
};

/** Nodes n1, n2; volume v1 (replicas on both) attached to n1 at generation 1. */
function attachedState(): ClusterState {
  let state = withNodes(['n1', 'n2'], AT);
  state = ok(state, { type: 'volume.create', id: 'id-v1', name: 'v1', sizeBytes: 1024 ** 3, replicaCount: 2, createdAt: AT }).state;
  return ok(state, { type: 'volume.attach', name: 'v1', nodeId: 'n1' }).state;
}

function setCommand(overrides: Partial<VolumeScsiReservationsCommand> = {}): VolumeScsiReservationsCommand {
  return { type: 'volume.scsi-reservations', name: 'v1', nodeId: 'n1', generation: 1, image: IMAGE, ...overrides };
}

t.test('the owner at the current generation commits an image; other volume commands keep it', async (t) => {
  const state = ok(attachedState(), setCommand()).state;
  t.same(findVolume(state, 'v1')?.scsiReservations, IMAGE);
  const failedOver = ok(state, { type: 'volume.attach', name: 'v1', nodeId: 'n2', force: true }).state;
  const volume = findVolume(failedOver, 'v1');
  t.equal(volume?.generation, 2);
  t.same(volume?.scsiReservations, IMAGE, 'a new owner finds the reservations');
  const cleared = ok(failedOver, setCommand({ nodeId: 'n2', generation: 2, image: { ...IMAGE, registrations: [], reservation: null } })).state;
  t.same(findVolume(cleared, 'v1')?.scsiReservations?.registrations, [], 'the new owner changes them');
});

t.test('refused with FENCED unless from the owner at the current generation', async (t) => {
  const state = attachedState();
  t.equal(refused(state, setCommand({ nodeId: 'n2' })).code, 'FENCED', 'not the owner');
  t.equal(refused(state, setCommand({ generation: 0 })).code, 'FENCED', 'stale generation');
  t.equal(refused(state, setCommand({ generation: 2 })).code, 'FENCED', 'future generation');
  const failedOver = ok(state, { type: 'volume.attach', name: 'v1', nodeId: 'n2', force: true }).state;
  const stale = refused(failedOver, setCommand());
  t.equal(stale.code, 'FENCED', 'the former owner is fenced');
  t.match(stale.details, { nodeId: 'n1', generation: 1, currentGeneration: 2, attachedTo: 'n2' });
  const detached = ok(state, { type: 'volume.detach', name: 'v1' }).state;
  t.equal(refused(detached, setCommand()).code, 'FENCED', 'a detached volume has no owner to change them');
  t.equal(refused(state, setCommand({ name: 'nope' })).code, 'VOLUME_NOT_FOUND');
});

t.test('removed with the volume', async (t) => {
  const state = ok(attachedState(), setCommand()).state;
  const detached = ok(state, { type: 'volume.detach', name: 'v1' }).state;
  t.same(findVolume(detached, 'v1')?.scsiReservations, IMAGE, 'a detach keeps them');
  const deleted = ok(detached, { type: 'volume.delete', name: 'v1' }).state;
  t.equal(findVolume(deleted, 'v1'), undefined);
  const recreated = ok(deleted, { type: 'volume.create', id: 'id-v1b', name: 'v1', sizeBytes: 1024 ** 3, replicaCount: 2, createdAt: AT }).state;
  t.equal(findVolume(recreated, 'v1')?.scsiReservations, undefined, 'a new volume of the same name starts without any');
});

t.test('decodeCommand checks every field of the image', async (t) => {
  const wire = JSON.parse(JSON.stringify(setCommand())) as unknown;
  t.same(decodeCommand(wire), setCommand(), 'round-trips through JSON');
  const register = (extra: Record<string, unknown>): Record<string, unknown> => ({ ...NEXUS_ONE, key: '0000000000000abc', ...extra });
  const badImages: Array<[string, unknown]> = [
    ['not an object', 'image'],
    ['missing field', { generation: 0, aptpl: false, registrations: [] }],
    ['extra field', { ...IMAGE, extra: 1 }],
    ['generation above 32 bits', { ...IMAGE, generation: 2 ** 32 }],
    ['negative generation', { ...IMAGE, generation: -1 }],
    ['aptpl not boolean', { ...IMAGE, aptpl: 1 }],
    ['registrations not an array', { ...IMAGE, registrations: {} }],
    ['key too short', { ...IMAGE, registrations: [register({ key: 'abc' })], reservation: null }],
    ['key upper case', { ...IMAGE, registrations: [register({ key: '0000000000000ABC' })], reservation: null }],
    ['key zero', { ...IMAGE, registrations: [register({ key: '0000000000000000' })], reservation: null }],
    ['isid not hex', { ...IMAGE, registrations: [register({ isid: 'zz0000000001' })], reservation: null }],
    ['tpgt out of range', { ...IMAGE, registrations: [register({ targetPortalGroupTag: 65536 })], reservation: null }],
    ['empty initiator name', { ...IMAGE, registrations: [register({ initiatorName: '' })], reservation: null }],
    ['initiator name too long', { ...IMAGE, registrations: [register({ initiatorName: 'x'.repeat(256) })], reservation: null }],
    ['registration extra field', { ...IMAGE, registrations: [register({ holder: true })], reservation: null }],
    ['duplicate nexus', { ...IMAGE, registrations: [register({}), register({ key: '0000000000000001' })], reservation: null }],
    ['holder not registered', { ...IMAGE, reservation: { holder: { ...NEXUS_ONE, isid: '400000000009' }, type: 1 } }],
    ['unknown type', { ...IMAGE, reservation: { holder: NEXUS_ONE, type: 2 } }],
    ['all-registrants with a holder', { ...IMAGE, reservation: { holder: NEXUS_ONE, type: 7 } }],
    ['all-registrants without registrants', { ...IMAGE, registrations: [], reservation: { holder: null, type: 8 } }],
    ['holder missing for write exclusive', { ...IMAGE, reservation: { holder: null, type: 1 } }],
    [
      'too many registrations',
      {
        ...IMAGE,
        reservation: null,
        registrations: Array.from({ length: MAX_REGISTRATIONS + 1 }, (_, index) => register({ isid: index.toString(16).padStart(12, '0') })),
      },
    ],
  ];
  for (const [why, image] of badImages) {
    t.throws(() => decodeCommand({ ...setCommand(), image }), { code: 'INVALID_ARGUMENT' }, why);
  }
  t.throws(() => decodeCommand({ ...setCommand(), generation: '1' }), { code: 'INVALID_ARGUMENT' }, 'generation must be a number');
  t.throws(() => decodeCommand({ ...setCommand(), extra: true }), { code: 'INVALID_ARGUMENT' }, 'unexpected field');
  const full = {
    ...IMAGE,
    reservation: null,
    registrations: Array.from({ length: MAX_REGISTRATIONS }, (_, index) => register({ isid: index.toString(16).padStart(12, '0') })),
  };
  t.ok(decodeCommand({ ...setCommand(), image: full }), `${MAX_REGISTRATIONS} registrations are fine`);
  t.ok(decodeCommand({ ...setCommand(), image: { ...IMAGE, reservation: { holder: null, type: 7 } } }), 'all-registrants');
});

t.test('apply checks the image as well (the state machine is the authority)', async (t) => {
  const bad = { ...IMAGE, reservation: { holder: null, type: 1 } };
  // A command built in-process skips decodeCommand; apply must still refuse it.
  t.equal(refused(attachedState(), setCommand({ image: bad })).code, 'INVALID_ARGUMENT');
});
