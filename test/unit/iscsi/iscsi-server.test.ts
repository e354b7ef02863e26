import t from 'tap';
import { PlinthError } from '../../../common/plinth-error.js';
import { createStaticChapSecrets } from '../../../blockdev/iscsi/chap.js';
import { dataOut, logoutRequest, nopOut, scsiCommand, taskManagement, textRequest, wire } from './helpers/initiator-pdus.js';
import type { OutgoingPdu } from '../../../blockdev/iscsi/pdu-frame.js';

function wireWithDigests(pdu: OutgoingPdu): Buffer {
  return wire(pdu, { header: true, data: true });
}
import { eventually, runTool, startTestTarget } from './helpers/iscsi-test-server.js';
import { loginStatusOf, RawIscsiClient, textOf } from './helpers/raw-iscsi-client.js';

/**
 * The iSCSI server over real loopback sockets: libiscsi's own tools
 * (iscsi-ls, iscsi-inq, iscsi-readcapacity16) and a byte-level initiator
 * for the paths the tools do not reach (R2T, TMF, NOP, bad input).
 */

const VOL1 = 'iqn.2026-11.io.plinth:vol1';

function read10(lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x28;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt16BE(blocks, 7);
  return cdb;
}

function write10(lba: number, blocks: number): Buffer {
  const cdb = read10(lba, blocks);
  cdb[0] = 0x2a;
  return cdb;
}

t.test('libiscsi discovers every volume and reads a target inquiry and capacity', async (t) => {
  const target = await startTestTarget(t);
  const ls = await runTool('iscsi-ls', ['-s', `iscsi://127.0.0.1:${target.port}`]);
  t.equal(ls.code, 0, ls.stderr);
  t.match(ls.stdout, `Target:iqn.2026-11.io.plinth:vol1 Portal:127.0.0.1:${target.port},1`);
  t.match(ls.stdout, `Target:iqn.2026-11.io.plinth:vol2 Portal:127.0.0.1:${target.port},1`);
  const inq = await runTool('iscsi-inq', [target.url('vol1')]);
  t.equal(inq.code, 0, inq.stderr);
  t.match(inq.stdout, /Vendor:PLINTH/);
  const capacity = await runTool('iscsi-readcapacity16', [target.url('vol2')]);
  t.equal(capacity.code, 0, capacity.stderr);
  t.match(capacity.stdout, `Total size:${8 << 20}`);
  t.ok(await eventually(() => target.provider.outstandingHandles() === 0 && target.server.connectionCount() === 0), 'every handle released');
  t.equal(target.provider.doubleReleases, 0);
  t.equal(target.registry.openSessions, target.registry.closedSessions, 'every logical unit session closed');
  t.ok(target.provider.clients.every((client) => client.protocol === 'iscsi'));
});

t.test('unknown targets and volumes busy elsewhere are refused at login; the server keeps serving', async (t) => {
  const target = await startTestTarget(t);
  const unknown = await runTool('iscsi-inq', [target.url('nope')]);
  t.not(unknown.code, 0);
  const client = await RawIscsiClient.open(target.port);
  t.teardown(() => client.destroy());
  t.equal(loginStatusOf(await client.login({ target: 'iqn.2026-11.io.plinth:nope' })), 0x0203, 'Not found');
  t.ok(await client.waitClosed());

  target.provider.failOpen('vol2', new PlinthError('VOLUME_ATTACHED', 'volume "vol2" is attached to node b', { name: 'vol2' }));
  const busy = await RawIscsiClient.open(target.port);
  t.teardown(() => busy.destroy());
  t.equal(loginStatusOf(await busy.login({ target: 'iqn.2026-11.io.plinth:vol2' })), 0x0301, 'service unavailable: attached elsewhere');
  t.ok(await busy.waitClosed());
  const inq = await runTool('iscsi-inq', [target.url('vol1')]);
  t.equal(inq.code, 0, 'still serving');
});

