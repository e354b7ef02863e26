import pino from 'pino';
import t from 'tap';
import { PersistentReservations } from '../../../blockdev/iscsi/scsi/scsi-persistent-reservations.js';
import { decodeReservationImage, type ReservationImage } from '../../../blockdev/iscsi/scsi/scsi-reservation-image.js';
import type { ReservationStore } from '../../../blockdev/iscsi/scsi/scsi-reservation-store.js';
import { createScsiTargetRegistry } from '../../../blockdev/iscsi/scsi/scsi-target-registry.js';
import type { ScsiLogicalUnitSession, ScsiResponse } from '../../../blockdev/iscsi/scsi/scsi-task.js';
import { PlinthError } from '../../../common/plinth-error.js';
import { MemoryBlockDevice } from '../../helpers/memory-block-device.js';
import { BLOCK, cdb10, fakeExportDescription, proutCdb, proutParameters, send, senseOf } from './helpers/scsi-fixture.js';

/**
 * Persistent reservations kept in a ReservationStore (the cluster state in
 * the daemon): the image codec, commit-before-GOOD, a refused commit, one
 * PR OUT at a time, and a second node's registry starting from the image.
 */

const REGISTER_IGNORE = 6;
const RESERVE = 1;
const WRITE_EXCLUSIVE = 1;
const CONFLICT = 0x18;

/** A store over a Map, like the cluster state: commits may be held, refused or counted. */
class MapStore implements ReservationStore {
  readonly images = new Map<string, ReservationImage>();
  commits = 0;
  failWith: PlinthError | undefined;
  hold: Promise<void> | undefined;

  load(volumeId: string): ReservationImage | undefined {
    return this.images.get(volumeId);
  }

  async commit(volumeId: string, image: ReservationImage): Promise<void> {
    this.commits += 1;
    await this.hold;
    if (this.failWith !== undefined) throw this.failWith;
    // Like a Raft entry: the committed value is a JSON copy, validated like decodeCommand does.
    this.images.set(volumeId, decodeReservationImage(JSON.parse(JSON.stringify(image))));
  }
}

interface Node {
  open(initiator: string): ScsiLogicalUnitSession;
}

function node(store: ReservationStore | undefined, device: MemoryBlockDevice): Node {
  const registry = createScsiTargetRegistry(store === undefined ? { logger: pino({ level: 'silent' }) } : { logger: pino({ level: 'silent' }), reservationStore: store });
  const description = fakeExportDescription(device);
  return {
    open: (initiator) => registry.openLogicalUnit(description, device, { initiatorName: initiator, isid: '400000000001', targetPortalGroupTag: 1 }),
  };
}

async function prout(session: ScsiLogicalUnitSession, action: number, key: bigint, serviceActionKey: bigint, type = 0, flags = 0): Promise<number> {
  return (await send(session, proutCdb(action, type), { dataOut: proutParameters(key, serviceActionKey, flags) })).status;
}

function proutResponse(session: ScsiLogicalUnitSession, key: bigint, serviceActionKey: bigint): Promise<ScsiResponse> {
  return send(session, proutCdb(REGISTER_IGNORE), { dataOut: proutParameters(key, serviceActionKey) });
}

async function readKeys(session: ScsiLogicalUnitSession): Promise<{ generation: number; keys: bigint[] }> {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x5e;
  cdb.writeUInt16BE(1024, 7);
  const data = (await send(session, cdb)).dataIn ?? Buffer.alloc(8);
  const keys: bigint[] = [];
  for (let offset = 8; offset < 8 + data.readUInt32BE(4); offset += 8) keys.push(data.readBigUInt64BE(offset));
  return { generation: data.readUInt32BE(0), keys };
}

