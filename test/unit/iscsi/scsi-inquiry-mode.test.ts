import t from 'tap';
import { encodeDescriptorSense, encodeFixedSense, SenseKey, Asc } from '../../../blockdev/iscsi/scsi/scsi-sense.js';
import { BLOCK, cdb10, cdb16, createScsiFixture, send, senseOf } from './helpers/scsi-fixture.js';

/** INQUIRY and VPD pages (SPC-4 §6.6, §7.8; SBC-3 §6.5), MODE SENSE/SELECT (SPC-4 §6.11-6.14), sense formats (§4.5). */

function inquiryCdb(evpd: boolean, page: number, allocation: number): Buffer {
  const cdb = Buffer.alloc(6);
  cdb[0] = 0x12;
  cdb[1] = evpd ? 1 : 0;
  cdb[2] = page;
  cdb.writeUInt16BE(allocation, 3);
  return cdb;
}

t.test('standard INQUIRY', async (t) => {
  const session = createScsiFixture().open();
  const answer = await send(session, inquiryCdb(false, 0, 260));
  const data = answer.dataIn ?? Buffer.alloc(0);
  t.equal(data.length, 96);
  t.equal(data[0], 0x00, 'direct access block device, qualifier 0');
  t.equal(data[2], 0x06, 'SPC-4');
  t.equal((data[3] ?? 0) & 0x0f, 2, 'response data format 2');
  t.equal(data[4], data.length - 5);
  t.equal(data.subarray(8, 16).toString('ascii'), 'PLINTH  ');
  const descriptors = [0, 1, 2, 3].map((index) => data.readUInt16BE(58 + index * 2));
  t.same(descriptors, [0x00a0, 0x0960, 0x0460, 0x04c0], 'SAM-5, iSCSI, SPC-4, SBC-3');
  const cut = await send(session, inquiryCdb(false, 0, 36));
  t.equal(cut.dataIn?.length, 36, 'cut to the allocation length');
  t.equal(cut.transferBytes, undefined, 'no residual of its own: dataIn length is what moves');
  t.match(senseOf(await send(session, inquiryCdb(false, 0x80, 255))), { key: 5, asc: 0x24, fieldPointer: { inCdb: true, byte: 2 } });
  t.match(senseOf(await send(session, Buffer.from([0x12, 0x02, 0, 0, 255, 0]))), { key: 5, asc: 0x24, fieldPointer: { byte: 1, bit: 1 } });
});