t.test('writes through immediate data, unsolicited data and R2T read back intact', async (t) => {
  const target = await startTestTarget(t);
  const client = await RawIscsiClient.open(target.port);
  t.teardown(() => client.destroy());
  const login = await client.login({
    target: VOL1,
    extra: [
      { key: 'InitialR2T', value: 'No' },
      { key: 'ImmediateData', value: 'Yes' },
      { key: 'FirstBurstLength', value: '8192' },
      { key: 'MaxBurstLength', value: '16384' },
      { key: 'MaxRecvDataSegmentLength', value: '4096' },
    ],
  });
  t.equal(loginStatusOf(login), 0);
  t.ok(login.bhs.readUInt16BE(14) > 0, 'TSIH assigned');
  const payload = Buffer.alloc(64 * 1024);
  for (let i = 0; i < payload.length; i += 1) payload[i] = (i * 7) & 0xff;
  client.send(scsiCommand({ itt: 1, edtl: payload.length, cmdSN: 1, write: true, final: false, cdb: write10(8, 128), data: payload.subarray(0, 4096) }));
  client.send(dataOut({ final: true, itt: 1, ttt: 0xffffffff, dataSN: 0, bufferOffset: 4096, data: payload.subarray(4096, 8192) }));
  let offset = 8192;
  for (;;) {
    const pdu = await client.read();
    const opcode = (pdu.bhs[0] ?? 0) & 0x3f;
    if (opcode === 0x21) {
      t.equal(pdu.bhs[3], 0, 'GOOD');
      break;
    }
    t.equal(opcode, 0x31, 'an R2T');
    const ttt = pdu.bhs.readUInt32BE(20);
    const start = pdu.bhs.readUInt32BE(40);
    const length = pdu.bhs.readUInt32BE(44);
    t.ok(length <= 16384, 'within MaxBurstLength');
    t.equal(start, offset);
    for (let sent = 0, dataSN = 0; sent < length; dataSN += 1) {
      const piece = Math.min(4096, length - sent);
      client.send(dataOut({ final: sent + piece === length, itt: 1, ttt, dataSN, bufferOffset: start + sent, data: payload.subarray(start + sent, start + sent + piece) }));
      sent += piece;
    }
    offset += length;
  }
  const stored = Buffer.alloc(payload.length);
  await target.devices.get('vol1')?.read(8 * 512, stored);
  t.ok(stored.equals(payload), 'device holds the payload');

  client.send(scsiCommand({ itt: 2, edtl: payload.length, cmdSN: 2, read: true, cdb: read10(8, 128) }));
  const chunks: Buffer[] = [];
  for (;;) {
    const pdu = await client.read();
    t.equal((pdu.bhs[0] ?? 0) & 0x3f, 0x25, 'Data-In');
    t.ok(pdu.data.length <= 4096, 'within the initiator MaxRecvDataSegmentLength');
    chunks.push(Buffer.from(pdu.data));
    if (((pdu.bhs[1] ?? 0) & 0x01) !== 0) break;
  }
  t.ok(Buffer.concat(chunks).equals(payload), 'read back the same bytes');
});

t.test('NOP-Out ping, SendTargets text, Reject of an unknown opcode, logout', async (t) => {
  const target = await startTestTarget(t);
  const client = await RawIscsiClient.open(target.port);
  t.teardown(() => client.destroy());
  t.equal(loginStatusOf(await client.login({})), 0, 'discovery login');
  client.send(nopOut({ immediate: true, itt: 5, cmdSN: 1, data: Buffer.from('ping!') }));
  const nopIn = await client.read();
  t.equal((nopIn.bhs[0] ?? 0) & 0x3f, 0x20);
  t.equal(nopIn.bhs.readUInt32BE(16), 5);
  t.equal(nopIn.data.toString(), 'ping!');
  client.send(textRequest({ itt: 6, cmdSN: 1, pairs: [{ key: 'SendTargets', value: 'All' }] }));
  const text = await client.read();
  t.equal((text.bhs[0] ?? 0) & 0x3f, 0x24);
  t.match(text.data.toString(), `TargetName=iqn.2026-11.io.plinth:vol2\0TargetAddress=127.0.0.1:${target.port},1\0`);
  const unknown = Buffer.alloc(48);
  unknown[0] = 0x1d;
  client.sendRaw(unknown);
  const reject = await client.read();
  t.equal((reject.bhs[0] ?? 0) & 0x3f, 0x3f, 'Reject');
  t.equal(reject.bhs[2], 0x05, 'command not supported');
  t.same(reject.data, unknown, 'carries the rejected header');
  client.send(logoutRequest({ itt: 7, cmdSN: 1 }));
  const logout = await client.read();
  t.equal((logout.bhs[0] ?? 0) & 0x3f, 0x26);
  t.equal(logout.bhs[2], 0, 'success');
  t.ok(await client.waitClosed(), 'target closes after the Logout Response');
});

