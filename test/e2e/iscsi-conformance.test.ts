/**
 * Issue 5's yardstick: libiscsi's conformance suite (`iscsi-test-cu
 * --test=ALL --dataloss`, libiscsi 1.19) against a Plinth volume's target
 * (ARCHITECTURE "iSCSI": IQN `iqn.2026-11.io.plinth:<volume>`, LUN 0) must
 * pass at least as many tests as Linux's tgt does against a file LUN on this
 * kind of machine. The test prints the count and every failed test.
 *
 * `PLINTH_ISCSI_TGT_BASELINE=1` also re-measures tgt (about 25 s), to check
 * GOAL_PASSED on a new machine or libiscsi version.
 */
import t from 'tap';
import { makeTempDir, startDaemon } from '../helpers/daemon-harness.js';
import { describeIscsiTestCuRun, parseCunitResults, runIscsiTestCu, totalSkippedNotes } from '../setup/iscsi-test-cu.js';
import { missingToolsReason } from '../setup/e2e-process.js';
import { startTgtTarget, TGT_TOOLS } from '../setup/tgt-fixture.js';

/**
 * tgt 1.0.85 with a 1 GiB file-backed LUN, libiscsi 1.19.0, this machine
 * (2 cores, Debian 12), measured 2026-11-26: 222 of 230 passed in 21 s wall,
 * the same as the issue states. tgt's 8 failures are TGT_FAILED_TESTS.
 */
const GOAL_PASSED = 222;
const SUITE_TOTAL = 230;
const TGT_FAILED_TESTS = [
  'GetLBAStatus.BeyondEol',
  'PrinServiceactionRange.Range',
  'ProutReserve.OwnershipEA',
  'ProutReserve.OwnershipWE',
  'ProutReserve.OwnershipEARO',
  'ProutReserve.OwnershipWERO',
  'Reserve6.2Initiators',
  'iSCSIdatasn.iSCSIDataSnInvalid',
];
/**
 * The suite's `[SKIPPED]` notes against Plinth (a skipped test counts as
 * passed, so this is the ceiling that keeps optional commands from quietly
 * disappearing). 57 with libiscsi 1.19: what a replicated block volume
 * genuinely lacks (docs/iscsi.md "Conformance and performance"): WRITE
 * ATOMIC (11), EXTENDED COPY / RECEIVE COPY RESULTS (16), READ DEFECT DATA
 * (4), removable-medium and write-protected-LU tests (10), SANITIZE (11,
 * needs --allow-sanitize) and LBPPB < 2 (5, see scsi-geometry.ts).
 */
const MAX_SKIPPED_NOTES = 57;
/** tgt needs ~21 s; a JavaScript target on a busy 2-core CI box gets 8x that before we call it hung. */
const SUITE_TIMEOUT_MS = 180_000;
const VOLUME_NAME = 'conformance';
const VOLUME_SIZE = '512MiB';
const MIB = 1024 * 1024;

const toolsMissing = missingToolsReason(['iscsi-test-cu']);

t.test('the CUnit results parser reads passes, per-assertion failures and the summary', async (t) => {
  const xml = `<CUNIT_TEST_RUN_REPORT><CUNIT_RESULT_LISTING>
    <CUNIT_RUN_SUITE><CUNIT_RUN_SUITE_SUCCESS><SUITE_NAME> Read10 </SUITE_NAME>
      <CUNIT_RUN_TEST_RECORD><CUNIT_RUN_TEST_SUCCESS><TEST_NAME> Simple </TEST_NAME></CUNIT_RUN_TEST_SUCCESS></CUNIT_RUN_TEST_RECORD>
      <CUNIT_RUN_TEST_RECORD><CUNIT_RUN_TEST_FAILURE><TEST_NAME> BeyondEol </TEST_NAME><FILE_NAME> test_read10_beyond_eol.c </FILE_NAME>
        <LINE_NUMBER> 38 </LINE_NUMBER><CONDITION> CU_ASSERT_EQUAL(ret &lt; 0,1) </CONDITION></CUNIT_RUN_TEST_FAILURE></CUNIT_RUN_TEST_RECORD>
      <CUNIT_RUN_TEST_RECORD><CUNIT_RUN_TEST_FAILURE><TEST_NAME> BeyondEol </TEST_NAME><FILE_NAME> test_read10_beyond_eol.c </FILE_NAME>
        <LINE_NUMBER> 52 </LINE_NUMBER><CONDITION> CU_ASSERT_EQUAL(ret,0) </CONDITION></CUNIT_RUN_TEST_FAILURE></CUNIT_RUN_TEST_RECORD>
    </CUNIT_RUN_SUITE_SUCCESS></CUNIT_RUN_SUITE>
    <CUNIT_RUN_SUITE><CUNIT_RUN_SUITE_FAILURE><SUITE_NAME> Multipath </SUITE_NAME><FAILURE_REASON> Suite Initialization Failed </FAILURE_REASON></CUNIT_RUN_SUITE_FAILURE></CUNIT_RUN_SUITE>
  </CUNIT_RESULT_LISTING><CUNIT_RUN_SUMMARY>
    <CUNIT_RUN_SUMMARY_RECORD><TYPE> Test Cases </TYPE><TOTAL> 2 </TOTAL><RUN> 2 </RUN><SUCCEEDED> 1 </SUCCEEDED><FAILED> 1 </FAILED><INACTIVE> 0 </INACTIVE></CUNIT_RUN_SUMMARY_RECORD>
    <CUNIT_RUN_SUMMARY_RECORD><TYPE> Assertions </TYPE><TOTAL> 9 </TOTAL><RUN> 9 </RUN><SUCCEEDED> 7 </SUCCEEDED><FAILED> 2 </FAILED><INACTIVE> n/a </INACTIVE></CUNIT_RUN_SUMMARY_RECORD>
  </CUNIT_RUN_SUMMARY></CUNIT_TEST_RUN_REPORT>`;
  const results = parseCunitResults(xml);
  t.same(results.passedTests, ['Read10.Simple']);
  t.same(results.failedTests, [
    {
      name: 'Read10.BeyondEol',
      failures: [
        { file: 'test_read10_beyond_eol.c', line: 38, condition: 'CU_ASSERT_EQUAL(ret < 0,1)' },
        { file: 'test_read10_beyond_eol.c', line: 52, condition: 'CU_ASSERT_EQUAL(ret,0)' },
      ],
    },
  ]);
  t.same(results.suiteFailures, [{ suite: 'Multipath', reason: 'Suite Initialization Failed' }]);
  t.same(results.tests, { total: 2, ran: 2, passed: 1, failed: 1, inactive: 0 });
  t.same(results.asserts, { total: 9, ran: 9, passed: 7, failed: 2, inactive: 0 });
  t.equal(results.complete, true);
  const cut = parseCunitResults(xml.slice(0, xml.indexOf('<CUNIT_RUN_SUMMARY>')));
  t.equal(cut.complete, false, 'a run cut short has no summary');
  t.equal(cut.tests, undefined);
  t.same(cut.passedTests, ['Read10.Simple'], 'tests seen before the cut are still reported');
});

