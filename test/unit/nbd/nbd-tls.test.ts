import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import pino from 'pino';
import t, { type Test } from 'tap';
import { decodeOffsetData, encodeInfoRequestData, type TransmissionReply } from '../../../blockdev/nbd/client-codec.js';
import {
  NBD_CMD_DISC,
  NBD_CMD_READ,
  NBD_CMD_WRITE,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_LIST,
  NBD_OPT_STARTTLS,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_SERVER,
} from '../../../blockdev/nbd/constants.js';
import { type NbdServer, type NbdTlsOptions, startNbdServer } from '../../../blockdev/nbd/nbd-server.js';
import { ProtocolError } from '../../../blockdev/nbd/protocol-error.js';
import { MemoryBlockDevice } from '../../helpers/memory-block-device.js';
import { createTestCertificates, type TestCertificates } from '../../helpers/test-certificates.js';
import { describeRun, missingToolsReason, run, runOk } from '../../setup/e2e-process.js';
import { waitFor } from './helpers/nbd-test-server.js';
import { RawNbdClient } from './helpers/raw-nbd-client.js';
import { StaticExportProvider } from './helpers/static-export-provider.js';

/**
 * NBD_OPT_STARTTLS (proto.md "TLS support") on a real server over
 * loopback, driven by libnbd (nbdinfo, nbdcopy over nbds://), qemu-io,
 * and a byte-level client for what the tools never send. Certificates are
 * made per run with the openssl CLI.
 */

const MIB = 1024 * 1024;
const SIZE = 16 * MIB;
/** Distinctive, so "no export name leaks in clear" can be asserted on raw bytes and tool output. */
const EXPORT = 'secret-volume-7f3a';
const TOOL_TIMEOUT_MS = 30_000;

interface Pki {
  readonly certs: TestCertificates;
  /** A second, unrelated CA: its clients must not trust our server. */
  readonly otherCa: TestCertificates;
}

interface Served {
  readonly server: NbdServer;
  readonly port: number;
  readonly provider: StaticExportProvider;
  readonly device: MemoryBlockDevice;
  readonly logLines: string[];
}

let pkiPromise: Promise<Pki> | undefined;
let workDir: string | undefined;