async function readReservation(session: ScsiLogicalUnitSession): Promise<{ key: bigint; type: number } | undefined> {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x5e;
  cdb[1] = 1;
  cdb.writeUInt16BE(1024, 7);
  const data = (await send(session, cdb)).dataIn ?? Buffer.alloc(8);
  return data.readUInt32BE(4) === 0 ? undefined : { key: data.readBigUInt64BE(8), type: (data[21] ?? 0) & 0x0f };
}

async function writeStatus(session: ScsiLogicalUnitSession): Promise<number> {
  return (await send(session, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(BLOCK, 7) })).status;
}

async function readStatus(session: ScsiLogicalUnitSession): Promise<number> {
  return (await send(session, cdb10(0x28, 0, 1))).status;
}

function device(): MemoryBlockDevice {
  return new MemoryBlockDevice({ sizeBytes: 1024 * 1024 });
}

t.test('an image round-trips through PersistentReservations and JSON', async (t) => {
  const store = new MapStore();
  const first = node(store, device());
  const one = first.open('iqn.2026-11.test:one');
  const two = first.open('iqn.2026-11.test:two');
  t.equal(await prout(one, REGISTER_IGNORE, 0n, 0xabcn, 0, 0x01), 0, 'register with APTPL');
  t.equal(await prout(two, REGISTER_IGNORE, 0n, 0xffff_ffff_ffff_ffffn), 0, 'a key with the top bit set');
  t.equal(await prout(one, RESERVE, 0xabcn, 0n, WRITE_EXCLUSIVE), 0);
  const image = store.images.get(fakeExportDescription(device()).id);
  t.same(image, {
    generation: 2,
    aptpl: false,
    registrations: [
      { initiatorName: 'iqn.2026-11.test:one', isid: '400000000001', targetPortalGroupTag: 1, key: '0000000000000abc' },
      { initiatorName: 'iqn.2026-11.test:two', isid: '400000000001', targetPortalGroupTag: 1, key: 'ffffffffffffffff' },
    ],
    reservation: { holder: { initiatorName: 'iqn.2026-11.test:one', isid: '400000000001', targetPortalGroupTag: 1 }, type: WRITE_EXCLUSIVE },
  });
  if (image === undefined) return;
  t.same(PersistentReservations.fromImage(image).toImage(), image, 'fromImage ∘ toImage is the identity');
  t.equal(store.commits, 3, 'one commit per change');
  t.equal(await prout(one, RESERVE, 0xabcn, 0n, WRITE_EXCLUSIVE), 0, 'reserving again as the holder');
  t.equal(await prout(two, RESERVE, 0xffff_ffff_ffff_ffffn, 0n, WRITE_EXCLUSIVE), CONFLICT, 'a conflict');
  t.equal(store.commits, 3, 'a PR OUT that changes nothing commits nothing');
});

t.test('a second node starts from the committed image (failover)', async (t) => {
  const store = new MapStore();
  const owner = node(store, device());
  const holderA = owner.open('iqn.2026-11.test:one');
  const otherA = owner.open('iqn.2026-11.test:two');
  await prout(holderA, REGISTER_IGNORE, 0n, 0x1111n);
  await prout(otherA, REGISTER_IGNORE, 0n, 0x2222n);
  t.equal(await prout(holderA, RESERVE, 0x1111n, 0n, WRITE_EXCLUSIVE), 0);
  // The owner dies; the same store (the cluster state) on another node.
  const survivor = node(store, device());
  const holderB = survivor.open('iqn.2026-11.test:one');
  const otherB = survivor.open('iqn.2026-11.test:two');
  t.same(await readKeys(otherB), { generation: 2, keys: [0x1111n, 0x2222n] }, 'READ KEYS after failover');
  t.same(await readReservation(otherB), { key: 0x1111n, type: WRITE_EXCLUSIVE }, 'READ RESERVATION after failover');
  t.equal(await writeStatus(otherB), CONFLICT, 'the non-holder still conflicts on a write');
  t.equal(await readStatus(otherB), 0, 'and may read under WRITE EXCLUSIVE');
  t.equal(await writeStatus(holderB), 0, 'the holder writes');
  const unfenced = node(undefined, device()).open('iqn.2026-11.test:two');
  t.equal(await writeStatus(unfenced), 0, 'without a store a new node knows nothing (the old behaviour)');
});