const baselineSkip = toolsMissing ?? missingToolsReason(TGT_TOOLS) ?? (process.env['PLINTH_ISCSI_TGT_BASELINE'] === '1' ? undefined : 'set PLINTH_ISCSI_TGT_BASELINE=1 to re-measure tgt');

t.test('baseline: tgt with a file LUN', { skip: baselineSkip ?? false }, async (t) => {
  const workDir = await makeTempDir(t, 'plinth-iscsi-tgt-');
  const tgt = await startTgtTarget({ workDir, sizeBytes: 1024 * MIB });
  t.teardown(() => tgt.stop());
  const run = await runIscsiTestCu({ url: tgt.url, timeoutMs: SUITE_TIMEOUT_MS });
  t.comment(describeIscsiTestCuRun(run));
  t.equal(run.results.complete, true, 'the suite ran to its end');
  t.equal(run.results.tests?.total, SUITE_TOTAL, 'the ALL group has the expected size');
  t.equal(run.results.passedTests.length, run.results.tests?.passed, 'parsed passes match the summary');
  t.equal(run.results.tests?.passed, GOAL_PASSED, 'tgt passes what GOAL_PASSED says');
  t.same(run.results.failedTests.map((test) => test.name), TGT_FAILED_TESTS, 'tgt fails the known tests');
});

t.test('plinthd passes iscsi-test-cu at least as well as tgt', { skip: toolsMissing ?? false }, async (t) => {
  const daemon = await startDaemon(t, { logLevel: 'warn' });
  const created = await daemon.api('POST', '/v1/volumes', { name: VOLUME_NAME, size: VOLUME_SIZE });
  t.equal(created.status, 201, `create ${VOLUME_NAME}: ${JSON.stringify(created.body)}`);
  // The URL twice: the MultipathIO tests log in through two sessions to the same LU.
  const url = daemon.iscsiUri(VOLUME_NAME);
  const run = await runIscsiTestCu({ url, secondPathUrl: url, timeoutMs: SUITE_TIMEOUT_MS });
  const summary = describeIscsiTestCuRun(run);
  t.comment(summary);
  if (!run.results.complete) t.comment(`suite log tail:\n${run.log.slice(-3000)}\n${daemon.describeOutput()}`);
  t.equal(run.results.complete, true, 'the suite ran to its end');
  t.equal(run.results.tests?.total, SUITE_TOTAL, 'the whole ALL group ran');
  const passed = run.results.tests?.passed ?? 0;
  t.ok(passed >= GOAL_PASSED, `passed ${passed} >= goal ${GOAL_PASSED} (tgt's score)`);
  const newFailures = run.results.failedTests.map((test) => test.name).filter((name) => !TGT_FAILED_TESTS.includes(name));
  t.comment(`failed where tgt passes: ${newFailures.length === 0 ? 'none' : newFailures.join(', ')}`);
  const skipped = totalSkippedNotes(run.skippedNotes);
  t.comment(`[SKIPPED] notes: ${skipped} (ceiling ${MAX_SKIPPED_NOTES})`);
  t.ok(skipped <= MAX_SKIPPED_NOTES, `${skipped} [SKIPPED] notes <= ${MAX_SKIPPED_NOTES}: no optional command stopped being supported`);
  t.same(run.results.suiteFailures, [], 'no suite failed to set up');
  t.ok(run.durationMs < SUITE_TIMEOUT_MS, `ran in ${(run.durationMs / 1000).toFixed(1)} s`);
  t.equal(daemon.exitStatus, null, 'plinthd is still running after the suite');
  const health = await daemon.api('GET', '/healthz');
  t.equal(health.status, 200, 'and still answers');
});
