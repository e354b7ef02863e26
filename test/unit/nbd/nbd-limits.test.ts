import { randomBytes } from 'node:crypto';
import t from 'tap';
import { encodeOption } from '../../../blockdev/nbd/client-codec.js';
import {
  NBD_CMD_READ,
  NBD_CMD_WRITE,
  NBD_EINVAL,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_OPT_LIST,
  NBD_REP_ERR_TOO_BIG,
} from '../../../blockdev/nbd/constants.js';
import { settled } from '../../helpers/eventually.js';
import { MemoryBlockDevice } from '../../helpers/memory-block-device.js';
import { GatedBlockDevice } from './helpers/gated-block-device.js';
import { startTestServer, waitFor } from './helpers/nbd-test-server.js';
import { RawNbdClient } from './helpers/raw-nbd-client.js';
import { StaticExportProvider } from './helpers/static-export-provider.js';

/** Every bound of the server, seen from a client that pushes against it (invariant 7). */

const SIZE = 16 << 20;

function setup(device = new MemoryBlockDevice({ sizeBytes: SIZE })): {
  provider: StaticExportProvider;
  device: MemoryBlockDevice;
} {
  return { provider: new StaticExportProvider([{ name: 'vol1', device }]), device };
}

t.test('in-flight requests per connection stay under the limit; a flood still completes', async (t) => {
  const gated = new GatedBlockDevice(new MemoryBlockDevice({ sizeBytes: SIZE }));
  const provider = new StaticExportProvider([{ name: 'vol1', device: gated }]);
  const { port } = await startTestServer(t, provider, { maxInFlightRequests: 4 });
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  await client.negotiate({ exportName: 'vol1', structuredReplies: true });
  const count = 500;
  for (let handle = 0; handle < count; handle += 1) {
    client.request({ type: NBD_CMD_READ, flags: 0, handle: BigInt(handle), offset: 0, lengthBytes: 512 });
  }
  await waitFor(() => gated.started >= 4, 'requests to reach the device');
  t.equal(await settled(() => gated.started), 4, 'the server stops pulling requests at the limit');
  gated.release();
  const seen = new Set<bigint>();
  for (let index = 0; index < count; index += 1) {
    seen.add((await client.readReply()).handle);
  }
  t.equal(seen.size, count, 'every request is answered');
  t.equal(gated.maxInProgress, 4);
});

t.test('in-flight bytes per connection stay under the limit', async (t) => {
  const gated = new GatedBlockDevice(new MemoryBlockDevice({ sizeBytes: SIZE }));
  const provider = new StaticExportProvider([{ name: 'vol1', device: gated }]);
  const { port } = await startTestServer(t, provider, { maxInFlightBytes: 64 * 1024 });
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  await client.negotiate({ exportName: 'vol1' });
  for (let handle = 0; handle < 40; handle += 1) {
    client.request({ type: NBD_CMD_READ, flags: 0, handle: BigInt(handle), offset: 0, lengthBytes: 16 * 1024 });
  }
  await waitFor(() => gated.started >= 4, 'requests to reach the device');
  t.equal(await settled(() => gated.started), 4, '4 x 16 KiB reach the 64 KiB bound');
  gated.release();
  for (let index = 0; index < 40; index += 1) {
    await client.readReply();
  }
  t.equal(gated.maxInProgress, 4);
});

t.test('a client that does not read its replies stops being served (socket backpressure)', async (t) => {
  const { provider, device } = setup();
  const { port } = await startTestServer(t, provider, { maxInFlightBytes: 2 << 20 });
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  await client.negotiate({ exportName: 'vol1' });
  client.socket.pause();
  const count = 100;
  // All in one segment, as a loaded server finds them: the replies of one turn count against the budget too.
  client.socket.cork();
  for (let handle = 0; handle < count; handle += 1) {
    client.request({ type: NBD_CMD_READ, flags: 0, handle: BigInt(handle), offset: 0, lengthBytes: 1 << 20 });
  }
  client.socket.uncork();
  const served = await settled(() => device.stats.reads, 200);
  t.ok(served < count / 2, `only ${served} of ${count} 1 MiB reads served while the client does not read`);
  client.socket.resume();
  for (let index = 0; index < count; index += 1) {
    await client.readReply(10_000);
  }
  t.equal(device.stats.reads, count, 'all served once the client reads again');
});

