/**
 * A TLS cluster end to end (docs/security.md): three daemons with `--tls on`
 * on loopback, joined with the join token (the third through a follower, so
 * the relay path runs too, with the token `plinth cluster join-token`
 * printed); a 3-replica volume written on one node and read on another over
 * NBD STARTTLS (libnbd `nbds://`) with client certificates; `plinth tls
 * client-cert` making the folder nbdinfo reads; the CLI over HTTPS with
 * --data-dir; and the refusals: a wrong join token, a plain-TCP and a
 * certificate-less TLS client on the peer port, an HTTPS client without the
 * CA, plain http:// to the API, plain NBD to a TLS-required server, NBD
 * clients without a certificate or with another CA's.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { makeTempDir, spawnDaemon, startDaemon, type DaemonProcess, type TeardownHost } from '../helpers/daemon-harness.js';
import { createTestCertificates } from '../helpers/test-certificates.js';
import { ENV, eventually, runClient, writeClient } from './fixtures/replication-cluster.js';

const PLINTH_CLI = fileURLToPath(new URL('../../api/cli/plinth.js', import.meta.url));
const run = promisify(execFile);

async function joinToken(member: DaemonProcess): Promise<string> {
  return (await readFile(join(member.dataDir, 'join-token'), 'utf8')).trim();
}

function startTlsMember(test: TeardownHost, id: string, join?: { member: DaemonProcess; token: string }): Promise<DaemonProcess> {
  const joinArgs = join === undefined ? [] : ['--join', `127.0.0.1:${join.member.ports.peer}`, '--join-token', join.token];
  return startDaemon(test, { tls: 'on', args: ['--node-id', id, ...joinArgs], env: ENV, logLevel: 'info' });
}

/** Connect, send `bytes`, resolve with what came back once the daemon closed the connection (bounded). */
async function answerBeforeClose(socket: import('node:net').Socket, bytes: Buffer, connectEvent: 'connect' | 'secureConnect'): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => undefined);
  await once(socket, connectEvent);
  socket.write(bytes);
  let keptOpen = false;
  const timer = setTimeout(() => {
    keptOpen = true;
    socket.destroy();
  }, 10_000);
  await once(socket, 'close');
  clearTimeout(timer);
  if (keptOpen) throw new Error('the daemon kept the connection open for 10 s');
  return Buffer.concat(chunks);
}

