/**
 * SIGTERM while clients are writing: the daemon stops accepting, drains
 * in-flight I/O, flushes and exits 0 (daemon task: "one AbortController ...
 * exit 0"). After a restart on the same data dir, everything that was
 * acknowledged as durable before the signal is there (ARCHITECTURE invariant
 * 1): data covered by a FLUSH (nbdcopy --flush) and every write acknowledged
 * with FUA.
 */
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { apiRequest, createVolume } from '../setup/e2e-api.js';
import { sha256File, writeSeededFile } from '../setup/e2e-data.js';
import type { E2eDaemon } from '../setup/e2e-daemon.js';
import { makeWorkDir, startDaemon } from '../setup/e2e-fixture.js';
import { nbdsh } from '../setup/e2e-nbd.js';
import { describeRun, killAndWait, missingToolsReason, runOk, startBackground } from '../setup/e2e-process.js';

const MIB = 1024 ** 2;
const FLUSHED_REGION_BYTES = 32 * MIB;
const FIO_OFFSET_BYTES = 64 * MIB;
const FIO_REGION_BYTES = 128 * MIB;
const FUA_OFFSET_BYTES = 192 * MIB;
const FUA_MAX_BLOCKS = 16_384;
const LOAD_RUNTIME_SEC = 30;
const PROGRESS_TIMEOUT_MS = 20_000;

/** 4 KiB blocks, each holding its own index, written one at a time with FUA; an index is printed only once acknowledged. */
const FUA_WRITER_SCRIPT = `
import struct, sys, time
deadline = time.time() + ${LOAD_RUNTIME_SEC}
i = 0
try:
    while i < ${FUA_MAX_BLOCKS} and time.time() < deadline:
        h.pwrite(struct.pack('>Q', i) * 512, ${FUA_OFFSET_BYTES} + i * 4096, nbd.CMD_FLAG_FUA)
        print('ACK', i, flush=True)
        i += 1
except nbd.Error as e:
    print('STOPPED', i, e.string, flush=True)
`;

function fuaCheckScript(blockCount: number): string {
  return `
import struct
bad = []
chunk_blocks = 4096
for first in range(0, ${blockCount}, chunk_blocks):
    n = min(chunk_blocks, ${blockCount} - first)
    data = h.pread(n * 4096, ${FUA_OFFSET_BYTES} + first * 4096)
    for k in range(n):
        if data[k * 4096:(k + 1) * 4096] != struct.pack('>Q', first + k) * 512:
            bad.append(first + k)
print('BAD', len(bad), bad[:10])
`;
}

const FLUSHED_SHA_SCRIPT = `
import hashlib
digest = hashlib.sha256()
for offset in range(0, ${FLUSHED_REGION_BYTES}, ${16 * MIB}):
    digest.update(h.pread(${16 * MIB}, offset))
print('SHA', digest.hexdigest())
`;

function lastAck(output: string): number {
  const acks = [...output.matchAll(/^ACK (\d+)$/gm)];
  const last = acks[acks.length - 1];
  return last === undefined ? -1 : Number(last[1]);
}

async function allocatedBytes(daemon: E2eDaemon, name: string): Promise<number> {
  const response = await apiRequest(daemon.apiUrl, { method: 'GET', path: `/v1/volumes/${name}`, token: daemon.token });
  const value = (response.body as { allocatedBytes?: unknown } | undefined)?.allocatedBytes;
  return typeof value === 'number' ? value : 0;
}

const skip = missingToolsReason(['fio', 'nbdsh', 'nbdcopy']);

t.test('SIGTERM under fio load drains, exits 0, keeps acknowledged data', { skip: skip ?? false }, async (t) => {
  const workDir = await makeWorkDir(t, 'drain');
  const daemon = await startDaemon(t, workDir, ['d0.img:1GiB']);
  await createVolume(daemon.apiUrl, daemon.token, 'drain', '256MiB');

  const flushedSource = join(workDir, 'flushed.img');
  await writeSeededFile(flushedSource, FLUSHED_REGION_BYTES, 'sigterm-flushed');
  const flushedSum = await sha256File(flushedSource);
  await runOk('nbdcopy', ['--flush', flushedSource, daemon.nbdUri('drain')], { timeoutMs: 60_000 });

  const fio = startBackground('fio', [
    '--name=load', '--ioengine=nbd', `--uri=${daemon.nbdUri('drain')}`, '--rw=randwrite', '--bs=4k', '--iodepth=32',
    `--offset=${FIO_OFFSET_BYTES}`, `--size=${FIO_REGION_BYTES}`, '--fsync=64', `--runtime=${LOAD_RUNTIME_SEC}`, '--time_based',
  ]);
  const writer = startBackground('nbdsh', ['-u', daemon.nbdUri('drain'), '-c', FUA_WRITER_SCRIPT]);
  t.teardown(async () => {
    await killAndWait(fio.child, 'SIGKILL', 5_000);
    await killAndWait(writer.child, 'SIGKILL', 5_000);
  });

  await t.test('load is running', async (t) => {
    const deadline = Date.now() + PROGRESS_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const fioBusy = (await allocatedBytes(daemon, 'drain')) >= FLUSHED_REGION_BYTES + 32 * MIB;
      if (fioBusy && lastAck(writer.output()) >= 100) break;
      await delay(100);
    }
    t.ok(lastAck(writer.output()) >= 100, `FUA writer acknowledged blocks: ${writer.output().slice(-300)}`);
    t.ok((await allocatedBytes(daemon, 'drain')) >= FLUSHED_REGION_BYTES + 32 * MIB, `fio is writing: ${fio.output().slice(-300)}`);
  });

  let acknowledgedBlocks = 0;
  await t.test('SIGTERM: the daemon drains and exits 0', async (t) => {
    const started = Date.now();
    const status = await daemon.stop();
    t.equal(status.code, 0, `exit code 0 after ${Date.now() - started} ms (signal ${status.signal})`);
    await Promise.all([killAndWait(fio.child, 'SIGTERM', 15_000), killAndWait(writer.child, 'SIGTERM', 15_000)]);
    acknowledgedBlocks = lastAck(writer.output()) + 1;
    t.ok(acknowledgedBlocks > 0, `${acknowledgedBlocks} FUA blocks acknowledged before shutdown`);
  });

  await t.test('restart: flushed data and FUA writes are all there', async (t) => {
    await daemon.restart();
    const flushed = await nbdsh(daemon.nbdUri('drain'), FLUSHED_SHA_SCRIPT, 60_000);
    t.equal(flushed.code, 0, describeRun(flushed));
    t.match(flushed.stdout, `SHA ${flushedSum}`, 'the flushed 32 MiB are intact');
    const fua = await nbdsh(daemon.nbdUri('drain'), fuaCheckScript(acknowledgedBlocks), 60_000);
    t.equal(fua.code, 0, describeRun(fua));
    t.match(fua.stdout, /^BAD 0 /m, `all ${acknowledgedBlocks} acknowledged FUA blocks intact`);
  });
});
