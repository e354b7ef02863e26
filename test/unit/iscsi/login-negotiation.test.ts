import t from 'tap';
import { ChapAuthenticator, chapResponse, createStaticChapSecrets, NO_CHAP, type ChapSecretProvider } from '../../../blockdev/iscsi/chap.js';
import { LoginNegotiator, type LoginReply } from '../../../blockdev/iscsi/login-negotiator.js';
import { OperationalNegotiation, type TargetPreferences } from '../../../blockdev/iscsi/login-negotiation.js';
import { decodeLoginRequest, type LoginRequestPdu } from '../../../blockdev/iscsi/pdu-decode.js';
import { decodeTextPairs, encodeTextPairs, type TextPair } from '../../../blockdev/iscsi/text-keys.js';
import { loginRequest } from './helpers/initiator-pdus.js';

/** Login: text keys, operational negotiation rules (RFC 7143 §6.2, §13), CHAP (§12.1.3), stages (§6.3). */

const PREFERENCES: TargetPreferences = {
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 1048576,
  firstBurstLength: 262144,
  maxOutstandingR2T: 8,
  initialR2T: false,
  immediateData: true,
  allowHeaderDigest: true,
  allowDataDigest: false,
};

function answers(pairs: TextPair[]): Record<string, string> {
  const negotiation = new OperationalNegotiation(PREFERENCES);
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const reply = negotiation.answer(pair);
    if (reply !== undefined) out[reply.key] = reply.value;
  }
  return out;
}

t.test('text pairs: NUL separated, last NUL optional, malformed refused', async (t) => {
  const data = encodeTextPairs([{ key: 'A', value: 'x=y' }, { key: 'B', value: '' }]);
  t.same(decodeTextPairs(data), [{ key: 'A', value: 'x=y' }, { key: 'B', value: '' }]);
  t.same(decodeTextPairs(Buffer.from('A=1\0B=2')), [{ key: 'A', value: '1' }, { key: 'B', value: '2' }]);
  t.match(decodeTextPairs(Buffer.from('novalue\0')), { code: 'PROTOCOL_ERROR', reason: 'BAD_TEXT' });
  t.match(decodeTextPairs(Buffer.from(`${'K'.repeat(64)}=1\0`)), { reason: 'BAD_TEXT' }, 'key over 63 bytes');
});

t.test('numbers take the minimum, booleans AND/OR, lists the first we support', async (t) => {
  const result = answers([
    { key: 'MaxBurstLength', value: '16776192' },
    { key: 'FirstBurstLength', value: '4096' },
    { key: 'MaxOutstandingR2T', value: '64' },
    { key: 'MaxConnections', value: '8' },
    { key: 'ErrorRecoveryLevel', value: '2' },
    { key: 'DefaultTime2Retain', value: '20' },
    { key: 'DefaultTime2Wait', value: '5' },
    { key: 'InitialR2T', value: 'No' },
    { key: 'ImmediateData', value: 'Yes' },
    { key: 'DataPDUInOrder', value: 'No' },
    { key: 'DataSequenceInOrder', value: 'No' },
    { key: 'IFMarker', value: 'Yes' },
    { key: 'HeaderDigest', value: 'CRC32C,None' },
    { key: 'DataDigest', value: 'CRC32C,None' },
  ]);
  t.same(result, {
    MaxBurstLength: '1048576',
    FirstBurstLength: '4096',
    MaxOutstandingR2T: '8',
    MaxConnections: '1',
    ErrorRecoveryLevel: '0',
    DefaultTime2Retain: '0',
    DefaultTime2Wait: '5',
    InitialR2T: 'No',
    ImmediateData: 'Yes',
    DataPDUInOrder: 'Yes',
    DataSequenceInOrder: 'Yes',
    IFMarker: 'No',
    HeaderDigest: 'CRC32C',
    DataDigest: 'None',
  });
  t.same(answers([{ key: 'InitialR2T', value: 'Yes' }, { key: 'ImmediateData', value: 'No' }]), { InitialR2T: 'Yes', ImmediateData: 'No' });
});

