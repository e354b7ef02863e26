import pino from 'pino';
import t from 'tap';
import { PlinthError } from '../../../common/plinth-error.js';
import {
  decodeExportNameReply,
  decodeInfoReply,
  decodeOptionReply,
  encodeInfoRequestData,
  encodeMetaContextData,
  type InfoReply,
  type OptionReply,
} from '../../../blockdev/nbd/client-codec.js';
import {
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_TRIM,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_NAME,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_EXTENDED_HEADERS,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
} from '../../../blockdev/nbd/constants.js';
import { Handshake, type HandshakeOutcome } from '../../../blockdev/nbd/handshake.js';
import { resolveNbdLimits } from '../../../blockdev/nbd/limits.js';
import { ProtocolError } from '../../../blockdev/nbd/protocol-error.js';
import { MemoryBlockDevice } from '../../helpers/memory-block-device.js';
import { StaticExportProvider } from './helpers/static-export-provider.js';

/** The option state machine alone: options in, replies and outcomes out, no sockets. */

const logger = pino({ level: 'silent' });
const client = { protocol: 'nbd' as const, connectionId: 'test-1', remoteAddress: '127.0.0.1:1' };

function setup(maxOptionsPerHandshake = 1024): { handshake: Handshake; provider: StaticExportProvider } {
  const provider = new StaticExportProvider([
    { name: 'vol1', description: 'first volume', device: new MemoryBlockDevice({ sizeBytes: 1 << 20 }) },
    {
      name: 'vol1@snap',
      device: new MemoryBlockDevice({ sizeBytes: 1 << 20, capabilities: { readOnly: true } }),
      readOnly: true,
    },
  ]);
  const handshake = new Handshake(
    { limits: resolveNbdLimits({ maxOptionsPerHandshake }), client },
    { exports: provider, logger },
  );
  handshake.onClientFlags({ fixedNewstyle: true, noZeroes: true });
  return { handshake, provider };
}

function replies(outcome: HandshakeOutcome): OptionReply[] {
  return outcome.replies.map((bytes) => {
    const reply = decodeOptionReply(bytes);
    if (reply === undefined || reply instanceof ProtocolError) throw new Error('bad option reply');
    return reply;
  });
}

function types(outcome: HandshakeOutcome): number[] {
  return replies(outcome).map((reply) => reply.replyType);
}

function infos(outcome: HandshakeOutcome): InfoReply[] {
  return replies(outcome)
    .filter((reply) => reply.replyType === NBD_REP_INFO)
    .map((reply) => {
      const info = decodeInfoReply(reply.data);
      if (info instanceof ProtocolError) throw info;
      return info;
    });
}

t.test('LIST answers one NBD_REP_SERVER per export, then ACK', async (t) => {
  const { handshake } = setup();
  const outcome = await handshake.onOption(NBD_OPT_LIST, Buffer.alloc(0));
  t.equal(outcome.kind, 'continue');
  t.same(types(outcome), [NBD_REP_SERVER, NBD_REP_SERVER, NBD_REP_ACK]);
  const first = replies(outcome)[0];
  t.equal(first?.data.subarray(4, 8).toString(), 'vol1');
  t.equal(first?.data.subarray(8).toString(), 'first volume');
  t.same(types(await handshake.onOption(NBD_OPT_LIST, Buffer.alloc(1))), [NBD_REP_ERR_INVALID], 'LIST with data');
});