t.test('VPD pages', async (t) => {
  const fixture = createScsiFixture({ blockSize: { preferredBytes: 4096, maximumBytes: 1024 * 1024 } });
  const session = fixture.open();
  const supported = (await send(session, inquiryCdb(true, 0x00, 255))).dataIn ?? Buffer.alloc(0);
  const pages = [...supported.subarray(4)];
  t.same(pages, [0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2]);
  for (const page of pages) {
    const data = (await send(session, inquiryCdb(true, page, 1024))).dataIn ?? Buffer.alloc(0);
    t.equal(data[1], page, `page 0x${page.toString(16)} answers`);
    t.equal(data.readUInt16BE(2), data.length - 4, `page 0x${page.toString(16)} length`);
  }
  const serial = (await send(session, inquiryCdb(true, 0x80, 255))).dataIn ?? Buffer.alloc(0);
  t.equal(serial.subarray(4).toString('ascii'), fixture.description.id.replace(/-/g, ''));
  const identification = (await send(session, inquiryCdb(true, 0x83, 1024))).dataIn ?? Buffer.alloc(0);
  t.equal(identification[4], 0x01, 'first designator: binary');
  t.equal(identification[5], 0x03, 'NAA, associated with the logical unit');
  t.equal((identification[8] ?? 0) >> 4, 6, 'NAA 6');
  t.match(identification.toString('latin1'), /iqn\.2026-11\.io\.plinth:vol1,t,0x0001/);
  const otherNode = createScsiFixture().open();
  const again = (await send(otherNode, inquiryCdb(true, 0x83, 1024))).dataIn ?? Buffer.alloc(0);
  t.same(again.subarray(8, 24), identification.subarray(8, 24), 'the NAA designator depends only on the volume id');
  const limits = (await send(session, inquiryCdb(true, 0xb0, 64))).dataIn ?? Buffer.alloc(0);
  t.equal(limits[3], 0x3c);
  t.equal(limits[4], 0x00, 'WSNZ = 0: WRITE SAME with 0 blocks writes through the last LBA');
  t.equal(limits.readUInt16BE(6), 8, 'optimal granularity = physical block');
  t.equal(limits.readUInt32BE(8), (1024 * 1024) / BLOCK, 'maximum transfer from the device hints');
  t.ok(limits.readUInt32BE(20) > 0 && limits.readUInt32BE(20) <= 1024 * 1024, 'maximum unmap LBA count');
  t.ok(limits.readUInt32BE(24) > 0, 'maximum unmap descriptors');
  t.ok(limits.readBigUInt64BE(36) >= 256n, 'maximum WRITE SAME length');
  const characteristics = (await send(session, inquiryCdb(true, 0xb1, 64))).dataIn ?? Buffer.alloc(0);
  t.equal(characteristics.readUInt16BE(4), 1, 'non-rotating');
  const provisioning = (await send(session, inquiryCdb(true, 0xb2, 64))).dataIn ?? Buffer.alloc(0);
  t.equal(provisioning[5], 0xe4, 'LBPU LBPWS LBPWS10 LBPRZ');
  t.equal(provisioning[6], 0x02, 'thin');
  t.match(senseOf(await send(session, inquiryCdb(true, 0x99, 255))), { key: 5, asc: 0x24 });
  const thick = createScsiFixture({ capabilities: { trim: false } }).open();
  const thickLimits = (await send(thick, inquiryCdb(true, 0xb0, 64))).dataIn ?? Buffer.alloc(0);
  t.equal(thickLimits.readUInt32BE(20), 0, 'no UNMAP: limits are 0');
  t.equal(((await send(thick, inquiryCdb(true, 0xb2, 64))).dataIn ?? Buffer.alloc(8))[5], 0);
});

