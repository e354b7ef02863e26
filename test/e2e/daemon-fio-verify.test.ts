/**
 * fio's nbd engine (libnbd) against the daemon: 4 KiB random writes at depth
 * 32 over two connections (two jobs, disjoint halves), each block carrying a
 * crc32c that fio verifies when reading back; then a separate read-only
 * verify pass over a fresh connection. A verify pass against an empty volume
 * must fail, proving the check can bite.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { createVolume } from '../setup/e2e-api.js';
import { makeWorkDir, startDaemon } from '../setup/e2e-fixture.js';
import { describeRun, missingToolsReason, run } from '../setup/e2e-process.js';

const MIB = 1024 ** 2;
const REGION_BYTES = 32 * MIB;
/** fio stops at this bound even if the daemon is slow; a pass takes seconds. */
const FIO_RUNTIME_SEC = 40;
const FIO_TIMEOUT_MS = (FIO_RUNTIME_SEC + 30) * 1000;

interface FioJobReport {
  readonly jobname: string;
  readonly error: number;
  readonly read: { readonly io_bytes: number };
  readonly write: { readonly io_bytes: number };
}

function fioArgs(uri: string, outputPath: string, verifyOnly: boolean): string[] {
  return [
    '--name=verify',
    '--ioengine=nbd',
    `--uri=${uri}`,
    '--rw=randwrite',
    '--bs=4k',
    '--iodepth=32',
    '--numjobs=2',
    `--size=${REGION_BYTES}`,
    `--offset_increment=${REGION_BYTES}`,
    '--verify=crc32c',
    '--verify_fatal=1',
    // No local-*-verify.state files left in the cwd; the verify-only pass
    // replays the same seeded sequence instead.
    '--verify_state_save=0',
    '--randrepeat=1',
    `--runtime=${FIO_RUNTIME_SEC}`,
    '--output-format=json',
    `--output=${outputPath}`,
    ...(verifyOnly ? ['--verify_only'] : []),
  ];
}

async function fioJobs(outputPath: string): Promise<FioJobReport[]> {
  const parsed = JSON.parse(await readFile(outputPath, 'utf8')) as { jobs?: FioJobReport[] };
  return parsed.jobs ?? [];
}

const skip = missingToolsReason(['fio']);

t.test('fio randwrite with crc32c verify over two connections', { skip: skip ?? false }, async (t) => {
  const workDir = await makeWorkDir(t, 'fio');
  const daemon = await startDaemon(t, workDir, ['d0.img:2GiB']);
  await createVolume(daemon.apiUrl, daemon.token, 'fio-vol', '256MiB');
  await createVolume(daemon.apiUrl, daemon.token, 'empty-vol', '256MiB');

  await t.test('write pass verifies clean', async (t) => {
    const output = join(workDir, 'write.json');
    const result = await run('fio', fioArgs(daemon.nbdUri('fio-vol'), output, false), { timeoutMs: FIO_TIMEOUT_MS });
    t.equal(result.code, 0, `fio exits 0: ${describeRun(result)}`);
    const jobs = await fioJobs(output);
    t.equal(jobs.length, 2, 'two jobs (two NBD connections)');
    for (const job of jobs) {
      t.equal(job.error, 0, `job ${job.jobname} has no error`);
      t.equal(job.write.io_bytes, REGION_BYTES, 'each job wrote its whole region');
      t.equal(job.read.io_bytes, REGION_BYTES, 'and read all of it back for verification');
    }
  });

  await t.test('separate verify-only pass reads everything back intact', async (t) => {
    const output = join(workDir, 'verify.json');
    const result = await run('fio', fioArgs(daemon.nbdUri('fio-vol'), output, true), { timeoutMs: FIO_TIMEOUT_MS });
    t.equal(result.code, 0, `fio --verify_only exits 0: ${describeRun(result)}`);
    const jobs = await fioJobs(output);
    t.equal(jobs.length, 2);
    for (const job of jobs) {
      t.equal(job.error, 0, `job ${job.jobname} verified`);
      t.equal(job.read.io_bytes, REGION_BYTES, 'verified the whole region');
    }
  });

  await t.test('the same verify pass fails on a volume never written', async (t) => {
    const output = join(workDir, 'negative.json');
    const result = await run('fio', fioArgs(daemon.nbdUri('empty-vol'), output, true), { timeoutMs: FIO_TIMEOUT_MS });
    t.not(result.code, 0, 'fio reports verify failures on zeroes');
    t.match(`${result.stdout}${result.stderr}`, /bad magic header|crc32c/i, 'and says the blocks did not verify');
  });
});
