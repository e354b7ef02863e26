import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import t from 'tap';
import { isReplicaConnection, magicAt, PeerListener } from '../../../daemon/cluster/peer-listener.js';
import { callPeer, serveRpcConnection } from '../../../daemon/cluster/peer-rpc.js';
import { PlinthError } from '../../../common/plinth-error.js';

const logger = pino({ level: 'silent' });

async function listener(t: { teardown(fn: () => unknown): void }): Promise<PeerListener> {
  const peer = new PeerListener({ listen: { host: '127.0.0.1', port: 0 }, peekTimeoutMs: 300 }, { logger });
  await peer.listen();
  t.teardown(() => peer.close());
  return peer;
}

/** Send `bytes`, collect everything the route echoes back until it closes. */
function exchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.write(bytes);
  });
}

function echoOnce(tag: string) {
  return (socket: Socket): void => {
    socket.once('data', (chunk: Buffer) => socket.end(Buffer.concat([Buffer.from(tag), chunk])));
  };
}

t.test('routes by the first bytes and replays them to the route', async (t) => {
  const peer = await listener(t);
  peer.route('join', magicAt(0, 'PJN1'), echoOnce('join:'));
  peer.route('replica', isReplicaConnection, echoOnce('replica:'));
  peer.fallback(echoOnce('raft:'));
  const { port } = peer.address();
  t.equal((await exchange(port, Buffer.from('PJN1{"x":1}\n'))).toString(), 'join:PJN1{"x":1}\n');
  const replicaFrame = Buffer.concat([Buffer.from([0, 0, 0, 41]), Buffer.from('PLRQ'), Buffer.alloc(4)]);
  t.same(await exchange(port, replicaFrame), Buffer.concat([Buffer.from('replica:'), replicaFrame]));
  t.equal((await exchange(port, Buffer.from('\0\0\0\x20abcdefgh'))).toString('latin1'), 'raft:\0\0\0\x20abcdefgh');
  t.equal((await exchange(port, Buffer.from('PJ'))).length, 0, 'too few bytes before the peek timeout: dropped');
});

t.test('peer rpc: authenticated by the cluster secret', async (t) => {
  const peer = await listener(t);
  const secret = Buffer.alloc(32, 7);
  peer.route('rpc', magicAt(0, 'PRPC'), (socket) =>
    serveRpcConnection(socket, () => secret, async (request) => {
      if (request.op === 'propose') throw new PlinthError('VOLUME_EXISTS', 'volume x already exists', { name: 'x' });
      return 42;
    }, logger),
  );
  const address = peer.address();
  t.equal(await callPeer(address, { op: 'read' }, { secret, timeoutMs: 2000 }), 42);
  await t.rejects(callPeer(address, { op: 'propose', command: {} }, { secret, timeoutMs: 2000 }), {
    code: 'VOLUME_EXISTS',
    details: { name: 'x' },
  });
  await t.rejects(callPeer(address, { op: 'read' }, { secret: Buffer.alloc(32, 8), timeoutMs: 2000 }), { code: 'UNAUTHORIZED' });
  await t.rejects(callPeer(address, { op: 'read' }, { secret, timeoutMs: 2000, nowMs: Date.now() - 3_600_000 }), {
    code: 'UNAUTHORIZED',
    message: /stale/,
  });
});