t.test('REPORT LUNS and TEST UNIT READY', async (t) => {
  const session = createScsiFixture().open();
  const luns = await send(session, [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0]);
  t.same(luns.dataIn, Buffer.from([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
  t.match(senseOf(await send(session, [0xa0, 0, 3, 0, 0, 0, 0, 0, 0, 16, 0, 0])), { key: 5, asc: 0x24 });
  t.match(senseOf(await send(session, [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0])), { key: 5, asc: 0x24 });
  t.equal((await send(session, [0, 0, 0, 0, 0, 0])).status, 0);
});

t.test('MODE SENSE pages and page control', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  const all = (await send(session, [0x1a, 0, 0x3f, 0, 255, 0])).dataIn ?? Buffer.alloc(0);
  t.equal(all[0], all.length - 1, 'mode data length');
  t.equal(all[2], 0x10, 'DPOFUA, not write protected');
  t.equal(all[3], 8, 'one block descriptor');
  t.equal(all.readUIntBE(4 + 5, 3), BLOCK);
  const pageCodes: number[] = [];
  for (let at = 12; at < all.length; at += 2 + (all[at + 1] ?? 0)) {
    pageCodes.push((all[at] ?? 0) & 0x3f);
  }
  t.same(pageCodes, [0x08, 0x0a, 0x1c]);
  const noDescriptor = (await send(session, [0x1a, 0x08, 0x0a, 0, 255, 0])).dataIn ?? Buffer.alloc(0);
  t.equal(noDescriptor[3], 0);
  t.equal(noDescriptor[4], 0x0a);
  const changeable = (await send(session, [0x1a, 0x08, 0x4a, 0, 255, 0])).dataIn ?? Buffer.alloc(0);
  t.equal(changeable[4 + 2], 0x04, 'D_SENSE is changeable');
  t.equal(changeable[4 + 4], 0x08, 'SWP is changeable');
  t.match(senseOf(await send(session, [0x1a, 0, 0xca, 0, 255, 0])), { key: 5, asc: 0x39 }, 'saved values');
  t.match(senseOf(await send(session, [0x1a, 0, 0x01, 0, 255, 0])), { key: 5, asc: 0x24 }, 'unknown page');
  const four = await send(session, [0x1a, 0, 0x3f, 0, 4, 0]);
  t.equal(four.dataIn?.length, 4);
  const ten = (await send(session, [0x5a, 0, 0x3f, 0, 0, 0, 0, 0x01, 0, 0])).dataIn ?? Buffer.alloc(0);
  t.equal(ten.readUInt16BE(0), ten.length - 2, 'MODE SENSE(10) header');
});

function controlPageSelect(dSense: boolean, swp: boolean): { cdb: number[]; data: Buffer } {
  const data = Buffer.alloc(4 + 12);
  data[4] = 0x0a;
  data[5] = 0x0a;
  data[6] = dSense ? 0x04 : 0;
  data[7] = 0x10;
  data[8] = swp ? 0x08 : 0;
  data.writeUInt16BE(0xffff, 12);
  return { cdb: [0x15, 0x10, 0, 0, data.length, 0], data };
}

t.test('MODE SELECT: D_SENSE switches sense format, SWP write-protects', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  const dSense = controlPageSelect(true, false);
  t.equal((await send(session, dSense.cdb, { dataOut: dSense.data })).status, 0);
  const failed = await send(session, cdb16(0x88, 0xffffffffffffffffn, 1));
  t.equal(failed.sense?.[0], 0x72, 'descriptor format');
  t.match(senseOf(failed), { key: 5, asc: 0x21 });
  const swp = controlPageSelect(false, true);
  t.equal((await send(session, swp.cdb, { dataOut: swp.data })).status, 0);
  const write = await send(session, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(BLOCK) });
  t.equal(write.sense?.[0], 0x70, 'fixed format again');
  t.match(senseOf(write), { key: 7, asc: 0x27 });
  t.equal((await send(session, cdb10(0x28, 0, 1))).status, 0, 'reads still work');
  const header = ((await send(session, [0x1a, 0x08, 0x0a, 0, 255, 0])).dataIn ?? Buffer.alloc(4))[2];
  t.equal(header, 0x90, 'WP in the device-specific parameter');
  const clear = controlPageSelect(false, false);
  t.equal((await send(session, clear.cdb, { dataOut: clear.data })).status, 0);
  t.equal((await send(session, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(BLOCK) })).status, 0);
  const bad = controlPageSelect(false, false);
  bad.data[7] = 0x00;
  t.match(senseOf(await send(session, bad.cdb, { dataOut: bad.data })), { key: 5, asc: 0x26, fieldPointer: { inCdb: false, byte: 7 } }, 'unchangeable bits');
  t.match(senseOf(await send(session, [0x15, 0x11, 0, 0, 16, 0], { dataOut: clear.data })), { key: 5, asc: 0x24 }, 'SP');
  const unknownPage = Buffer.from(clear.data);
  unknownPage[4] = 0x02;
  t.match(senseOf(await send(session, clear.cdb, { dataOut: unknownPage })), { key: 5, asc: 0x26 });
});

t.test('sense encodings', async (t) => {
  const fixed = encodeFixedSense({
    senseKey: SenseKey.ILLEGAL_REQUEST,
    asc: Asc.INVALID_FIELD_IN_CDB,
    fieldPointer: { inCdb: true, byte: 1, bit: 5 },
  });
  t.same([...fixed], [0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0xcd, 0, 1]);
  const info = encodeFixedSense({ senseKey: SenseKey.MISCOMPARE, asc: Asc.MISCOMPARE_DURING_VERIFY, information: 700n });
  t.equal(info[0], 0xf0, 'VALID');
  t.equal(info.readUInt32BE(3), 700);
  const descriptor = encodeDescriptorSense({
    senseKey: SenseKey.MISCOMPARE,
    asc: Asc.MISCOMPARE_DURING_VERIFY,
    information: 0x1_0000_0000n,
    fieldPointer: { inCdb: false, byte: 8 },
  });
  t.equal(descriptor[0], 0x72);
  t.equal(descriptor[7], 20);
  t.equal(descriptor.readBigUInt64BE(12), 0x1_0000_0000n);
  t.equal(descriptor[20], 0x02);
  t.equal(descriptor[24], 0x80, 'SKSV, parameter list');
});