t.test('bad values are rejected, unknown keys not understood, declarations unanswered', async (t) => {
  t.same(
    answers([
      { key: 'MaxBurstLength', value: '100' },
      { key: 'MaxRecvDataSegmentLength', value: '99999999' },
      { key: 'InitialR2T', value: 'Maybe' },
      { key: 'DataDigest', value: 'MD5' },
      { key: 'X-com.example.Key', value: '1' },
      { key: 'TargetAlias', value: 'x' },
      { key: 'OFMarkInt', value: '1~65535' },
    ]),
    {
      MaxBurstLength: 'Reject',
      MaxRecvDataSegmentLength: 'Reject',
      InitialR2T: 'Reject',
      DataDigest: 'Reject',
      'X-com.example.Key': 'NotUnderstood',
      TargetAlias: 'Irrelevant',
      OFMarkInt: 'Irrelevant',
    },
  );
  const negotiation = new OperationalNegotiation(PREFERENCES);
  t.equal(negotiation.answer({ key: 'MaxRecvDataSegmentLength', value: '65536' }), undefined);
  negotiation.answer({ key: 'MaxBurstLength', value: '8192' });
  negotiation.answer({ key: 'FirstBurstLength', value: '65536' });
  t.match(negotiation.result(), { initiatorMaxRecvDataSegmentLength: 65536, maxBurstLength: 8192, firstBurstLength: 8192 }, 'FirstBurstLength never exceeds MaxBurstLength');
  t.same(negotiation.declarations(), [{ key: 'MaxRecvDataSegmentLength', value: '262144' }]);
  t.same(negotiation.declarations(), [], 'declared once');
});

function request(fields: Parameters<typeof loginRequest>[0]): LoginRequestPdu {
  const pdu = loginRequest(fields);
  const decoded = decodeLoginRequest({ bhs: pdu.bhs, ahs: Buffer.alloc(0), data: pdu.data ?? Buffer.alloc(0) });
  if (decoded instanceof Error) throw decoded;
  return decoded;
}

function negotiator(chap: ChapSecretProvider = NO_CHAP, random = Buffer.alloc(17, 0x11)): LoginNegotiator {
  return new LoginNegotiator(
    { preferences: PREFERENCES, portalGroupTag: 1, maxTextBytes: 65536 },
    { volumeExists: async (name) => name === 'vol1', chapSecrets: chap, randomBytes: (count) => random.subarray(0, count) },
  );
}

function keysOf(reply: LoginReply): Map<string, string> {
  return new Map(reply.pairs.map((pair) => [pair.key, pair.value]));
}

const INITIATOR = { key: 'InitiatorName', value: 'iqn.2026-01.test:init' };

t.test('a normal session: security with AuthMethod=None, operational, full feature', async (t) => {
  const login = negotiator();
  const first = await login.handle(
    request({ transit: true, csg: 0, nsg: 1, pairs: [INITIATOR, { key: 'TargetName', value: 'iqn.2026-11.io.plinth:vol1' }, { key: 'AuthMethod', value: 'CHAP,None' }] }),
  );
  t.match(first, { status: 0, transit: true, currentStage: 0, nextStage: 1, complete: false });
  t.equal(keysOf(first).get('AuthMethod'), 'None');
  t.equal(keysOf(first).get('TargetPortalGroupTag'), '1');
  const second = await login.handle(request({ transit: true, csg: 1, nsg: 3, pairs: [{ key: 'MaxRecvDataSegmentLength', value: '65536' }, { key: 'ImmediateData', value: 'Yes' }] }));
  t.match(second, { status: 0, transit: true, currentStage: 1, nextStage: 3, complete: true });
  t.equal(keysOf(second).get('MaxRecvDataSegmentLength'), '262144', 'our declaration');
  t.match(login.identity(), { sessionType: 'normal', volumeName: 'vol1', initiatorName: 'iqn.2026-01.test:init', isid: '400001370000' });
  t.equal(login.parameters().initiatorMaxRecvDataSegmentLength, 65536);
});

t.test('login refusals carry the RFC status', async (t) => {
  const unknown = await negotiator().handle(request({ transit: true, csg: 0, nsg: 1, pairs: [INITIATOR, { key: 'TargetName', value: 'iqn.2026-11.io.plinth:nope' }] }));
  t.equal(unknown.status, 0x0203, 'unknown target: Not found');
  const foreign = await negotiator().handle(request({ transit: true, csg: 0, nsg: 1, pairs: [INITIATOR, { key: 'TargetName', value: 'iqn.2000-01.other:vol1' }] }));
  t.equal(foreign.status, 0x0203);
  const noName = await negotiator().handle(request({ transit: true, csg: 0, nsg: 1, pairs: [{ key: 'SessionType', value: 'Discovery' }] }));
  t.equal(noName.status, 0x0207, 'InitiatorName missing');
  const noTarget = await negotiator().handle(request({ transit: true, csg: 0, nsg: 1, pairs: [INITIATOR] }));
  t.equal(noTarget.status, 0x0207, 'TargetName missing on a normal session');
  const badType = await negotiator().handle(request({ transit: true, csg: 0, nsg: 1, pairs: [INITIATOR, { key: 'SessionType', value: 'Bogus' }] }));
  t.equal(badType.status, 0x0209);
  const badStage = await negotiator().handle(request({ transit: true, csg: 3, nsg: 3, pairs: [INITIATOR] }));
  t.equal(badStage.status, 0x0200);
});