t.before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'plinth-nbd-tls-'));
});
t.teardown(async () => {
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

function dirOf(name: string): string {
  if (workDir === undefined) throw new Error('work dir not created');
  return join(workDir, name);
}

/** One PKI for the whole file: openssl runs a handful of times, not per test. */
function pki(): Promise<Pki> {
  pkiPromise ??= (async () => {
    await mkdir(dirOf('pki'));
    await mkdir(dirOf('other-ca'));
    const certs = await createTestCertificates(dirOf('pki'));
    const otherCa = await createTestCertificates(dirOf('other-ca'), { caCommonName: 'Some Other CA' });
    return { certs, otherCa };
  })();
  return pkiPromise;
}

async function serve(t: Test, mode: 'required' | 'optional' | 'none', verifyClients = false): Promise<Served> {
  const { certs } = await pki();
  const device = new MemoryBlockDevice({ sizeBytes: SIZE });
  const provider = new StaticExportProvider([{ name: EXPORT, device, description: 'TLS test export' }]);
  const logLines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  const secureContext = createSecureContext({ cert: certs.serverCertPem, key: certs.serverKeyPem, ca: certs.caCertPem });
  const tls: NbdTlsOptions | undefined = mode === 'none' ? undefined : { secureContext, required: mode === 'required', verifyClients };
  const server = await startNbdServer(
    { host: '127.0.0.1', port: 0, ...(tls === undefined ? {} : { tls }) },
    { exports: provider, logger },
  );
  t.teardown(() => server.close(AbortSignal.timeout(10_000)));
  return { server, port: server.address().port, provider, device, logLines };
}

function nbdsUri(port: number, certDir: string, exportName = EXPORT): string {
  return `nbds://127.0.0.1:${port}/${exportName}?tls-certificates=${certDir}`;
}

const toolsSkip = missingToolsReason(['nbdinfo', 'nbdcopy']);
const qemuSkip = missingToolsReason(['qemu-io']);

t.test('required TLS: nbdinfo over nbds:// sees the export, --list lists it', { skip: toolsSkip ?? false }, async (t) => {
  const { certs } = await pki();
  const { port, provider } = await serve(t, 'required');
  const info = await runOk('nbdinfo', ['--json', nbdsUri(port, certs.dir)], { timeoutMs: TOOL_TIMEOUT_MS });
  const parsed = JSON.parse(info.stdout) as { TLS?: unknown; exports?: Array<Record<string, unknown>> };
  t.equal(parsed.TLS, true, 'negotiated TLS');
  t.match(parsed.exports?.[0], { 'export-name': EXPORT, 'export-size': SIZE });
  const list = await runOk('nbdinfo', ['--list', nbdsUri(port, certs.dir, '')], { timeoutMs: TOOL_TIMEOUT_MS });
  t.match(list.stdout, EXPORT, describeRun(list));
  await waitFor(() => provider.outstandingHandles() === 0, 'handles released');
});

t.test('required TLS: nbdcopy 16 MiB in and out over nbds:// keeps every byte', { skip: toolsSkip ?? false }, async (t) => {
  const { certs } = await pki();
  const { port, device } = await serve(t, 'required');
  const source = dirOf('random.bin');
  const copy = dirOf('copied-back.bin');
  const data = randomBytes(SIZE);
  await writeFile(source, data);
  t.teardown(() => Promise.all([rm(source, { force: true }), rm(copy, { force: true })]));
  await runOk('nbdcopy', [source, nbdsUri(port, certs.dir)], { timeoutMs: TOOL_TIMEOUT_MS });
  t.ok(device.stats.writes > 0, 'the device saw writes');
  await runOk('nbdcopy', [nbdsUri(port, certs.dir), copy], { timeoutMs: TOOL_TIMEOUT_MS });
  const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
  t.equal(sha(await readFile(copy)), sha(data), 'sha256 of the copy matches');
});

t.test('required TLS: a plain client is refused and learns no export name', { skip: toolsSkip ?? false }, async (t) => {
  const { port, provider } = await serve(t, 'required');
  const list = await run('nbdinfo', ['--list', `nbd://127.0.0.1:${port}`], { timeoutMs: TOOL_TIMEOUT_MS });
  t.not(list.code, 0, 'nbdinfo --list without TLS fails');
  t.notMatch(list.stdout + list.stderr, EXPORT, describeRun(list));
  const info = await run('nbdinfo', [`nbd://127.0.0.1:${port}/${EXPORT}`], { timeoutMs: TOOL_TIMEOUT_MS });
  t.not(info.code, 0, 'nbdinfo without TLS fails');
  t.equal(provider.opened, 0, 'nothing was opened for a plain client');
});

t.test('required TLS on the wire: TLS_REQD replies carry no name; EXPORT_NAME closes', async (t) => {
  const { port, provider } = await serve(t, 'required');
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  client.sendOption(NBD_OPT_LIST);
  const list = await client.readOptionReplies();
  t.same(list.map((reply) => reply.replyType), [NBD_REP_ERR_TLS_REQD]);
  client.sendOption(NBD_OPT_GO, encodeInfoRequestData(EXPORT, []));
  const go = await client.readOptionReplies();
  t.same(go.map((reply) => reply.replyType), [NBD_REP_ERR_TLS_REQD]);
  const received = Buffer.concat([...list, ...go].map((reply) => reply.data)).toString('latin1');
  t.notMatch(received, 'TLS test export', 'no description');
  t.notMatch(received, EXPORT.slice(7), 'no export name');
  client.sendOption(NBD_OPT_EXPORT_NAME, Buffer.from(EXPORT));
  await client.closed;
  t.equal(client.pendingBytes, 0, 'EXPORT_NAME got no reply, just the close');
  t.equal(provider.opened, 0);
});

t.test('optional TLS: plain nbd:// and nbds:// both work', { skip: toolsSkip ?? false }, async (t) => {
  const { certs } = await pki();
  const { port } = await serve(t, 'optional');
  const plain = await runOk('nbdinfo', ['--json', `nbd://127.0.0.1:${port}/${EXPORT}`], { timeoutMs: TOOL_TIMEOUT_MS });
  t.equal((JSON.parse(plain.stdout) as { TLS?: unknown }).TLS, false);
  const secure = await runOk('nbdinfo', ['--json', nbdsUri(port, certs.dir)], { timeoutMs: TOOL_TIMEOUT_MS });
  t.equal((JSON.parse(secure.stdout) as { TLS?: unknown }).TLS, true);
  const list = await runOk('nbdinfo', ['--list', `nbd://127.0.0.1:${port}`], { timeoutMs: TOOL_TIMEOUT_MS });
  t.match(list.stdout, EXPORT);
});

t.test('no TLS configured: STARTTLS gets POLICY, nbds:// fails, nbd:// works', { skip: toolsSkip ?? false }, async (t) => {
  const { certs } = await pki();
  const { port } = await serve(t, 'none');
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  client.sendOption(NBD_OPT_STARTTLS);
  t.same((await client.readOptionReplies()).map((reply) => reply.replyType), [NBD_REP_ERR_POLICY]);
  const secure = await run('nbdinfo', [nbdsUri(port, certs.dir)], { timeoutMs: TOOL_TIMEOUT_MS });
  t.not(secure.code, 0, 'nbds:// needs TLS');
  await runOk('nbdinfo', [`nbd://127.0.0.1:${port}/${EXPORT}`], { timeoutMs: TOOL_TIMEOUT_MS });
});

t.test('a client that does not trust our CA cannot connect', { skip: toolsSkip ?? false }, async (t) => {
  const { otherCa } = await pki();
  const { server, port, provider } = await serve(t, 'required');
  const result = await run('nbdinfo', [nbdsUri(port, otherCa.dir)], { timeoutMs: TOOL_TIMEOUT_MS });
  t.not(result.code, 0, describeRun(result));
  t.match(result.stderr, /certificate|verif|TLS|handshake/i);
  await waitFor(() => server.connectionCount() === 0, 'the refused connection to go');
  t.equal(provider.opened, 0);
});

t.test('client certificates required: only a certificate our CA signed gets in', { skip: toolsSkip ?? false }, async (t) => {
  const { certs, otherCa } = await pki();
  const { server, port, provider } = await serve(t, 'required', true);
  await runOk('nbdinfo', [nbdsUri(port, certs.dir)], { timeoutMs: TOOL_TIMEOUT_MS });
  // Trusts our CA but presents no certificate.
  const caOnly = dirOf('ca-only');
  await mkdir(caOnly, { recursive: true });
  await copyFile(join(certs.dir, 'ca-cert.pem'), join(caOnly, 'ca-cert.pem'));
  const anonymous = await run('nbdinfo', [nbdsUri(port, caOnly)], { timeoutMs: TOOL_TIMEOUT_MS });
  t.not(anonymous.code, 0, describeRun(anonymous));
  // Trusts our CA but presents a certificate another CA signed.
  const foreign = dirOf('foreign-client');
  await mkdir(foreign, { recursive: true });
  await copyFile(join(certs.dir, 'ca-cert.pem'), join(foreign, 'ca-cert.pem'));
  await copyFile(join(otherCa.dir, 'client-cert.pem'), join(foreign, 'client-cert.pem'));
  await copyFile(join(otherCa.dir, 'client-key.pem'), join(foreign, 'client-key.pem'));
  const impostor = await run('nbdinfo', [nbdsUri(port, foreign)], { timeoutMs: TOOL_TIMEOUT_MS });
  t.not(impostor.code, 0, describeRun(impostor));
  await waitFor(() => server.connectionCount() === 0, 'the refused connections to go');
  t.equal(provider.opened, 1, 'only the certified client opened the export');
});

/** Raw client: greeting, flags, STARTTLS, ACK. */
async function startTlsRaw(port: number): Promise<RawNbdClient> {
  const client = await RawNbdClient.open(port, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
  client.sendOption(NBD_OPT_STARTTLS);
  const replies = await client.readOptionReplies();
  if (replies.length !== 1 || replies[0]?.replyType !== NBD_REP_ACK) {
    throw new Error(`STARTTLS not acknowledged: ${JSON.stringify(replies.map((reply) => reply.replyType))}`);
  }
  return client;
}

t.test('garbage instead of a ClientHello costs only that connection', { skip: toolsSkip ?? false }, async (t) => {
  const { certs } = await pki();
  const { server, port, logLines } = await serve(t, 'required');
  const garbage = await startTlsRaw(port);
  t.teardown(() => garbage.destroy());
  garbage.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  await garbage.closed;
  t.pass('server closed the connection');
  const hangUp = await startTlsRaw(port);
  hangUp.destroy();
  await hangUp.closed;
  await waitFor(() => server.connectionCount() === 0, 'both broken connections to go');
  t.match(logLines.join(''), /NBD TLS handshake failed/, 'logged with the reason');
  await runOk('nbdinfo', [nbdsUri(port, certs.dir)], { timeoutMs: TOOL_TIMEOUT_MS });
  t.pass('a later client is served');
});

t.test('bytes sent after STARTTLS before its ACK are a protocol error', async (t) => {
  const { server, port, logLines } = await serve(t, 'required');
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  // One write: the option and a would-be ClientHello arrive together.
  const option = Buffer.alloc(16);
  option.writeBigUInt64BE(0x49484156454f5054n, 0);
  option.writeUInt32BE(NBD_OPT_STARTTLS, 8);
  client.send(Buffer.concat([option, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05])]));
  await client.closed;
  t.equal(client.pendingBytes, 0, 'no ACK: the upgrade never started');
  t.match(logLines.join(''), /data sent after NBD_OPT_STARTTLS before its ACK/);
  await waitFor(() => server.connectionCount() === 0, 'the connection to go');
});

function readPayload(reply: TransmissionReply): Buffer {
  if (reply.kind === 'simple') return reply.data;
  const data = decodeOffsetData(reply.payload);
  if (data instanceof ProtocolError) throw data;
  return data.data;
}

t.test('Node TLS client: STARTTLS twice is INVALID, then negotiation and I/O over TLS', async (t) => {
  const { certs } = await pki();
  const { port, provider, logLines } = await serve(t, 'required');
  const client = await startTlsRaw(port);
  t.teardown(() => client.destroy());
  const secure = await client.upgradeToTls({ ca: certs.caCertPem, host: '127.0.0.1' });
  t.ok(secure.authorized, 'server certificate verified against the test CA');
  client.sendOption(NBD_OPT_STARTTLS);
  t.same((await client.readOptionReplies()).map((reply) => reply.replyType), [NBD_REP_ERR_INVALID]);
  client.sendOption(NBD_OPT_LIST);
  t.same((await client.readOptionReplies()).map((reply) => reply.replyType), [NBD_REP_SERVER, NBD_REP_ACK]);
  const negotiated = await client.negotiate({ exportName: EXPORT, structuredReplies: true });
  t.equal(negotiated.sizeBytes, SIZE);
  const data = randomBytes(256 * 1024);
  client.request({ type: NBD_CMD_WRITE, flags: 0, handle: 1n, offset: MIB, lengthBytes: data.length }, data);
  const written = await client.readReply();
  t.equal(written.kind === 'simple' ? written.error : 0, 0);
  client.request({ type: NBD_CMD_READ, flags: 0, handle: 2n, offset: MIB, lengthBytes: data.length });
  t.same(readPayload(await client.readReply()), data, 'read back over TLS');
  client.request({ type: NBD_CMD_DISC, flags: 0, handle: 3n, offset: 0, lengthBytes: 0 });
  await client.closed;
  await waitFor(() => provider.outstandingHandles() === 0, 'handle released');
  t.match(logLines.join(''), /NBD TLS established/);
});

t.test('qemu-io writes and reads a pattern over TLS', { skip: qemuSkip ?? false }, async (t) => {
  const { certs } = await pki();
  const { port, device } = await serve(t, 'required');
  const result = await runOk(
    'qemu-io',
    [
      '--object',
      `tls-creds-x509,id=tls0,dir=${certs.dir},endpoint=client`,
      '--image-opts',
      `driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=${port},export=${EXPORT},tls-creds=tls0`,
      '-c',
      'write -P 0x5a 0 64k',
      '-c',
      'read -P 0x5a 0 64k',
    ],
    { timeoutMs: TOOL_TIMEOUT_MS },
  );
  t.notMatch(result.stdout, /Pattern verification failed/, describeRun(result));
  t.ok(device.stats.writes > 0);
  const head = Buffer.alloc(64 * 1024);
  await device.read(0, head);
  t.ok(head.every((byte) => byte === 0x5a), 'the pattern reached the device');
});