t.test('a state with no session left reloads the image another node committed', async (t) => {
  const store = new MapStore();
  const dev = device();
  const nodeA = node(store, dev);
  const first = nodeA.open('iqn.2026-11.test:one');
  await prout(first, REGISTER_IGNORE, 0n, 0x1n);
  first.close();
  // Meanwhile node B served the volume and its initiator cleared everything and registered anew.
  const id = fakeExportDescription(dev).id;
  store.images.set(id, { generation: 9, aptpl: false, registrations: [{ initiatorName: 'iqn.2026-11.test:b', isid: '400000000001', targetPortalGroupTag: 1, key: '0000000000000009' }], reservation: null });
  const again = nodeA.open('iqn.2026-11.test:one');
  t.same(await readKeys(again), { generation: 9, keys: [0x9n] }, 'not the stale in-memory state');
});

t.test('a refused commit answers CHECK CONDITION and changes nothing', async (t) => {
  const store = new MapStore();
  const nodeA = node(store, device());
  const one = nodeA.open('iqn.2026-11.test:one');
  const two = nodeA.open('iqn.2026-11.test:two');
  t.equal(await prout(one, REGISTER_IGNORE, 0n, 0x1n), 0);
  store.failWith = new PlinthError('NOT_LEADER', 'no leader: the cluster has no quorum');
  const answer = await proutResponse(two, 0n, 0x2n);
  t.equal(answer.status, 0x02, 'CHECK CONDITION');
  t.match(senseOf(answer), { key: 0x2, asc: 0x08, ascq: 0x00 }, 'NOT READY, LOGICAL UNIT COMMUNICATION FAILURE');
  t.same(await readKeys(two), { generation: 1, keys: [0x1n] }, 'state unchanged');
  t.equal(await prout(one, RESERVE, 0x1n, 0n, WRITE_EXCLUSIVE), 0x02, 'a reservation is not taken either');
  t.equal(await readReservation(two), undefined);
  t.equal(await writeStatus(two), 0, 'so writes still pass');
  store.failWith = new PlinthError('FENCED', 'the volume moved to another node');
  await t.rejects(proutResponse(two, 0n, 0x2n), { code: 'FENCED' }, 'a fenced node drops the connection, as on the data path');
  store.failWith = undefined;
  t.equal(await prout(two, REGISTER_IGNORE, 0n, 0x2n), 0, 'works again once committed');
  t.same(await readKeys(one), { generation: 2, keys: [0x1n, 0x2n] });
});

t.test('PR OUT commands of a volume run one at a time; GOOD only after the commit', async (t) => {
  const store = new MapStore();
  const nodeA = node(store, device());
  const one = nodeA.open('iqn.2026-11.test:one');
  const two = nodeA.open('iqn.2026-11.test:two');
  let release: () => void = () => undefined;
  store.hold = new Promise<void>((resolve) => {
    release = resolve;
  });
  let firstDone = false;
  const first = prout(one, REGISTER_IGNORE, 0n, 0x1n).then((status) => {
    firstDone = true;
    return status;
  });
  const second = prout(two, REGISTER_IGNORE, 0n, 0x2n);
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(firstDone, false, 'no answer before the commit');
  t.same(await readKeys(two), { generation: 0, keys: [] }, 'nothing visible before the commit');
  t.equal(store.commits, 1, 'the second waits for the first');
  release();
  t.equal(await first, 0);
  t.equal(await second, 0);
  t.same(await readKeys(one), { generation: 2, keys: [0x1n, 0x2n] }, 'the second built on the first');
  t.equal(store.images.get(fakeExportDescription(device()).id)?.registrations.length, 2);
});