t.test('a discovery session may skip the security stage; C-bit text is gathered first', async (t) => {
  const login = negotiator();
  const whole = encodeTextPairs([INITIATOR, { key: 'SessionType', value: 'Discovery' }, { key: 'HeaderDigest', value: 'None' }]);
  const partOne = request({ transit: false, continue: true, csg: 1, nsg: 0, pairs: [] });
  const withData = { ...partOne, data: whole.subarray(0, 10) };
  const ack = await login.handle(withData);
  t.match(ack, { status: 0, transit: false, pairs: [] }, 'an empty response acknowledges the first part');
  const final = await login.handle({ ...request({ transit: true, csg: 1, nsg: 3, pairs: [] }), data: whole.subarray(10) });
  t.match(final, { status: 0, complete: true });
  t.equal(keysOf(final).get('HeaderDigest'), 'None');
  t.equal(login.identity()?.sessionType, 'discovery');
});

const SECRETS = createStaticChapSecrets({
  allTargets: { initiator: { user: 'alice', secret: 'alice-secret-12' }, target: { user: 'plinth', secret: 'target-secret-12' } },
});

async function chapLogin(secret: string, mutual?: { identifier: number; challenge: Buffer }): Promise<{ final: LoginReply; login: LoginNegotiator }> {
  const login = negotiator(SECRETS);
  const first = await login.handle(
    request({ transit: false, csg: 0, nsg: 1, pairs: [INITIATOR, { key: 'TargetName', value: 'iqn.2026-11.io.plinth:vol1' }, { key: 'AuthMethod', value: 'CHAP,None' }] }),
  );
  if (keysOf(first).get('AuthMethod') !== 'CHAP') throw new Error('CHAP not chosen');
  const challenge = await login.handle(request({ transit: false, csg: 0, nsg: 1, pairs: [{ key: 'CHAP_A', value: '7,5' }] }));
  const keys = keysOf(challenge);
  const identifier = Number(keys.get('CHAP_I'));
  const bytes = Buffer.from((keys.get('CHAP_C') ?? '').slice(2), 'hex');
  const response = chapResponse(identifier, secret, bytes);
  const pairs = [
    { key: 'CHAP_N', value: 'alice' },
    { key: 'CHAP_R', value: `0x${response.toString('hex')}` },
  ];
  if (mutual !== undefined) {
    pairs.push({ key: 'CHAP_I', value: String(mutual.identifier) }, { key: 'CHAP_C', value: `0x${mutual.challenge.toString('hex')}` });
  }
  const final = await login.handle(request({ transit: true, csg: 0, nsg: 1, pairs }));
  return { final, login };
}

t.test('CHAP one-way: the right secret passes, a wrong one is an authentication failure', async (t) => {
  const good = await chapLogin('alice-secret-12');
  t.match(good.final, { status: 0, transit: true, nextStage: 1 });
  const bad = await chapLogin('wrong-secret-00');
  t.equal(bad.final.status, 0x0201);
});

t.test('CHAP mutual: the target proves its secret; a reflected challenge is refused', async (t) => {
  const challenge = Buffer.alloc(16, 0x42);
  const { final } = await chapLogin('alice-secret-12', { identifier: 9, challenge });
  t.equal(final.status, 0);
  const keys = keysOf(final);
  t.equal(keys.get('CHAP_N'), 'plinth');
  t.equal(keys.get('CHAP_R'), `0x${chapResponse(9, 'target-secret-12', challenge).toString('hex')}`);
  const reflected = await chapLogin('alice-secret-12', { identifier: 9, challenge: Buffer.alloc(16, 0x11) });
  t.equal(reflected.final.status, 0x0201, 'our own challenge (0x11...) sent back');
});

t.test('CHAP required: None alone or skipping security fails; no CHAP_A=5 fails', async (t) => {
  const onlyNone = await negotiator(SECRETS).handle(
    request({ transit: true, csg: 0, nsg: 1, pairs: [INITIATOR, { key: 'TargetName', value: 'iqn.2026-11.io.plinth:vol1' }, { key: 'AuthMethod', value: 'None' }] }),
  );
  t.equal(onlyNone.status, 0x0201);
  const skipped = await negotiator(SECRETS).handle(request({ transit: true, csg: 1, nsg: 3, pairs: [INITIATOR, { key: 'TargetName', value: 'iqn.2026-11.io.plinth:vol1' }] }));
  t.equal(skipped.status, 0x0201);
  const authenticator = new ChapAuthenticator({ initiator: { user: 'a', secret: 'b' }, target: undefined }, { randomBytes: (n) => Buffer.alloc(n) });
  t.match(authenticator.step(new Map([['CHAP_A', '7']])), { kind: 'failed' });
});