t.test('a SendTargets answer longer than MaxRecvDataSegmentLength comes in parts', async (t) => {
  const volumes: Record<string, number> = {};
  for (let i = 0; i < 40; i += 1) volumes[`volume-with-a-long-name-${String(i).padStart(3, '0')}`] = 1 << 20;
  const target = await startTestTarget(t, { volumes });
  const client = await RawIscsiClient.open(target.port);
  t.teardown(() => client.destroy());
  t.equal(loginStatusOf(await client.login({ extra: [{ key: 'MaxRecvDataSegmentLength', value: '512' }] })), 0);
  client.send(textRequest({ itt: 8, cmdSN: 1, pairs: [{ key: 'SendTargets', value: 'All' }] }));
  const parts: Buffer[] = [];
  for (let round = 0; round < 100; round += 1) {
    const part = await client.read();
    t.ok(part.data.length <= 512, 'each part within the initiator limit');
    parts.push(Buffer.from(part.data));
    if (((part.bhs[1] ?? 0) & 0x80) !== 0) break;
    t.equal((part.bhs[1] ?? 0) & 0x40, 0x40, 'C set while more follows');
    client.send(textRequest({ itt: 8, ttt: part.bhs.readUInt32BE(20), cmdSN: 1, pairs: [] }));
  }
  t.ok(parts.length > 5, `${parts.length} parts`);
  const names = Buffer.concat(parts).toString().split('\0').filter((pair) => pair.startsWith('TargetName='));
  t.equal(names.length, 40, 'every target listed once');
});

t.test('ABORT TASK: the aborted command is never answered, the TMF is answered once it ended', async (t) => {
  const target = await startTestTarget(t);
  const client = await RawIscsiClient.open(target.port);
  t.teardown(() => client.destroy());
  t.equal(loginStatusOf(await client.login({ target: VOL1 })), 0);
  let release: () => void = () => undefined;
  target.registry.hold(new Promise<void>((resolve) => (release = resolve)));
  client.send(scsiCommand({ itt: 11, edtl: 512, cmdSN: 1, read: true, cdb: read10(0, 1) }));
  t.ok(await eventually(() => target.registry.tasks.length === 1), 'the read is running');
  client.send(taskManagement({ fn: 1, itt: 12, referencedTaskTag: 11, cmdSN: 2, refCmdSN: 1 }));
  t.ok(await client.silentFor(100), 'no TMF response while the task still runs');
  release();
  target.registry.hold(undefined);
  const tmf = await client.read();
  t.equal((tmf.bhs[0] ?? 0) & 0x3f, 0x22, 'TMF response, not the read');
  t.equal(tmf.bhs[2], 0, 'function complete');
  client.send(taskManagement({ fn: 1, itt: 13, referencedTaskTag: 99, cmdSN: 2, refCmdSN: 40 }));
  t.equal((await client.read()).bhs[2], 1, 'task does not exist');
  client.send(taskManagement({ fn: 5, itt: 14, cmdSN: 2 }));
  t.equal((await client.read()).bhs[2], 0, 'LUN RESET complete');
  t.same(target.registry.taskManagement, ['lun-reset'], 'forwarded to the device server');
  client.send(scsiCommand({ itt: 15, edtl: 512, cmdSN: 2, read: true, cdb: read10(0, 1) }));
  const after = await client.read();
  t.equal(after.bhs.readUInt32BE(16), 15, 'the next command is answered normally');
});

