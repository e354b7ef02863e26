import { once } from 'node:events';
import { connect, createServer, type TLSSocket } from 'node:tls';
import t from 'tap';
import { joinProof, newJoinToken, parseJoinToken, sessionBinding, verifyJoinProof } from '../../../../daemon/tls/join-token.js';
import { createCa, generateKeyPair, issueNodeCert } from '../../../../daemon/tls/x509-issuer.js';

/**
 * Join-token proofs bound to one TLS session (join-token.ts): right token
 * accepted, wrong or missing refused, and a proof made on one session is
 * worthless on another (what stops a man in the middle from relaying it).
 */

/** One real TLS session on loopback: both ends, after the handshake. */
async function tlsPair(test: { teardown(fn: () => unknown): void }): Promise<{ server: TLSSocket; client: TLSSocket }> {
  const ca = await createCa('join-token test');
  const keys = await generateKeyPair();
  const cert = await issueNodeCert(ca, { nodeId: 'member', publicKeyPem: keys.publicKeyPem, hosts: [] });
  const server = createServer({ key: keys.privateKeyPem, cert, minVersion: 'TLSv1.3' });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  const accepted = once(server, 'secureConnection') as Promise<[TLSSocket]>;
  const client = connect({ host: '127.0.0.1', port: address.port, rejectUnauthorized: false });
  await once(client, 'secureConnect');
  const [serverSocket] = await accepted;
  test.teardown(() => {
    client.destroy();
    serverSocket.destroy();
    server.close();
  });
  return { server: serverSocket, client };
}

t.test('both ends of one session compute the same binding; another session a different one', async (t) => {
  const first = await tlsPair(t);
  const second = await tlsPair(t);
  t.same(sessionBinding(first.client), sessionBinding(first.server));
  t.equal(sessionBinding(first.client).length, 32);
  t.notSame(sessionBinding(first.client), sessionBinding(second.client));
});

t.test('the right token is accepted, in each role', async (t) => {
  const { client, server } = await tlsPair(t);
  const token = newJoinToken();
  const joinerProof = joinProof(token, 'joiner', sessionBinding(client));
  t.doesNotThrow(() => verifyJoinProof(token, 'joiner', sessionBinding(server), joinerProof));
  const memberProof = joinProof(token, 'member', sessionBinding(server));
  t.doesNotThrow(() => verifyJoinProof(token, 'member', sessionBinding(client), memberProof));
  t.throws(() => verifyJoinProof(token, 'member', sessionBinding(client), joinerProof), { code: 'UNAUTHORIZED' }, 'roles do not mix');
});

t.test('a wrong token, a missing proof and a proof from another session are refused', async (t) => {
  const { client, server } = await tlsPair(t);
  const other = await tlsPair(t);
  const token = newJoinToken();
  t.throws(() => verifyJoinProof(token, 'joiner', sessionBinding(server), joinProof(newJoinToken(), 'joiner', sessionBinding(client))), {
    code: 'UNAUTHORIZED',
    message: /wrong join token/,
  });
  t.throws(() => verifyJoinProof(token, 'joiner', sessionBinding(server), undefined), { code: 'UNAUTHORIZED', message: /--join-token/ });
  t.throws(() => verifyJoinProof(token, 'joiner', sessionBinding(server), 'abc'), { code: 'UNAUTHORIZED' });
  const relayed = joinProof(token, 'joiner', sessionBinding(other.client));
  t.throws(() => verifyJoinProof(token, 'joiner', sessionBinding(server), relayed), { code: 'UNAUTHORIZED' }, 'bound to its own session');
});

t.test('tokens are 64 hex digits; anything else is refused before connecting', async (t) => {
  const token = newJoinToken();
  t.match(token, /^[0-9a-f]{64}$/);
  t.equal(parseJoinToken(` ${token.toUpperCase()}\n`, 'x'), token);
  t.throws(() => parseJoinToken('secret', '--join-token'), { code: 'CONFIG_INVALID', message: /--join-token is not a join token/ });
});
