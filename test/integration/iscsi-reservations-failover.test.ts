/**
 * Issue 5, persistent reservations that survive failover (docs/iscsi.md
 * "Persistent reservations"): three real plinthd processes; two initiators
 * register keys and one takes a WRITE EXCLUSIVE reservation through node 1's
 * iSCSI portal; kill -9 node 1; once the cluster marks it down the volume is
 * served through node 2, where READ KEYS and READ RESERVATION show the same
 * registrations and reservation (they were committed to the Raft cluster
 * state before GOOD) and the non-holder still gets RESERVATION CONFLICT on a
 * write. The initiators are the byte-level test client of the transport
 * tests (RawIscsiClient), so every command crosses the real iSCSI stack.
 */
import t from 'tap';
import type { DaemonProcess } from '../helpers/daemon-harness.js';
import { scsiCommand } from '../unit/iscsi/helpers/initiator-pdus.js';
import { proutCdb, proutParameters } from '../unit/iscsi/helpers/scsi-fixture.js';
import { loginStatusOf, RawIscsiClient } from '../unit/iscsi/helpers/raw-iscsi-client.js';
import { createVolume, eventually, startCluster } from './fixtures/replication-cluster.js';

const VOLUME = 'prvol';
const TARGET = `iqn.2026-11.io.plinth:${VOLUME}`;
const HOLDER = { initiator: 'iqn.2026-11.test:holder', isid: '400000000001', key: 0xa1a1n };
const OTHER = { initiator: 'iqn.2026-11.test:other', isid: '400000000002', key: 0xb2b2n };
const REGISTER_AND_IGNORE_EXISTING_KEY = 6;
const RESERVE = 1;
const RELEASE = 2;
const WRITE_EXCLUSIVE = 1;
const GOOD = 0x00;
const RESERVATION_CONFLICT = 0x18;

interface CommandReply {
  readonly status: number;
  readonly data: Buffer;
}

/** One iSCSI session on LUN 0 of the volume: numbered commands, replies read to their status. */
class Initiator {
  private cmdSN = 1;
  private itt = 1;

  private constructor(private readonly client: RawIscsiClient) {}

  /** Logs in to the volume's target on `daemon`; rejects unless the login succeeds. */
  static async login(daemon: DaemonProcess, who: { initiator: string; isid: string }): Promise<Initiator> {
    const client = await RawIscsiClient.open(daemon.ports.iscsi);
    const status = loginStatusOf(await client.login({ target: TARGET, initiator: who.initiator, isid: who.isid, cmdSN: 1 }));
    if (status !== 0) {
      client.destroy();
      throw new Error(`login to ${TARGET} on port ${daemon.ports.iscsi} failed with status 0x${status.toString(16)}`);
    }
    return new Initiator(client);
  }

  close(): void {
    this.client.destroy();
  }

  async command(cdb: Buffer, options: { dataOut?: Buffer; readBytes?: number } = {}): Promise<CommandReply> {
    const itt = this.itt++;
    const write = options.dataOut !== undefined;
    this.client.send(
      scsiCommand({
        itt,
        cmdSN: this.cmdSN++,
        edtl: options.dataOut?.length ?? options.readBytes ?? 0,
        read: options.readBytes !== undefined,
        write,
        cdb,
        ...(write ? { data: options.dataOut } : {}),
      }),
    );
    const chunks: Buffer[] = [];
    for (;;) {
      const pdu = await this.client.read(10_000);
      const opcode = (pdu.bhs[0] ?? 0) & 0x3f;
      if (opcode === 0x25) {
        chunks.push(pdu.data);
        if (((pdu.bhs[1] ?? 0) & 0x01) !== 0) return { status: pdu.bhs[3] ?? 0xff, data: Buffer.concat(chunks) };
      } else if (opcode === 0x21) {
        return { status: pdu.bhs[3] ?? 0xff, data: Buffer.concat(chunks) };
      } else if (opcode !== 0x20) {
        throw new Error(`unexpected target PDU opcode 0x${opcode.toString(16)}`);
      }
    }
  }

  async reserveOut(action: number, key: bigint, serviceActionKey: bigint, type = 0): Promise<number> {
    return (await this.command(proutCdb(action, type), { dataOut: proutParameters(key, serviceActionKey) })).status;
  }