t.test('INFO describes without opening; unknown and "" names get ERR_UNKNOWN', async (t) => {
  const { handshake, provider } = setup();
  const outcome = await handshake.onOption(
    NBD_OPT_INFO,
    encodeInfoRequestData('vol1', [NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE]),
  );
  t.equal(outcome.kind, 'continue');
  t.equal(types(outcome).at(-1), NBD_REP_ACK);
  const got = infos(outcome);
  t.ok(got.some((info) => info.info === 'export' && info.sizeBytes === 1 << 20));
  t.ok(got.some((info) => info.info === 'name' && info.name === 'vol1'));
  t.ok(got.some((info) => info.info === 'description' && info.description === 'first volume'));
  t.ok(got.some((info) => info.info === 'blockSize'));
  t.equal(provider.opened, 0, 'INFO must not attach the volume');
  for (const name of ['', 'nope']) {
    const unknown = await handshake.onOption(NBD_OPT_INFO, encodeInfoRequestData(name, []));
    t.same(types(unknown), [NBD_REP_ERR_UNKNOWN], `INFO "${name}"`);
  }
  const go = await handshake.onOption(NBD_OPT_GO, encodeInfoRequestData('', []));
  t.same(types(go), [NBD_REP_ERR_UNKNOWN], 'the default export name is not special');
});

t.test('INFO then GO with the same parameters report the same flags', async (t) => {
  const { handshake } = setup();
  await handshake.onOption(NBD_OPT_STRUCTURED_REPLY, Buffer.alloc(0));
  const request = encodeInfoRequestData('vol1', [NBD_INFO_BLOCK_SIZE]);
  const info = infos(await handshake.onOption(NBD_OPT_INFO, request));
  const go = await handshake.onOption(NBD_OPT_GO, request);
  t.equal(go.kind, 'transmission');
  t.same(infos(go), info);
});

t.test('GO enters transmission with the device flags and block sizes', async (t) => {
  const { handshake, provider } = setup();
  t.same(types(await handshake.onOption(NBD_OPT_STRUCTURED_REPLY, Buffer.alloc(0))), [NBD_REP_ACK]);
  const setMeta = await handshake.onOption(NBD_OPT_SET_META_CONTEXT, encodeMetaContextData('vol1', ['base:allocation']));
  t.same(types(setMeta), [NBD_REP_META_CONTEXT, NBD_REP_ACK]);
  const outcome = await handshake.onOption(NBD_OPT_GO, encodeInfoRequestData('vol1', [NBD_INFO_BLOCK_SIZE]));
  if (outcome.kind !== 'transmission') throw new Error('expected transmission');
  t.equal(types(outcome).at(-1), NBD_REP_ACK);
  const { negotiated } = outcome;
  t.equal(negotiated.exportName, 'vol1');
  t.equal(negotiated.structuredReplies, true);
  t.equal(negotiated.blockStatusContextId, 1);
  t.ok(negotiated.transmissionFlags & NBD_FLAG_CAN_MULTI_CONN);
  t.ok(negotiated.transmissionFlags & NBD_FLAG_SEND_DF);
  t.equal(provider.opened, 1);
  t.same(provider.clients[0], client, 'the provider learns who opened the export');
});

t.test('meta context selected for another export does not carry over to GO', async (t) => {
  const { handshake } = setup();
  await handshake.onOption(NBD_OPT_STRUCTURED_REPLY, Buffer.alloc(0));
  await handshake.onOption(NBD_OPT_SET_META_CONTEXT, encodeMetaContextData('vol1@snap', ['base:allocation']));
  const outcome = await handshake.onOption(NBD_OPT_GO, encodeInfoRequestData('vol1', []));
  t.equal(outcome.kind === 'transmission' ? outcome.negotiated.blockStatusContextId : 'x', undefined);
});

