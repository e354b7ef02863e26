import t, { type Test } from 'tap';
import { settled } from '../../helpers/eventually.js';
import { scsiCommand, wire } from './helpers/initiator-pdus.js';
import { startTestTarget } from './helpers/iscsi-test-server.js';
import { loginStatusOf, RawIscsiClient } from './helpers/raw-iscsi-client.js';
import { cdb10 } from './helpers/scsi-fixture.js';

/**
 * What one connection can make the target hold stays bounded: the read
 * data of its commands in flight (IscsiLimits.maxReadBytesInFlight) and the
 * replies it has not read (maxQueuedReplyBytes). Past either bound the
 * target stops reading the socket, and goes on once the bound frees.
 */

const VOL1 = 'iqn.2026-11.io.plinth:vol1';
const MIB = 1 << 20;

/** `count` READs of 1 MiB of LBA 0, all in one segment: a loaded target finds them so, and must still count each. */
function readsInOneSegment(count: number): Buffer {
  const frames: Buffer[] = [];
  for (let index = 0; index < count; index += 1) {
    frames.push(wire(scsiCommand({ itt: 10 + index, edtl: MIB, cmdSN: 1 + index, read: true, cdb: cdb10(0x28, 0, MIB / 512) })));
  }
  return Buffer.concat(frames);
}

/** Read PDUs until `count` commands have had their status (phase-collapsed into their last Data-In). */
async function readAnswers(t: Test, client: RawIscsiClient, count: number): Promise<void> {
  let answered = 0;
  const unexpected: string[] = [];
  while (answered < count) {
    const pdu = await client.read(10_000);
    const opcode = (pdu.bhs[0] ?? 0) & 0x3f;
    if (opcode !== 0x25) {
      unexpected.push(`opcode 0x${opcode.toString(16)}`);
    } else if (((pdu.bhs[1] ?? 0) & 0x01) !== 0) {
      answered += 1;
      if (pdu.bhs[3] !== 0) unexpected.push(`status 0x${(pdu.bhs[3] ?? 0).toString(16)}`);
    }
  }
  t.same(unexpected, [], 'only Data-In, each command GOOD in its last one');
}

t.test('reads in flight stop at the bound while the device holds them, then all run', async (t) => {
  const target = await startTestTarget(t, { limits: { maxReadBytesInFlight: 4 * MIB } });
  const client = await RawIscsiClient.open(target.port);
  t.teardown(() => client.destroy());
  t.equal(loginStatusOf(await client.login({ target: VOL1, extra: [{ key: 'MaxRecvDataSegmentLength', value: '262144' }] })), 0);
  let open: () => void = () => undefined;
  target.registry.hold(new Promise<void>((resolve) => (open = resolve)));
  const tasksBefore = target.registry.tasks.length;
  const count = 40;
  client.sendRaw(readsInOneSegment(count));
  t.equal((await settled(() => target.registry.tasks.length, 200)) - tasksBefore, 4, 'four 1 MiB reads reach the device, no more');
  open();
  await readAnswers(t, client, count);
  t.equal(target.registry.tasks.length - tasksBefore, count, 'every read ran once the first ones ended');
});

t.test('an initiator that does not read its replies stops being served, then gets them all', async (t) => {
  const target = await startTestTarget(t, { limits: { maxQueuedReplyBytes: 2 * MIB, maxReadBytesInFlight: 4 * MIB } });
  const device = target.devices.get('vol1');
  if (device === undefined) throw new Error('no vol1');
  const client = await RawIscsiClient.open(target.port);
  t.teardown(() => client.destroy());
  const login = await client.login({ target: VOL1, extra: [{ key: 'MaxRecvDataSegmentLength', value: '262144' }] });
  t.equal(loginStatusOf(login), 0);
  client.pauseReading();
  const count = 100;
  const readsBefore = device.stats.reads;
  client.sendRaw(readsInOneSegment(count));
  const served = (await settled(() => device.stats.reads, 200)) - readsBefore;
  t.ok(served < count / 2, `only ${served} of ${count} 1 MiB reads served while the initiator does not read`);
  client.resumeReading();
  await readAnswers(t, client, count);
  t.equal(device.stats.reads - readsBefore, count, 'all served once the initiator reads again');
});
