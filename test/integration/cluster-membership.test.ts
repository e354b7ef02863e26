/**
 * Three real plinthd processes on 127.0.0.1 form one cluster (issue 4): two
 * join the first through its peer port; any node answers any call; kill -9
 * of the leader leaves the survivors answering, the dead node shows down,
 * and it is up again after a restart; `node rm` removes a member.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { startDaemon, type DaemonProcess, type TeardownHost } from '../helpers/daemon-harness.js';
import { eventually } from '../helpers/eventually.js';

interface NodeRow {
  readonly id: string;
  readonly state: string;
  readonly leader: boolean;
}

const ENV = { PLINTH_RAFT_TICK_MS: '50', PLINTH_NODE_DOWN_AFTER_MS: '2000' };

async function startMember(t: TeardownHost, id: string, join?: DaemonProcess): Promise<DaemonProcess> {
  const args = ['--node-id', id, ...(join === undefined ? [] : ['--join', `127.0.0.1:${join.ports.peer}`])];
  return startDaemon(t, { args, env: ENV, logLevel: 'warn' });
}

async function nodesOf(daemon: DaemonProcess): Promise<NodeRow[]> {
  const response = await daemon.api('GET', '/v1/nodes', undefined, { timeoutMs: 8000 });
  if (response.status !== 200) throw new Error(`GET /v1/nodes: ${response.status} ${JSON.stringify(response.body)}`);
  return (response.body as { nodes: NodeRow[] }).nodes;
}

function summary(nodes: readonly NodeRow[]): string {
  return nodes.map((node) => `${node.id}:${node.state}${node.leader ? '*' : ''}`).join(' ');
}

t.test('join, any node answers, kill -9 the leader, restart, node rm', async (t) => {
  const n1 = await startMember(t, 'n1');
  const n2 = await startMember(t, 'n2', n1);
  const n3 = await startMember(t, 'n3', n2); // joined through a follower: relayed to the leader
  const daemons = new Map([['n1', n1], ['n2', n2], ['n3', n3]]);
  t.equal(await n3.token(), await n1.token(), 'joiners share the cluster API token');

  const created = await n2.api('POST', '/v1/volumes', { name: 'vol1', size: '64MiB', replicas: 3 });
  t.equal(created.status, 201, `create via n2: ${JSON.stringify(created.body)}`);
  const seen = await n3.api('GET', '/v1/volumes/vol1');
  t.equal(seen.status, 200, 'the volume is visible on n3 at once (linearizable read)');
  t.match(seen.body, { name: 'vol1', replicaCount: 3, state: 'healthy' });
  t.same(((seen.body as { replicas: Array<{ nodeId: string }> }).replicas.map((r) => r.nodeId)).sort(), ['n1', 'n2', 'n3']);

  const all = await eventually('3 up nodes and one leader', 10_000, async () => {
    const nodes = await nodesOf(n3);
    return nodes.length === 3 && nodes.every((node) => node.state === 'up') && nodes.filter((node) => node.leader).length === 1 ? nodes : undefined;
  });
  t.pass(`node ls: ${summary(all)}`);
  const leaderId = all.find((node) => node.leader)?.id ?? '';
  const leader = daemons.get(leaderId);
  if (leader === undefined) throw new Error('no leader');
  const survivors = [...daemons].filter(([id]) => id !== leaderId).map(([, daemon]) => daemon);

  await leader.kill();
  const killedAt = Date.now();
  for (const survivor of survivors) {
    await eventually('a survivor to answer writes', 15_000, async () => {
      const response = await survivor.api('POST', '/v1/volumes', { name: `after-${survivor.ports.api}`, size: '1MiB', replicas: 1 }, { timeoutMs: 8000 });
      return response.status === 201 ? true : undefined;
    });
  }
  t.pass(`survivors answer writes ${Date.now() - killedAt} ms after kill -9 of the leader ${leaderId}`);
  const downView = await eventually('the dead node to show down', 15_000, async () => {
    const nodes = await nodesOf(survivors[0] as DaemonProcess);
    return nodes.find((node) => node.id === leaderId)?.state === 'down' ? nodes : undefined;
  });
  t.pass(`node ls after the kill: ${summary(downView)}`);

  const restarted = await startDaemon(t, { dataDir: leader.dataDir, ports: leader.ports, args: ['--node-id', leaderId], env: ENV, logLevel: 'warn' });
  const upView = await eventually('the restarted node to be up', 20_000, async () => {
    const nodes = await nodesOf(restarted);
    return nodes.length === 3 && nodes.every((node) => node.state === 'up') ? nodes : undefined;
  });
  t.pass(`node ls after the restart: ${summary(upView)}`);
  t.equal((await restarted.api('GET', '/v1/volumes/vol1')).status, 200, 'the restarted node serves the state');

  // vol1 has in-sync replicas on every node, so removing one keeps two; the
  // one-replica volumes written during the failover would lose their only copy.
  for (const survivor of survivors) t.equal((await restarted.api('DELETE', `/v1/volumes/after-${survivor.ports.api}`)).status, 204);
  // The hardest case: remove the current leader, asked through another node.
  const victimId = (await nodesOf(restarted)).find((node) => node.leader)?.id ?? '';
  const asker = [...daemons.values(), restarted].find((daemon) => daemon !== daemons.get(victimId) && daemon !== leader) ?? restarted;
  const remaining = [...daemons].filter(([id]) => id !== victimId && id !== leaderId).map(([, daemon]) => daemon);
  if (victimId !== leaderId) remaining.push(restarted);
  const removed = await asker.api('DELETE', `/v1/nodes/${victimId}`, undefined, { timeoutMs: 15_000 });
  t.equal(removed.status, 204, `node rm ${victimId}: ${JSON.stringify(removed.body)}`);
  const afterRm = await eventually('the rest to list two nodes', 10_000, async () => {
    const nodes = await nodesOf(remaining[0] as DaemonProcess);
    return nodes.length === 2 ? nodes : undefined;
  });
  t.same(afterRm.map((node) => node.id).sort(), ['n1', 'n2', 'n3'].filter((id) => id !== victimId), 'node ls no longer lists it');
  const volume = (await (remaining[1] as DaemonProcess).api('GET', '/v1/volumes/vol1')).body as { replicas: Array<{ nodeId: string }> };
  t.notOk(volume.replicas.some((replica) => replica.nodeId === victimId), 'its replicas are gone from the volume');
  const missing = await (remaining[0] as DaemonProcess).api('DELETE', '/v1/nodes/ghost');
  t.match(missing, { status: 404, body: { error: { code: 'NODE_NOT_FOUND' } } });
});

t.test('node rm refuses to drop the last in-sync replica', async (t) => {
  const n1 = await startMember(t, 'a1');
  const n2 = await startMember(t, 'a2', n1);
  await eventually('two members', 10_000, async () => ((await nodesOf(n1)).length === 2 ? true : undefined));
  // One replica, placed on the creating node first (locality): a2 holds the only copy.
  const created = await n2.api('POST', '/v1/volumes', { name: 'solo', size: '1MiB', replicas: 1 });
  t.equal(created.status, 201);
  t.match(created.body, { replicas: [{ nodeId: 'a2', state: 'in-sync' }] });
  const refused = await n1.api('DELETE', '/v1/nodes/a2');
  t.equal(refused.status, 409);
  t.match(refused.body, { error: { code: 'LAST_IN_SYNC_REPLICA', message: /node a2 holds the last in-sync replica of 1 volume\(s\) \(solo\)/ } });
  t.equal((await nodesOf(n1)).length, 2, 'still a member');
  const cli = await runCli(['--api', n1.apiUrl, '--data-dir', n1.dataDir, 'node', 'rm', 'a2']);
  t.equal(cli.code, 1, 'the CLI verb exits 1 on the refusal');
  t.match(cli.stderr, /last in-sync replica/);
  const ls = await runCli(['--api', n2.apiUrl, '--data-dir', n2.dataDir, '--json', 'node', 'ls']);
  t.equal(ls.code, 0);
  t.same((JSON.parse(ls.stdout) as { nodes: NodeRow[] }).nodes.map((node) => `${node.id}:${node.state}`), ['a1:up', 'a2:up']);
});

const PLINTH_BIN = fileURLToPath(new URL('../../api/cli/plinth.js', import.meta.url));

function runCli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PLINTH_BIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}