t.test('a TLS cluster: token joins, replicated NBD over TLS, HTTPS API and CLI, refusals', async (t) => {
  const n1 = await startTlsMember(t, 'n1');
  const token = await joinToken(n1);
  t.match(token, /^[0-9a-f]{64}$/, 'bootstrap wrote the join token');
  const n2 = await startTlsMember(t, 'n2', { member: n1, token });
  // The operator's way to the token: `plinth cluster join-token` on any member (here n2, which received it at its join).
  const printed = await run(process.execPath, [PLINTH_CLI, '--data-dir', n2.dataDir, '--api', `127.0.0.1:${n2.ports.api}`, 'cluster', 'join-token'], { timeout: 20_000 });
  t.equal(printed.stdout, `${token}\n`, 'plinth cluster join-token prints the token alone on its line');
  // Through n2: if n2 is a follower, it checks the token and relays to the leader over mutual TLS.
  const n3 = await startTlsMember(t, 'n3', { member: n2, token: printed.stdout.trim() });
  t.equal(await joinToken(n3), token, 'joiners receive the join token');
  t.equal(await n3.caPem(), await n1.caPem(), 'one cluster CA');

  await t.test('cluster status through the CLI over HTTPS, CA found via --data-dir', async (t) => {
    const { stdout } = await run(process.execPath, [PLINTH_CLI, '--data-dir', n3.dataDir, '--api', `127.0.0.1:${n3.ports.api}`, '--json', 'cluster', 'status'], { timeout: 20_000 });
    const status = JSON.parse(stdout) as { nodeCount: number; leaderId: string | null };
    t.equal(status.nodeCount, 3);
    t.not(status.leaderId, null);
  });

  await t.test('a 3-replica volume written on n2 and read on n3 over NBD STARTTLS', async (t) => {
    const created = await n1.api('POST', '/v1/volumes', { name: 'tv', size: '64MiB', replicas: 3 });
    t.equal(created.status, 201, JSON.stringify(created.body));
    const client = await writeClient(t);
    const written = await runClient(client, ['write', await n2.nbdsUri('tv'), '64', '7'], 60_000);
    t.same(written.at(-1), { flushed: true });
    const expected = written.filter((line) => typeof line['offset'] === 'number').map((line) => [line['offset'], line['sha']]);
    const expectedPath = join(n3.dataDir, 'expected.json');
    await writeFile(expectedPath, JSON.stringify(expected));
    await eventually('three in-sync replicas', 30_000, async () => {
      const volume = await n1.api('GET', '/v1/volumes/tv');
      const replicas = (volume.body as { replicas?: Array<{ state: string }> }).replicas ?? [];
      if (replicas.length !== 3 || replicas.some((replica) => replica.state !== 'in-sync')) throw new Error(`replicas ${JSON.stringify(replicas)}`);
      return true;
    });
    // Attached to n2 by the write; n3 serves it once it is detached (ARCHITECTURE "NBD").
    await eventually('detach from n2', 15_000, async () => ((await n1.api('POST', '/v1/volumes/tv/detach', {})).status === 200 ? true : undefined));
    const verified = await runClient(client, ['verify', await n3.nbdsUri('tv'), expectedPath], 60_000);
    t.same(verified.at(-1), { checked: expected.length, bad: [] });
    await t.rejects(runClient(client, ['verify', n3.nbdUri('tv'), expectedPath], 30_000), 'plain NBD to a TLS-required server is refused');
  });

  await t.test('NBD client certificates: plinth tls client-cert gets nbdinfo in; no certificate or another CA\'s is refused', async (t) => {
    const work = await makeTempDir(t, 'plinth-tls-nbd-');
    const certDir = join(work, 'reader');
    const issued = await run(process.execPath, [PLINTH_CLI, '--data-dir', n1.dataDir, '--api', `127.0.0.1:${n1.ports.api}`, 'tls', 'client-cert', 'reader', '--out', certDir, '--days', '2'], { timeout: 20_000 });
    t.match(issued.stdout, `tls-certificates=${certDir}`, 'prints the nbds:// example');
    t.equal((await stat(join(certDir, 'client-key.pem'))).mode & 0o777, 0o600);
    // tv is attached to n3 since the verify above; n1's certificate works on every node (one CA).
    const uri = (dir: string): string => `nbds://127.0.0.1:${n3.ports.nbd}/tv?tls-certificates=${dir}`;
    const info = await run('nbdinfo', ['--json', uri(certDir)], { timeout: 20_000 });
    t.match(JSON.parse(info.stdout) as unknown, { exports: [{ 'export-size': 64 * 1024 * 1024 }] }, 'nbdinfo reads the volume');

    const caOnly = join(work, 'ca-only');
    await mkdir(caOnly);
    await copyFile(join(certDir, 'ca-cert.pem'), join(caOnly, 'ca-cert.pem'));
    const anonymous = await run('nbdinfo', ['--json', uri(caOnly)], { timeout: 20_000 }).then(() => 'connected', (err: unknown) => String((err as { stderr?: string }).stderr));
    t.not(anonymous, 'connected', 'a client that trusts the CA but has no certificate is refused');
    t.match(anonymous, /TLS|certificate|handshake|server/i);

    const otherCa = await createTestCertificates(await makeTempDir(t, 'plinth-tls-other-ca-'), { caCommonName: 'Not the cluster CA', clientCommonName: 'reader' });
    const foreign = join(work, 'foreign');
    await mkdir(foreign);
    await copyFile(join(certDir, 'ca-cert.pem'), join(foreign, 'ca-cert.pem'));
    await copyFile(otherCa.clientCertPath, join(foreign, 'client-cert.pem'));
    await copyFile(otherCa.clientKeyPath, join(foreign, 'client-key.pem'));
    const impostor = await run('nbdinfo', ['--json', uri(foreign)], { timeout: 20_000 }).then(() => 'connected', (err: unknown) => String((err as { stderr?: string }).stderr));
    t.not(impostor, 'connected', 'a certificate of another CA is refused');
  });

  await t.test('a joiner with a wrong join token, or none, is refused with a clear error', async (t) => {
    const wrong = token.replace(/^./, token.startsWith('0') ? '1' : '0');
    const joiner = await spawnDaemon(t, { tls: 'on', args: ['--node-id', 'intruder', '--join', `127.0.0.1:${n1.ports.peer}`, '--join-token', wrong], env: ENV });
    const status = await joiner.waitForExit({ timeoutMs: 30_000 });
    t.not(status.code, 0);
    t.match(joiner.stderr(), /wrong join token/);
    const plain = await spawnDaemon(t, { args: ['--node-id', 'plain', '--join', `127.0.0.1:${n1.ports.peer}`], env: ENV });
    t.not((await plain.waitForExit({ timeoutMs: 30_000 })).code, 0);
    t.match(plain.stderr(), /if the cluster uses TLS, pass --join-token/, 'a plain joiner is told what is missing');
    const nodes = await n1.api('GET', '/v1/nodes');
    t.equal((nodes.body as { nodes: unknown[] }).nodes.length, 3, 'neither admitted');
  });

  await t.test('the peer port refuses plain TCP and TLS without a cluster certificate, and says why', async (t) => {
    const plain = await answerBeforeClose(netConnect({ host: '127.0.0.1', port: n1.ports.peer }), Buffer.from('PJN1{"nodeId":"x"}\n'), 'connect');
    t.notMatch(plain.toString('latin1'), /ok/, 'no join answer in clear');
    const anonymous = tlsConnect({ host: '127.0.0.1', port: n1.ports.peer, rejectUnauthorized: false });
    const answer = await answerBeforeClose(anonymous, Buffer.from('PRPC{"body":"{}","mac":"00"}\n'), 'secureConnect');
    t.equal(answer.length, 0, 'no peer RPC without a certificate');
    await eventually('the refusals in the log', 10_000, async () => {
      const messages = n1.logMessages().join('\n');
      if (!/TLS handshake failed/.test(messages)) throw new Error('no handshake-failure log yet');
      if (!/connection refused: peer presented no certificate/.test(messages)) throw new Error('no certificate log yet');
      return true;
    });
  });

  await t.test('a joined member restarts from its data dir as a TLS member, without --join-token', async (t) => {
    const stopped = await n3.stop();
    t.equal(stopped.forced, false);
    const again = await startDaemon(t, { tls: 'on', dataDir: n3.dataDir, ports: n3.ports, args: ['--node-id', 'n3'], env: ENV, logLevel: 'info' });
    // A follower's linearizable read goes to the leader over the peer port (peer-rpc.ts): mutual TLS.
    await eventually('n3 serves the cluster state', 20_000, async () => {
      const volume = await again.api('GET', '/v1/volumes/tv');
      return volume.status === 200 ? true : undefined;
    });
    await eventually('n3 up again', 20_000, async () => {
      const nodes = (await n1.api('GET', '/v1/nodes')).body as { nodes: Array<{ id: string; state: string }> };
      return nodes.nodes.find((node) => node.id === 'n3')?.state === 'up' ? true : undefined;
    });
  });

  await t.test('HTTPS without the CA fails verification; http:// to the TLS API fails', async (t) => {
    const untrusted = await fetch(`${n1.apiUrl}/healthz`, { signal: AbortSignal.timeout(5000) }).then(
      () => 'answered',
      (err: unknown) => String((err as { cause?: { code?: string } }).cause?.code ?? err),
    );
    t.match(untrusted, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
    t.equal((await n1.fetch(`${n1.apiUrl}/healthz`)).status, 200, 'with the CA it answers');
    await t.rejects(fetch(`http://127.0.0.1:${n1.ports.api}/healthz`, { signal: AbortSignal.timeout(5000) }));
    const cli = await run(process.execPath, [PLINTH_CLI, '--token', await n1.token(), '--api', n1.apiUrl, 'cluster', 'status'], { timeout: 20_000 }).then(
      () => 'succeeded',
      (err: unknown) => String((err as { stderr?: string }).stderr),
    );
    t.match(cli, /not trusted: pass the cluster CA with --ca FILE/);
  });
});