t.test('meta context options need structured replies and valid data', async (t) => {
  const { handshake } = setup();
  const data = encodeMetaContextData('vol1', ['base:allocation']);
  t.same(types(await handshake.onOption(NBD_OPT_SET_META_CONTEXT, data)), [NBD_REP_ERR_INVALID]);
  t.same(types(await handshake.onOption(NBD_OPT_LIST_META_CONTEXT, data)), [NBD_REP_ERR_INVALID]);
  await handshake.onOption(NBD_OPT_STRUCTURED_REPLY, Buffer.alloc(0));
  const listAll = await handshake.onOption(NBD_OPT_LIST_META_CONTEXT, encodeMetaContextData('vol1', []));
  t.same(types(listAll), [NBD_REP_META_CONTEXT, NBD_REP_ACK]);
  t.equal(replies(listAll)[0]?.data.readUInt32BE(0), 0, 'LIST ids are zero');
  const wildcard = await handshake.onOption(NBD_OPT_LIST_META_CONTEXT, encodeMetaContextData('vol1', ['base:']));
  t.equal(replies(wildcard)[0]?.data.subarray(4).toString(), 'base:allocation');
  const unknown = await handshake.onOption(NBD_OPT_SET_META_CONTEXT, encodeMetaContextData('vol1', ['qemu:dirty-bitmap:x']));
  t.same(types(unknown), [NBD_REP_ACK], 'unknown contexts are simply not returned');
  const truncated = data.subarray(0, data.length - 2);
  t.same(types(await handshake.onOption(NBD_OPT_SET_META_CONTEXT, truncated)), [NBD_REP_ERR_INVALID]);
  t.same(types(await handshake.onOption(NBD_OPT_STRUCTURED_REPLY, Buffer.alloc(3))), [NBD_REP_ERR_INVALID]);
});

t.test('unsupported options get ERR_UNSUP and negotiation goes on', async (t) => {
  const { handshake } = setup();
  for (const option of [NBD_OPT_EXTENDED_HEADERS, 4, 12, 0xdeadbeef]) {
    const outcome = await handshake.onOption(option, Buffer.alloc(0));
    t.equal(outcome.kind, 'continue');
    t.same(types(outcome), [NBD_REP_ERR_UNSUP], `option ${option}`);
  }
});

t.test('NOTLS: STARTTLS gets ERR_POLICY and negotiation goes on in clear', async (t) => {
  const { handshake } = setup();
  const outcome = await handshake.onOption(NBD_OPT_STARTTLS, Buffer.alloc(0));
  t.equal(outcome.kind, 'continue');
  t.same(types(outcome), [NBD_REP_ERR_POLICY], 'proto.md NOTLS mode: POLICY or UNSUP, never TLS_REQD');
  t.same(types(await handshake.onOption(NBD_OPT_LIST, Buffer.alloc(0))), [NBD_REP_SERVER, NBD_REP_SERVER, NBD_REP_ACK]);
});

function setupTls(tlsMode: 'optional' | 'required'): { handshake: Handshake; provider: StaticExportProvider } {
  const provider = new StaticExportProvider([{ name: 'secret-vol', device: new MemoryBlockDevice({ sizeBytes: 1 << 20 }) }]);
  const handshake = new Handshake({ limits: resolveNbdLimits(), client, tlsMode }, { exports: provider, logger });
  handshake.onClientFlags({ fixedNewstyle: true, noZeroes: true });
  return { handshake, provider };
}

t.test('FORCEDTLS: every option but STARTTLS and ABORT gets TLS_REQD before TLS, nothing leaks', async (t) => {
  const { handshake, provider } = setupTls('required');
  const options = [
    NBD_OPT_LIST,
    NBD_OPT_INFO,
    NBD_OPT_GO,
    NBD_OPT_STRUCTURED_REPLY,
    NBD_OPT_LIST_META_CONTEXT,
    NBD_OPT_SET_META_CONTEXT,
    NBD_OPT_EXTENDED_HEADERS,
    0xdeadbeef,
  ];
  for (const option of options) {
    const data = option === NBD_OPT_GO || option === NBD_OPT_INFO ? encodeInfoRequestData('secret-vol', []) : Buffer.alloc(0);
    const outcome = await handshake.onOption(option, data);
    t.equal(outcome.kind, 'continue', `option ${option}`);
    t.same(types(outcome), [NBD_REP_ERR_TLS_REQD], `option ${option}`);
    t.notMatch(Buffer.concat(outcome.replies).toString('latin1'), /secret-vol/, 'no export name in clear');
  }
  t.equal(provider.opened, 0, 'no export opened in clear');
  const exportName = await handshake.onOption(NBD_OPT_EXPORT_NAME, Buffer.from('secret-vol'));
  t.equal(exportName.kind, 'close', 'EXPORT_NAME cannot be errored: the session ends');
  t.same(exportName.replies, []);
  t.equal(provider.opened, 0);
});

