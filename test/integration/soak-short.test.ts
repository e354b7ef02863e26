/**
 * Issue 7's CI soak: one minute of faults (kill -9, SIGSTOP/SIGCONT,
 * failpoints, disk faults, membership changes) on a
 * 3-node loopback cluster with a fixed seed, the model-checked workload on
 * two volumes, then convergence, a full read-back through NBD and an offline
 * byte-for-byte compare of every replica (test/soak/). Any model violation,
 * divergent replica, missed convergence or unfinished check fails it; the
 * message carries the summary and the replay command. The long soak is
 * `npm run soak -- --minutes N --seed S` (docs/testing.md "Chaos soak").
 */
import t from 'tap';
import { pino } from 'pino';
import { makeTempDir } from '../helpers/daemon-harness.js';
import { parseSoakArgs } from '../soak/soak-args.js';
import { failures, formatSummary } from '../soak/soak-report.js';
import { runSoak } from '../soak/soak-run.js';

const SEED = 20261126;
/** Every loopback kind (partitions need namespaces: the long soak's `--faults partition`). */
const CI_KINDS = 'kill,stop,failpoint,power-cut,disk,membership';

t.test('a one-minute chaos soak keeps every acknowledged write and converges with identical replicas', async (t) => {
  const logDir = await makeTempDir(t, 'plinth-soak-ci-logs-');
  const options = parseSoakArgs(
    ['--minutes', '1', '--seed', String(SEED), '--nodes', '3', '--faults', CI_KINDS, '--volumes', '2', '--log-dir', logDir, '--daemon-log-level', 'warn'],
    SEED,
  );
  const summary = await runSoak(options, t, pino({ level: process.env['SOAK_LOG_LEVEL'] ?? 'silent' }));
  const report = formatSummary(summary);
  t.comment(report);
  t.same(failures(summary), [], 'no violation, divergence or missed convergence (summary above)');
  t.ok(summary.faults.length >= 5, `faults were injected (${summary.faults.length})`);
  t.ok(summary.opsOk.write > 1000 && summary.opsOk.read > 500, `the workload ran (${summary.opsOk.write} writes, ${summary.opsOk.read} reads acknowledged)`);
  t.ok(summary.readsChecked >= 2 * 4096, `every block was read back through NBD (${summary.readsChecked} reads checked)`);
  t.same(summary.replicas.map((result) => result.replicasRead), [3, 3], 'all three replicas of each volume were compared');
});
