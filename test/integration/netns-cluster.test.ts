/**
 * The network-fault fixture itself (test/setup/netns-cluster.ts): a TCP echo
 * server in each namespace, probed from the others. A cut must be silent (a
 * connect times out: no RST, no ICMP), a partition cuts only the pairs it
 * names, and heal restores everything.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import t from 'tap';
import { NetnsCluster, netnsUnavailableReason } from '../setup/netns-cluster.js';

const ECHO_PORT = 7000;
const PROBE_TIMEOUT_MS = 1000;

const ECHO_JS = String.raw`
const net = require('node:net');
net.createServer((socket) => { socket.on('error', () => socket.destroy()); socket.pipe(socket); })
  .listen(${ECHO_PORT}, process.env.ECHO_HOST, () => console.log('listening'));
`;

/** Prints "ok <rtt ms>", "timeout" or "error <code>". */
const PROBE_JS = String.raw`
const net = require('node:net');
const timer = setTimeout(() => { console.log('timeout'); process.exit(0); }, ${PROBE_TIMEOUT_MS});
const socket = net.connect(${ECHO_PORT}, process.env.PROBE_HOST, () => {
  const started = Date.now();
  socket.write('x');
  socket.once('data', () => { console.log('ok ' + (Date.now() - started)); process.exit(0); });
});
socket.on('error', (error) => { clearTimeout(timer); console.log('error ' + error.code); process.exit(0); });
`;

function listening(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('echo server did not start')), 10_000);
    if (child.stdout === null) throw new Error('no stdout');
    createInterface({ input: child.stdout }).once('line', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

const skip = netnsUnavailableReason();

t.test('cut, partition, isolate and heal between namespaces', { skip: skip ?? false }, async (t) => {
  const ids = ['a', 'b', 'c'];
  const cluster = await NetnsCluster.create(t, ids);
  await Promise.all(
    ids.map((id) => listening(cluster.spawnIn(id, process.execPath, ['-e', ECHO_JS], { env: { ...process.env, ECHO_HOST: cluster.node(id).address }, stdio: ['ignore', 'pipe', 'pipe'] }))),
  );
  const probe = async (from: string, to: string): Promise<string> => {
    const env = `PROBE_HOST=${cluster.node(to).address}`;
    const result = await cluster.runIn(from, '/usr/bin/env', [env, process.execPath, '-e', PROBE_JS], 10_000);
    return result.stdout.trim().split(' ')[0] ?? `no output: ${result.stderr}`;
  };
  const matrix = async (): Promise<Record<string, string>> => {
    const pairs = ids.flatMap((from) => ids.filter((to) => to !== from).map((to) => [from, to] as const));
    const results = await Promise.all(pairs.map(([from, to]) => probe(from, to)));
    return Object.fromEntries(pairs.map(([from, to], i) => [`${from}→${to}`, results[i] ?? '']));
  };
  const all = (value: string): Record<string, string> => ({ 'a→b': value, 'a→c': value, 'b→a': value, 'b→c': value, 'c→a': value, 'c→b': value });

  t.same(await matrix(), all('ok'), 'every pair reaches every other');
  await cluster.cut('a', 'b');
  t.same(await matrix(), { ...all('ok'), 'a→b': 'timeout', 'b→a': 'timeout' }, 'a cut drops a↔b silently, both ways; the rest still talk');
  await cluster.heal();
  t.same(await matrix(), all('ok'), 'heal reconnects');
  await cluster.partition('c', ['a']);
  t.same(await matrix(), { ...all('ok'), 'a→c': 'timeout', 'c→a': 'timeout' }, 'partition cuts only the named pairs');
  await cluster.isolate('a');
  t.same(await matrix(), { ...all('timeout'), 'b→c': 'ok', 'c→b': 'ok' }, 'isolate cuts a from everyone');
  await cluster.heal();
  t.same(await matrix(), all('ok'), 'heal reconnects after isolate');
  t.match(await probe('a', 'a'), 'ok', 'a node reaches its own address');

  const noNetem = await cluster.netemUnavailableReason();
  await t.test('impair adds delay', { skip: noNetem ?? false }, async (t) => {
    await cluster.impair('a', 'b', { delayMs: 100 });
    const result = await cluster.runIn('a', '/usr/bin/env', [`PROBE_HOST=${cluster.node('b').address}`, process.execPath, '-e', PROBE_JS], 10_000);
    const rttMs = Number(result.stdout.trim().split(' ')[1]);
    t.ok(rttMs >= 200, `a→b round trip ${rttMs} ms with 100 ms each way`);
    await cluster.heal();
    t.same(await matrix(), all('ok'), 'heal lifts the impairment');
  });
});