t.test('FORCEDTLS: ABORT is still acknowledged before TLS', async (t) => {
  const { handshake } = setupTls('required');
  const outcome = await handshake.onOption(NBD_OPT_ABORT, Buffer.alloc(0));
  t.equal(outcome.kind, 'close');
  t.same(types(outcome), [NBD_REP_ACK]);
});

t.test('STARTTLS: ACK and upgrade, then options work; a second STARTTLS is INVALID', async (t) => {
  const { handshake } = setupTls('required');
  t.same(types(await handshake.onOption(NBD_OPT_STARTTLS, Buffer.alloc(2))), [NBD_REP_ERR_INVALID], 'with data');
  t.notOk(handshake.isTlsActive);
  const started = await handshake.onOption(NBD_OPT_STARTTLS, Buffer.alloc(0));
  t.equal(started.kind, 'starttls');
  t.same(types(started), [NBD_REP_ACK]);
  t.ok(handshake.isTlsActive);
  const again = await handshake.onOption(NBD_OPT_STARTTLS, Buffer.alloc(0));
  t.equal(again.kind, 'continue');
  t.same(types(again), [NBD_REP_ERR_INVALID], 'proto.md: STARTTLS once TLS is up MUST be INVALID');
  t.same(types(await handshake.onOption(NBD_OPT_LIST, Buffer.alloc(0))), [NBD_REP_SERVER, NBD_REP_ACK]);
  const go = await handshake.onOption(NBD_OPT_GO, encodeInfoRequestData('secret-vol', []));
  t.equal(go.kind, 'transmission');
  if (go.kind === 'transmission') go.negotiated.handle.release();
});

t.test('STARTTLS forgets structured replies and meta contexts negotiated in clear', async (t) => {
  const { handshake } = setupTls('optional');
  t.same(types(await handshake.onOption(NBD_OPT_STRUCTURED_REPLY, Buffer.alloc(0))), [NBD_REP_ACK]);
  const started = await handshake.onOption(NBD_OPT_STARTTLS, Buffer.alloc(0));
  t.equal(started.kind, 'starttls');
  const go = await handshake.onOption(NBD_OPT_GO, encodeInfoRequestData('secret-vol', []));
  if (go.kind !== 'transmission') throw new Error('expected transmission');
  t.equal(go.negotiated.structuredReplies, false, 'a MitM could have injected it before TLS');
  t.equal(go.negotiated.blockStatusContextId, undefined);
  go.negotiated.handle.release();
});

t.test('optional TLS: plain negotiation works and no option gets TLS_REQD', async (t) => {
  const { handshake } = setupTls('optional');
  t.same(types(await handshake.onOption(NBD_OPT_LIST, Buffer.alloc(0))), [NBD_REP_SERVER, NBD_REP_ACK]);
  const outcome = await handshake.onOption(NBD_OPT_EXPORT_NAME, Buffer.from('secret-vol'));
  t.equal(outcome.kind, 'transmission');
  if (outcome.kind === 'transmission') outcome.negotiated.handle.release();
});

t.test('a client without fixed newstyle is treated as NOTLS: POLICY, never TLS_REQD', async (t) => {
  const provider = new StaticExportProvider([{ name: 'v', device: new MemoryBlockDevice({ sizeBytes: 512 }) }]);
  const handshake = new Handshake({ limits: resolveNbdLimits(), client, tlsMode: 'required' }, { exports: provider, logger });
  handshake.onClientFlags({ fixedNewstyle: false, noZeroes: false });
  t.same(types(await handshake.onOption(NBD_OPT_STARTTLS, Buffer.alloc(0))), [NBD_REP_ERR_POLICY]);
  t.same(types(await handshake.onOption(NBD_OPT_LIST, Buffer.alloc(0))), [NBD_REP_ERR_POLICY]);
  t.equal((await handshake.onOption(NBD_OPT_EXPORT_NAME, Buffer.from('v'))).kind, 'close');
});

