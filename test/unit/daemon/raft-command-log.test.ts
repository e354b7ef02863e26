import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { pino } from 'pino';
import t from 'tap';
import { ClusterStateMachine, encodeCommand } from '../../../daemon/cluster/cluster-state-machine.js';
import { PeerListener } from '../../../daemon/cluster/peer-listener.js';
import { startClusterNode } from '../../../daemon/cluster/start-cluster-node.js';

const logger = pino({ level: 'silent' });
const ADDRESSES = { api: '127.0.0.1:1', peer: '127.0.0.1:2', nbd: '127.0.0.1:3', iscsi: '127.0.0.1:4' };

t.test('a single node bootstraps, proposes, reads, refuses, and restarts from its log', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-raftlog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const start = async () => {
    const db = new Level<string, Buffer>(join(dir, 'db'), { valueEncoding: 'buffer' });
    await db.open();
    const peerListener = new PeerListener({ listen: { host: '127.0.0.1', port: 0 } }, { logger });
    const peerAddress = await peerListener.listen();
    const node = await startClusterNode(
      { nodeId: 'n1', dataDir: dir, addresses: ADDRESSES, labels: {}, peerAddress, join: null, tickMs: 20, startTimeoutMs: 10_000 },
      { raftDb: db.sublevel<string, Buffer>('raft', { valueEncoding: 'buffer' }), peerListener, logger },
    );
    return { node, close: async () => { await node.stop(); await peerListener.close(); await db.close(); } };
  };
  const first = await start();
  t.equal(first.node.mode, 'bootstrap');
  t.equal((await stat(join(dir, 'cluster-secret'))).mode & 0o777, 0o600, 'cluster secret is 0600');
  t.match((await readFile(join(dir, 'cluster-secret'), 'utf8')).trim(), /^[0-9a-f]{64}$/);
  const commands = first.node.commands;
  t.ok(commands.isLeader, 'a one-member cluster leads itself');
  t.match(commands.state.clusterId, /^c-/);
  t.match(commands.state.nodes['n1'], { state: 'up', addresses: ADDRESSES });
  const created = await commands.propose({ type: 'volume.create', id: 'v1', name: 'v', sizeBytes: 4096, createdAt: '2026-01-01T00:00:00.000Z' });
  t.match(created, { type: 'volume', volume: { name: 'v', replicas: [{ nodeId: 'n1', state: 'in-sync' }] } });
  await t.rejects(commands.propose({ type: 'volume.create', id: 'v2', name: 'v', sizeBytes: 4096, createdAt: '2026-01-01T00:00:00.000Z' }), {
    code: 'VOLUME_EXISTS',
  });
  await commands.barrier();
  const clusterId = commands.state.clusterId;
  await first.close();

  const second = await start();
  t.teardown(() => second.close());
  t.equal(second.node.mode, 'restart');
  t.equal(second.node.commands.state.clusterId, clusterId, 'same cluster after a restart');
  t.ok(second.node.commands.state.volumes['v'], 'the committed volume survived');
});

t.test('the state machine snapshots and restores its JSON state, and refuses garbage entries', async (t) => {
  const machine = new ClusterStateMachine({ logger });
  const outcome = machine.apply({ index: 1, term: 1, command: encodeCommand({ type: 'cluster.init', clusterId: 'c' }) });
  t.same(outcome, { type: 'cluster', clusterId: 'c' });
  t.match(machine.apply({ index: 2, term: 1, command: Buffer.from('not json') }), { code: 'INVALID_ARGUMENT', message: /undecodable command at index 2/ });
  const copy = new ClusterStateMachine({ logger });
  copy.restore(machine.snapshot());
  t.same(copy.state, machine.state);
  t.equal(copy.appliedIndex, 2);
  t.throws(() => copy.restore(Buffer.from('{"x":1}')), { code: 'RAFT_SNAPSHOT_INVALID' });
});