t.test('an oversized WRITE that can be skipped gets EINVAL and the connection goes on', async (t) => {
  const { provider, device } = setup();
  const { port } = await startTestServer(t, provider, { maxPayloadBytes: 64 * 1024, maxDiscardedWriteBytes: 1 << 20 });
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  await client.negotiate({ exportName: 'vol1' });
  const big = randomBytes(256 * 1024);
  client.request({ type: NBD_CMD_WRITE, flags: 0, handle: 1n, offset: 0, lengthBytes: big.length }, big);
  const reply = await client.readReply();
  t.equal(reply.kind === 'simple' ? reply.error : -1, NBD_EINVAL);
  client.request({ type: NBD_CMD_READ, flags: 0, handle: 2n, offset: 0, lengthBytes: 4096 });
  const read = await client.readReply();
  t.same(read.kind === 'simple' ? read.data : undefined, Buffer.alloc(4096), 'in sync: the payload was skipped');
  t.equal(device.stats.writes, 0);
});

t.test('a WRITE too large to skip ends the connection, and only it', async (t) => {
  const { provider } = setup();
  const { port } = await startTestServer(t, provider, { maxPayloadBytes: 64 * 1024, maxDiscardedWriteBytes: 128 * 1024 });
  const bystander = await RawNbdClient.open(port);
  t.teardown(() => bystander.destroy());
  await bystander.negotiate({ exportName: 'vol1' });
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  await client.negotiate({ exportName: 'vol1' });
  client.request({ type: NBD_CMD_WRITE, flags: 0, handle: 1n, offset: 0, lengthBytes: 1 << 20 });
  await client.closed;
  bystander.request({ type: NBD_CMD_READ, flags: 0, handle: 1n, offset: 0, lengthBytes: 512 });
  t.equal((await bystander.readReply()).handle, 1n);
});

t.test('option data over the limit: NBD_REP_ERR_TOO_BIG, then the connection is dropped', async (t) => {
  const { provider } = setup();
  const { port } = await startTestServer(t, provider, { maxOptionDataBytes: 1024 });
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  client.send(encodeOption(NBD_OPT_LIST, Buffer.alloc(4096)).subarray(0, 16));
  const reply = await client.readOptionReply();
  t.equal(reply.replyType, NBD_REP_ERR_TOO_BIG);
  await client.closed;
});

t.test('garbage after the handshake costs only that connection', async (t) => {
  const { provider } = setup();
  const { server, port } = await startTestServer(t, provider);
  const good = await RawNbdClient.open(port);
  t.teardown(() => good.destroy());
  await good.negotiate({ exportName: 'vol1' });
  const bad = await RawNbdClient.open(port);
  t.teardown(() => bad.destroy());
  await bad.negotiate({ exportName: 'vol1' });
  bad.send(randomBytes(4096));
  await bad.closed;
  await waitFor(() => provider.released === 1, 'the broken connection to release its export');
  good.request({ type: NBD_CMD_READ, flags: 0, handle: 5n, offset: 0, lengthBytes: 512 });
  t.equal((await good.readReply()).handle, 5n);
  t.equal(server.connectionCount(), 1);
});

t.test('unknown client flags and wrong option magic drop the connection', async (t) => {
  const { provider } = setup();
  const { port } = await startTestServer(t, provider);
  const flags = await RawNbdClient.open(port, NBD_FLAG_C_FIXED_NEWSTYLE | (1 << 5));
  await flags.closed;
  const magic = await RawNbdClient.open(port);
  magic.send(Buffer.alloc(16, 0x41));
  await magic.closed;
  t.pass('both dropped');
});

t.test('a client that never finishes the handshake is dropped at the deadline', async (t) => {
  const { provider } = setup();
  const { port } = await startTestServer(t, provider, { handshakeTimeoutMs: 150 });
  const client = await RawNbdClient.open(port);
  const started = Date.now();
  await client.closed;
  t.ok(Date.now() - started < 3000);
});

t.test('a client that half-closes after its requests still gets the replies', async (t) => {
  const { provider } = setup();
  const { port } = await startTestServer(t, provider);
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  await client.negotiate({ exportName: 'vol1' });
  for (let handle = 1; handle <= 3; handle += 1) {
    client.request({ type: NBD_CMD_READ, flags: 0, handle: BigInt(handle), offset: 0, lengthBytes: 4096 });
  }
  client.socket.end();
  const handles = [];
  for (let index = 0; index < 3; index += 1) handles.push((await client.readReply()).handle);
  t.same(handles.sort(), [1n, 2n, 3n]);
  await client.closed;
  await waitFor(() => provider.released === 1, 'release after the half-close');
});