  /** PERSISTENT RESERVE IN READ KEYS (SPC-4 §6.15.2). */
  async readKeys(): Promise<{ generation: number; keys: bigint[] }> {
    const data = await this.reserveIn(0);
    const keys: bigint[] = [];
    for (let offset = 8; offset + 8 <= Math.min(data.length, 8 + data.readUInt32BE(4)); offset += 8) keys.push(data.readBigUInt64BE(offset));
    return { generation: data.readUInt32BE(0), keys };
  }

  /** PERSISTENT RESERVE IN READ RESERVATION (SPC-4 §6.15.3); undefined: no reservation. */
  async readReservation(): Promise<{ key: bigint; type: number } | undefined> {
    const data = await this.reserveIn(1);
    return data.readUInt32BE(4) === 0 ? undefined : { key: data.readBigUInt64BE(8), type: (data[21] ?? 0) & 0x0f };
  }

  private async reserveIn(action: number): Promise<Buffer> {
    const cdb = Buffer.alloc(10);
    cdb[0] = 0x5e;
    cdb[1] = action;
    cdb.writeUInt16BE(1024, 7);
    const reply = await this.command(cdb, { readBytes: 1024 });
    if (reply.status !== GOOD || reply.data.length < 8) throw new Error(`PERSISTENT RESERVE IN failed: status 0x${reply.status.toString(16)}`);
    return reply.data;
  }

  async write(lba: number): Promise<number> {
    return (await this.command(cdb10(0x2a, lba), { dataOut: Buffer.alloc(512, 0x5a) })).status;
  }

  async read(lba: number): Promise<number> {
    return (await this.command(cdb10(0x28, lba), { readBytes: 512 })).status;
  }
}

function cdb10(opcode: number, lba: number): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = opcode;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt16BE(1, 7);
  return cdb;
}

t.test('registrations and a WRITE EXCLUSIVE reservation survive kill -9 of the owner', async (t) => {
  const [n1, n2] = await startCluster(t, { dataDirPrefix: 'plinth-prfail-' });
  await createVolume(t, n1, VOLUME);

  const holder = await Initiator.login(n1, HOLDER);
  t.teardown(() => holder.close());
  const other = await Initiator.login(n1, OTHER);
  t.teardown(() => other.close());
  t.equal(await holder.reserveOut(REGISTER_AND_IGNORE_EXISTING_KEY, 0n, HOLDER.key), GOOD, 'holder registers');
  t.equal(await other.reserveOut(REGISTER_AND_IGNORE_EXISTING_KEY, 0n, OTHER.key), GOOD, 'other registers');
  t.equal(await holder.reserveOut(RESERVE, HOLDER.key, 0n, WRITE_EXCLUSIVE), GOOD, 'holder reserves WRITE EXCLUSIVE');
  t.equal(await other.write(0), RESERVATION_CONFLICT, 'on node 1 the other initiator may not write');
  t.equal(await holder.write(0), GOOD, 'the holder writes');
  const before = await other.readKeys();
  t.same(before.keys, [HOLDER.key, OTHER.key]);
  t.match((await n1.api('GET', `/v1/volumes/${VOLUME}`)).body, { attachedTo: 'n1' }, 'node 1 serves the volume');

  holder.close();
  other.close();
  await n1.kill();
  const otherOnN2 = await eventually('node 2 to serve the volume over iSCSI', 40_000, () => Initiator.login(n2, OTHER));
  t.teardown(() => otherOnN2.close());
  t.match((await n2.api('GET', `/v1/volumes/${VOLUME}`)).body, { attachedTo: 'n2' }, 'node 2 owns the volume now');

  t.same(await otherOnN2.readKeys(), before, 'READ KEYS on node 2: the same keys and PRgeneration');
  t.same(await otherOnN2.readReservation(), { key: HOLDER.key, type: WRITE_EXCLUSIVE }, 'READ RESERVATION on node 2: held by the holder');
  t.equal(await otherOnN2.write(0), RESERVATION_CONFLICT, 'the non-holder still gets RESERVATION CONFLICT on a write');
  t.equal(await otherOnN2.read(0), GOOD, 'and may read (WRITE EXCLUSIVE)');

  const holderOnN2 = await Initiator.login(n2, HOLDER);
  t.teardown(() => holderOnN2.close());
  t.equal(await holderOnN2.write(1), GOOD, 'the holder writes through node 2');
  t.equal(await holderOnN2.reserveOut(RELEASE, HOLDER.key, 0n, WRITE_EXCLUSIVE), GOOD, 'the new owner commits a change: RELEASE');
  t.equal(await otherOnN2.readReservation(), undefined, 'released');
  t.equal(await otherOnN2.write(0), GOOD, 'the other initiator writes once released');
});