t.test('header and data digests negotiated at login guard every later PDU', async (t) => {
  const target = await startTestTarget(t);
  const client = await RawIscsiClient.open(target.port);
  t.teardown(() => client.destroy());
  const login = await client.login({ target: VOL1, extra: [{ key: 'HeaderDigest', value: 'CRC32C,None' }, { key: 'DataDigest', value: 'CRC32C' }] });
  t.equal(loginStatusOf(login), 0);
  t.equal(textOf(login).get('HeaderDigest'), 'CRC32C');
  t.equal(textOf(login).get('DataDigest'), 'CRC32C');
  client.useDigests({ header: true, data: true });
  client.send(scsiCommand({ itt: 1, edtl: 512, cmdSN: 1, write: true, cdb: write10(3, 1), data: Buffer.alloc(512, 0x5a) }));
  t.equal((await client.read()).bhs[3], 0, 'write with digests: GOOD');
  client.send(scsiCommand({ itt: 2, edtl: 512, cmdSN: 2, read: true, cdb: read10(3, 1) }));
  const data = await client.read();
  t.ok(data.data.equals(Buffer.alloc(512, 0x5a)), 'read back through a digest-checked Data-In');
  // A NOP-Out framed with digests, then one data byte flipped: Reject "data digest error", and the connection ends.
  const corrupt = wireWithDigests(nopOut({ immediate: true, itt: 3, cmdSN: 3, data: Buffer.from('abcd') }));
  corrupt[52] = (corrupt[52] ?? 0) ^ 0xff;
  client.sendRaw(corrupt);
  const reject = await client.read();
  t.equal((reject.bhs[0] ?? 0) & 0x3f, 0x3f);
  t.equal(reject.bhs[2], 0x02, 'data digest error');
  t.ok(await client.waitClosed());
});

t.test('commands outside the CmdSN window are ignored', async (t) => {
  const target = await startTestTarget(t);
  const client = await RawIscsiClient.open(target.port);
  t.teardown(() => client.destroy());
  const login = await client.login({ target: VOL1, cmdSN: 50 });
  const maxCmdSN = login.bhs.readUInt32BE(32);
  t.equal(login.bhs.readUInt32BE(28), 50, 'ExpCmdSN starts at the login CmdSN');
  client.send(scsiCommand({ itt: 1, edtl: 0, cmdSN: maxCmdSN + 1, cdb: Buffer.alloc(16) }));
  client.send(scsiCommand({ itt: 2, edtl: 0, cmdSN: 49, cdb: Buffer.alloc(16) }));
  t.ok(await client.silentFor(150), 'both ignored');
  client.send(scsiCommand({ itt: 3, edtl: 0, cmdSN: 50, cdb: Buffer.alloc(16) }));
  const response = await client.read();
  t.equal(response.bhs.readUInt32BE(16), 3);
  t.equal(response.bhs.readUInt32BE(28), 51, 'ExpCmdSN advanced');
});

t.test('garbage, oversized segments and a client vanishing mid-PDU cost only that connection', async (t) => {
  const target = await startTestTarget(t);
  const garbage = await RawIscsiClient.open(target.port);
  t.teardown(() => garbage.destroy());
  garbage.sendRaw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(4)));
  t.ok(await garbage.waitClosed(), 'garbage before login: dropped');

  const huge = await RawIscsiClient.open(target.port);
  t.teardown(() => huge.destroy());
  t.equal(loginStatusOf(await huge.login({ target: VOL1 })), 0);
  const header = scsiCommand({ itt: 1, edtl: 1 << 24, cmdSN: 1, write: true, cdb: write10(0, 1) }).bhs;
  header.writeUIntBE(0xffffff, 5, 3);
  huge.sendRaw(header);
  t.ok(await huge.waitClosed(), 'a data segment over MaxRecvDataSegmentLength: dropped');

  const vanishing = await RawIscsiClient.open(target.port);
  t.equal(loginStatusOf(await vanishing.login({ target: VOL1 })), 0);
  const write = scsiCommand({ itt: 1, edtl: 8192, cmdSN: 1, write: true, final: false, cdb: write10(0, 16), data: Buffer.alloc(4096) });
  vanishing.sendRaw(Buffer.concat([write.bhs, (write.data ?? Buffer.alloc(0)).subarray(0, 1000)]));
  await new Promise((resolve) => setTimeout(resolve, 50));
  vanishing.destroy();
  t.ok(await eventually(() => target.provider.outstandingHandles() === 0 && target.server.connectionCount() === 0), 'its volume handle released');
  const inq = await runTool('iscsi-inq', [target.url('vol1')]);
  t.equal(inq.code, 0, 'the server still serves');
  t.equal(target.provider.doubleReleases, 0);
});

