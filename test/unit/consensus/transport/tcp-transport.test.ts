import t from 'tap';
import { connect } from 'node:net';
import { encodeFrame } from '../../../../consensus/transport/frame-codec.js';
import { makeTransport, waitFor } from './transport-helpers.js';

t.test('messages flow both ways after the handshake, sender is the proven id', async (t) => {
  const a = makeTransport('a');
  const b = makeTransport('b');
  t.teardown(async () => {
    await a.transport.close();
    await b.transport.close();
  });
  a.transport.setPeer('b', await b.transport.listen());
  b.transport.setPeer('a', await a.transport.listen());
  for (let i = 0; i < 100; i++) a.transport.send('b', `m${i}`);
  b.transport.send('a', 'hello-a');
  await waitFor(() => b.received.length === 100 && a.received.length === 1);
  t.same(b.received.map((r) => r.message), Array.from({ length: 100 }, (_, i) => `m${i}`), 'in order');
  t.ok(b.received.every((r) => r.from === 'a'));
  t.same(a.received, [{ from: 'b', message: 'hello-a' }]);
  t.equal(a.transport.stats().get('b')?.sent, 100);
});

t.test('a wrong secret is refused and nothing is delivered', async (t) => {
  const good = makeTransport('good');
  const evil = makeTransport('evil', { secret: Buffer.from('wrong') });
  t.teardown(async () => {
    await good.transport.close();
    await evil.transport.close();
  });
  const goodAddress = await good.transport.listen();
  const evilAddress = await evil.transport.listen();
  evil.transport.setPeer('good', goodAddress);
  good.transport.setPeer('evil', evilAddress);
  evil.transport.send('good', 'let me in');
  good.transport.send('evil', 'secret stuff');
  await waitFor(() => (evil.transport.stats().get('good')?.connectAttempts ?? 0) >= 3, 3000, 'redials');
  await waitFor(() => (good.transport.stats().get('evil')?.connectAttempts ?? 0) >= 3, 3000, 'redials');
  t.same(good.received, [], 'nothing accepted from a peer without the secret');
  t.same(evil.received, [], 'nothing leaked to a peer without the secret');
  t.notOk(evil.transport.isConnected('good'));
});

t.test('a raw client that skips the handshake or sends garbage is dropped alone', async (t) => {
  const a = makeTransport('a');
  const b = makeTransport('b');
  t.teardown(async () => {
    await a.transport.close();
    await b.transport.close();
  });
  const bAddress = await b.transport.listen();
  a.transport.setPeer('b', bAddress);
  a.transport.send('b', 'before');
  await waitFor(() => b.received.length === 1);
  const closed = await Promise.all([
    rawClientClosed(bAddress.port, encodeFrame(Buffer.from('not a hello'), 1024)),
    rawClientClosed(bAddress.port, Buffer.from([0xff, 0xff, 0xff, 0xff])),
  ]);
  t.same(closed, [true, true], 'both bad connections are closed by the server');
  a.transport.send('b', 'after');
  await waitFor(() => b.received.length === 2);
  t.same(b.received.map((r) => r.message), ['before', 'after'], 'the good link kept working');
});

t.test('an undecodable message drops only that connection; the sender reconnects', async (t) => {
  const a = makeTransport('a');
  const b = makeTransport('b');
  t.teardown(async () => {
    await a.transport.close();
    await b.transport.close();
  });
  a.transport.setPeer('b', await b.transport.listen());
  a.transport.send('b', 'one');
  await waitFor(() => b.received.length === 1);
  a.transport.send('b', '!poison');
  await waitFor(() => (a.transport.stats().get('b')?.connectAttempts ?? 0) === 2 || !a.transport.isConnected('b'), 3000, 'drop');
  a.transport.send('b', 'two');
  await waitFor(() => b.received.some((r) => r.message === 'two'), 3000, 'delivery after reconnect');
  t.notOk(b.received.some((r) => r.message === '!poison'));
});

t.test('reconnects after the peer restarts on the same port', async (t) => {
  const a = makeTransport('a');
  let b = makeTransport('b');
  t.teardown(async () => {
    await a.transport.close();
    await b.transport.close();
  });
  const address = await b.transport.listen();
  a.transport.setPeer('b', address);
  a.transport.send('b', 'first');
  await waitFor(() => b.received.length === 1);
  await b.transport.close();
  b = makeTransport('b', { listen: address });
  await b.transport.listen();
  // Raft keeps retrying (heartbeats); emulate that until one gets through.
  const deadline = Date.now() + 3000;
  while (!b.received.some((r) => r.message === 'again') && Date.now() < deadline) {
    a.transport.send('b', 'again');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.ok(b.received.some((r) => r.message === 'again'), 'delivered after the restart');
  t.ok((a.transport.stats().get('b')?.connectAttempts ?? 0) >= 2);
});

t.test('the per-peer queue is bounded and counts drops (oldest first)', async (t) => {
  const a = makeTransport('a', { maxQueuedMessagesPerPeer: 10 });
  t.teardown(() => a.transport.close());
  // A peer that never answers: nothing can be flushed, so the queue fills.
  a.transport.setPeer('ghost', { host: '127.0.0.1', port: 1 });
  for (let i = 0; i < 25; i++) a.transport.send('ghost', `m${i}`);
  const stats = a.transport.stats().get('ghost');
  t.equal(stats?.queued, 10);
  t.equal(stats?.droppedQueueFull, 15);
});

t.test('the fault hook partitions both directions and heals', async (t) => {
  const a = makeTransport('a');
  const b = makeTransport('b');
  t.teardown(async () => {
    await a.transport.close();
    await b.transport.close();
  });
  a.transport.setPeer('b', await b.transport.listen());
  b.transport.setPeer('a', await a.transport.listen());
  a.transport.faults.partition(['b']);
  a.transport.send('b', 'lost-out');
  b.transport.send('a', 'lost-in');
  await waitFor(() => b.transport.stats().get('a')?.sent === 1);
  t.equal(a.transport.stats().get('b')?.droppedByFault, 1);
  a.transport.faults.heal();
  a.transport.send('b', 'ok-out');
  b.transport.send('a', 'ok-in');
  await waitFor(() => a.received.length === 1 && b.received.length === 1);
  t.same(a.received.map((r) => r.message), ['ok-in']);
  t.same(b.received.map((r) => r.message), ['ok-out']);
});

/** Connects, writes `bytes`, resolves true when the server closes the socket within 3 s. */
function rawClientClosed(port: number, bytes: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(bytes));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 3000);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
