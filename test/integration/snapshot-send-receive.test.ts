import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { makeTempDir, type DaemonProcess } from '../helpers/daemon-harness.js';
import { runClient, startCluster, writeClient } from './fixtures/replication-cluster.js';

/**
 * Issue 8 "Show it": send/receive between two separate 3-node clusters on
 * one machine, through the real CLI (`plinth volume send | plinth volume
 * receive`). Volume content is read back over NBD on both sides and
 * compared by SHA-256: full, then incremental; a stream with one flipped
 * byte is refused and leaves no volume; a truncated transfer resumes with
 * `receive --resume` + `send --from-chunk N` and verifies.
 */

const PLINTH_CLI = fileURLToPath(new URL('../../api/cli/plinth.js', import.meta.url));
const MIB = 1024 * 1024;

const DIGEST_PY = String.raw`import hashlib, json, random, sys
import nbd

def connect(uri):
    h = nbd.NBD()
    h.connect_uri(uri)
    return h

def pattern(uri, seed, offset, length):
    h = connect(uri)
    rng = random.Random(int(seed))
    offset, length = int(offset), int(length)
    step = 1024 * 1024
    for at in range(offset, offset + length, step):
        h.pwrite(rng.randbytes(min(step, offset + length - at)), at)
    h.flush()
    h.shutdown()
    print(json.dumps({"written": length}), flush=True)

def digest(uri):
    h = connect(uri)
    size = h.get_size()
    hash = hashlib.sha256()
    step = 4 * 1024 * 1024
    for at in range(0, size, step):
        hash.update(h.pread(min(step, size - at), at))
    h.shutdown()
    print(json.dumps({"sha256": hash.hexdigest(), "size": size}), flush=True)

if __name__ == "__main__":
    {"pattern": pattern, "digest": digest}[sys.argv[1]](*sys.argv[2:])
`;

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function cli(daemon: DaemonProcess, args: readonly string[]): Promise<CliResult> {
  const token = await daemon.token();
  return new Promise((resolve) => {
    execFile(process.execPath, [PLINTH_CLI, '--api', daemon.apiUrl, '--token', token, ...args], { timeout: 60_000, maxBuffer: 4 * MIB }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

/** `plinth --api A volume send … | plinth --api B volume receive …` through a shell pipe (pipefail). */
async function pipe(from: DaemonProcess, sendArgs: readonly string[], to: DaemonProcess, receiveArgs: readonly string[]): Promise<CliResult> {
  const quote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;
  const side = async (daemon: DaemonProcess, args: readonly string[]): Promise<string> =>
    [process.execPath, PLINTH_CLI, '--api', daemon.apiUrl, '--token', await daemon.token(), ...args].map(quote).join(' ');
  const script = `set -o pipefail; ${await side(from, sendArgs)} | ${await side(to, receiveArgs)}`;
  return new Promise((resolve) => {
    execFile('/bin/bash', ['-c', script], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

async function digestOf(script: string, daemon: DaemonProcess, exportName: string): Promise<string> {
  const [line] = await runClient(script, ['digest', daemon.nbdUri(exportName)], 60_000);
  const sha = line?.['sha256'];
  if (typeof sha !== 'string') throw new Error(`no digest for ${exportName}: ${JSON.stringify(line)}`);
  return sha;
}

async function snapshot(t: Test, daemon: DaemonProcess, volume: string, name: string): Promise<void> {
  const created = await daemon.api('POST', `/v1/volumes/${volume}/snapshots`, { name }, { timeoutMs: 30_000 });
  t.equal(created.status, 201, `snapshot ${volume}@${name}: ${JSON.stringify(created.body)}`);
}

t.test('two clusters: full and incremental copies equal their snapshots; corrupt refused; truncated resumes', async (t) => {
  const [a1] = await startCluster(t, { dataDirPrefix: 'plinth-sendrecv-a-' });
  const [b1, b2] = await startCluster(t, { dataDirPrefix: 'plinth-sendrecv-b-' });
  const script = await writeClient(t, DIGEST_PY);
  const dir = await makeTempDir(t, 'plinth-sendrecv-files-');

  t.equal((await a1.api('POST', '/v1/volumes', { name: 'db', size: '64MiB', replicas: 3 })).status, 201);
  await runClient(script, ['pattern', a1.nbdUri('db'), '1', '0', String(36 * MIB)], 60_000);
  await snapshot(t, a1, 'db', 's1');

  // Full: straight from cluster A into cluster B through a pipe.
  const full = await pipe(a1, ['volume', 'send', 'db@s1'], b1, ['volume', 'receive', 'copy', '--replicas', '3']);
  t.equal(full.code, 0, `full send | receive: ${full.stderr}`);
  t.match(full.stdout, /received copy@s1/);
  const s1 = await digestOf(script, a1, 'db@s1');
  t.equal(await digestOf(script, b2, 'copy@s1'), s1, 'B:copy@s1 = A:db@s1 (read on another node of B)');
  t.equal(await digestOf(script, b1, 'copy'), s1, 'B:copy = A:db@s1');
  t.equal((await b1.api('POST', '/v1/volumes/copy/detach', {})).status, 200);

  // Incremental: change 2 MiB, snapshot, send the difference (to a file first, to check its size).
  await runClient(script, ['pattern', a1.nbdUri('db'), '2', String(5 * MIB), String(2 * MIB)], 60_000);
  await snapshot(t, a1, 'db', 's2');
  const incrementalFile = join(dir, 'incremental.plsend');
  const sent = await cli(a1, ['volume', 'send', 'db@s2', '--base', 's1', '--output', incrementalFile]);
  t.equal(sent.code, 0, sent.stderr);
  const incrementalBytes = (await readFile(incrementalFile)).length;
  t.ok(incrementalBytes < 4 * MIB, `the incremental stream is small (${incrementalBytes} bytes)`);
  const received = await cli(b1, ['volume', 'receive', 'copy', '--input', incrementalFile]);
  t.equal(received.code, 0, received.stderr);
  const s2 = await digestOf(script, a1, 'db@s2');
  t.not(s2, s1);
  t.equal(await digestOf(script, b1, 'copy'), s2, 'B:copy = A:db@s2 after the incremental');
  t.equal((await b1.api('POST', '/v1/volumes/copy/detach', {})).status, 200);

  // Corrupt: one flipped byte in a data chunk: refused, no volume.
  const fullFile = join(dir, 'full.plsend');
  t.equal((await cli(a1, ['volume', 'send', 'db@s2', '--output', fullFile])).code, 0);
  const bytes = await readFile(fullFile);
  const corrupt = Buffer.from(bytes);
  const at = Math.floor(corrupt.length / 2);
  corrupt[at] = (corrupt[at] ?? 0) ^ 0x10;
  await writeFile(join(dir, 'corrupt.plsend'), corrupt);
  const refused = await cli(b1, ['volume', 'receive', 'bad', '--input', join(dir, 'corrupt.plsend')]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /STREAM_CHECKSUM_MISMATCH/);
  t.equal((await b1.api('GET', '/v1/volumes/bad')).status, 404, 'no volume left behind');

  // Truncated at 60 %: hidden, resumable; resume from the chunk the receiver names.
  await writeFile(join(dir, 'cut.plsend'), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  const cut = await cli(b1, ['volume', 'receive', 'res', '--input', join(dir, 'cut.plsend')]);
  t.equal(cut.code, 1);
  t.match(cut.stderr, /STREAM_TRUNCATED/);
  const status = await cli(b1, ['--json', 'volume', 'receive-status', 'res']);
  const { nextChunk, receiving } = JSON.parse(status.stdout) as { nextChunk: number; receiving: boolean };
  t.ok(receiving && nextChunk > 0, `receiving, resume at chunk ${nextChunk}`);
  const resumed = await pipe(a1, ['volume', 'send', 'db@s2', '--from-chunk', String(nextChunk)], b1, ['volume', 'receive', 'res', '--resume']);
  t.equal(resumed.code, 0, resumed.stderr);
  t.equal(await digestOf(script, b1, 'res'), s2, 'resumed copy = A:db@s2');
});