t.test('session reinstatement and force-detach', async (t) => {
  const target = await startTestTarget(t);
  const first = await RawIscsiClient.open(target.port);
  t.teardown(() => first.destroy());
  t.equal(loginStatusOf(await first.login({ target: VOL1, isid: '400000000001' })), 0);
  const other = await RawIscsiClient.open(target.port);
  t.teardown(() => other.destroy());
  t.equal(loginStatusOf(await other.login({ target: VOL1, isid: '400000000002' })), 0, 'a second session on the same target');
  const again = await RawIscsiClient.open(target.port);
  t.teardown(() => again.destroy());
  t.equal(loginStatusOf(await again.login({ target: VOL1, isid: '400000000001' })), 0);
  t.ok(await first.waitClosed(), 'same ISID and InitiatorName: the old session is closed (RFC 7143 §6.3.5)');
  t.notOk(other.closed, 'another ISID is another session');
  t.equal(target.server.disconnectExport('vol1'), 2);
  t.ok(await other.waitClosed());
  t.ok(await again.waitClosed());
  t.ok(await eventually(() => target.provider.outstandingHandles() === 0));
});

t.test('keep-alive: an idle initiator is pinged and dropped when it stops answering', async (t) => {
  const target = await startTestTarget(t, { limits: { nopIntervalMs: 100, nopTimeoutMs: 150 } });
  const client = await RawIscsiClient.open(target.port);
  t.teardown(() => client.destroy());
  t.equal(loginStatusOf(await client.login({ target: VOL1 })), 0);
  const ping = await client.read(2000);
  t.equal((ping.bhs[0] ?? 0) & 0x3f, 0x20, 'NOP-In');
  t.equal(ping.bhs.readUInt32BE(16), 0xffffffff, 'a target ping has no task tag');
  client.send(nopOut({ immediate: true, itt: 0xffffffff, ttt: ping.bhs.readUInt32BE(20), cmdSN: 1 }));
  const second = await client.read(2000);
  t.equal((second.bhs[0] ?? 0) & 0x3f, 0x20, 'answered: pinged again later, still connected');
  t.ok(await client.waitClosed(2000), 'unanswered: dropped');
});

t.test('CHAP: the right secret logs in, a wrong one is refused', async (t) => {
  const chap = createStaticChapSecrets({ allTargets: { initiator: { user: 'alice', secret: 'alice-secret-12' } } });
  const target = await startTestTarget(t, { chap });
  const good = await runTool('iscsi-inq', [target.url('vol1', 'alice%alice-secret-12')]);
  t.equal(good.code, 0, good.stderr);
  const bad = await runTool('iscsi-inq', [target.url('vol1', 'alice%wrong-secret-99')]);
  t.not(bad.code, 0);
  const none = await runTool('iscsi-inq', [target.url('vol1')]);
  t.not(none.code, 0, 'no credentials: refused');
});

t.test('graceful close answers running commands before the sockets close', async (t) => {
  const target = await startTestTarget(t);
  const client = await RawIscsiClient.open(target.port);
  t.teardown(() => client.destroy());
  t.equal(loginStatusOf(await client.login({ target: VOL1 })), 0);
  let release: () => void = () => undefined;
  target.registry.hold(new Promise<void>((resolve) => (release = resolve)));
  client.send(scsiCommand({ itt: 21, edtl: 512, cmdSN: 1, read: true, cdb: read10(0, 1) }));
  t.ok(await eventually(() => target.registry.tasks.length === 1));
  const closing = target.server.close();
  setTimeout(release, 50);
  const answer = await client.read();
  t.equal(answer.bhs.readUInt32BE(16), 21, 'the running read was answered');
  await closing;
  t.ok(await client.waitClosed());
  t.equal(target.provider.outstandingHandles(), 0);
});