t.test('malformed GO gets ERR_INVALID', async (t) => {
  const { handshake, provider } = setup();
  const good = encodeInfoRequestData('vol1', [NBD_INFO_NAME]);
  t.same(types(await handshake.onOption(NBD_OPT_GO, good.subarray(0, good.length - 1))), [NBD_REP_ERR_INVALID]);
  t.same(types(await handshake.onOption(NBD_OPT_GO, Buffer.from([0, 0]))), [NBD_REP_ERR_INVALID]);
  t.equal(provider.opened, 0);
});

t.test('open failures map to option errors and keep the handshake going', async (t) => {
  const { handshake, provider } = setup();
  provider.failOpen('vol1', new PlinthError('VOLUME_ATTACHED', 'vol1 is attached to node-2'));
  const outcome = await handshake.onOption(NBD_OPT_GO, encodeInfoRequestData('vol1', []));
  t.equal(outcome.kind, 'continue');
  t.same(types(outcome), [NBD_REP_ERR_POLICY]);
  t.match(replies(outcome)[0]?.data.toString(), /attached to node-2/);
});

t.test('EXPORT_NAME: reply without zeroes, or close for an unknown name', async (t) => {
  const { handshake } = setup();
  const unknown = await handshake.onOption(NBD_OPT_EXPORT_NAME, Buffer.from('nope'));
  t.equal(unknown.kind, 'close');
  t.same(unknown.replies, [], 'proto.md: EXPORT_NAME cannot be answered with an error');
  const outcome = await handshake.onOption(NBD_OPT_EXPORT_NAME, Buffer.from('vol1@snap'));
  if (outcome.kind !== 'transmission') throw new Error('expected transmission');
  t.equal(outcome.replies[0]?.length, 10, 'NO_ZEROES negotiated');
  const reply = decodeExportNameReply(outcome.replies[0] ?? Buffer.alloc(0));
  if (reply instanceof ProtocolError) throw reply;
  t.ok(reply.transmissionFlags & NBD_FLAG_READ_ONLY);
  t.notOk(reply.transmissionFlags & NBD_FLAG_SEND_TRIM);
});

t.test('EXPORT_NAME sends 124 zero bytes when the client did not ask otherwise', async (t) => {
  const provider = new StaticExportProvider([{ name: 'v', device: new MemoryBlockDevice({ sizeBytes: 512 }) }]);
  const handshake = new Handshake({ limits: resolveNbdLimits(), client }, { exports: provider, logger });
  handshake.onClientFlags({ fixedNewstyle: true, noZeroes: false });
  const outcome = await handshake.onOption(NBD_OPT_EXPORT_NAME, Buffer.from('v'));
  t.equal(outcome.replies[0]?.length, 134);
});

t.test('ABORT is acknowledged and ends the session', async (t) => {
  const { handshake } = setup();
  const outcome = await handshake.onOption(NBD_OPT_ABORT, Buffer.from('ignored'));
  t.equal(outcome.kind, 'close');
  t.same(types(outcome), [NBD_REP_ACK]);
});

t.test('too many options end the session', async (t) => {
  const { handshake } = setup(3);
  for (let index = 0; index < 3; index += 1) {
    t.equal((await handshake.onOption(NBD_OPT_LIST, Buffer.alloc(0))).kind, 'continue');
  }
  const outcome = await handshake.onOption(NBD_OPT_LIST, Buffer.alloc(0));
  t.equal(outcome.kind, 'close');
  t.same(types(outcome), [NBD_REP_ERR_POLICY]);
});

