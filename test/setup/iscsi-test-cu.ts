/**
 * libiscsi's conformance suite, `iscsi-test-cu` (libiscsi-bin 1.19), run
 * against an iSCSI URL with a time bound, and its result parsed.
 *
 * The run uses CUnit's automated mode (`-x`), which writes
 * `CUnitAutomated-Results.xml` into the working directory: one record per
 * test (success, or one failure record per failed assertion with file, line
 * and condition) and a run summary at the end. The text modes interleave the
 * suite's own `[SKIPPED]` log lines with CUnit's failure lines, so the XML is
 * the reliable source. A run cut short (timeout, a crash of the tool) has no
 * summary: `complete` is false and the tests seen so far are still reported.
 *
 * "Passed" is CUnit's count: a test the suite skips (the target does not
 * implement an optional command) calls CU_PASS and counts as passed, the same
 * way for every target, which is how the tgt baseline is counted.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toolEnv } from './e2e-process.js';

export const ISCSI_TEST_CU = 'iscsi-test-cu';
export const RESULTS_FILE = 'CUnitAutomated-Results.xml';
/** Two initiator names: the reservation tests (Reserve6.2Initiators, Prout*) log in as both. */
export const INITIATOR_NAMES = ['iqn.2026-11.io.plinth.test:initiator-a', 'iqn.2026-11.io.plinth.test:initiator-b'] as const;

export interface RunCounts {
  readonly total: number;
  readonly ran: number;
  readonly passed: number;
  readonly failed: number;
  readonly inactive: number;
}

export interface AssertionFailure {
  readonly file: string;
  readonly line: number;
  readonly condition: string;
}

export interface FailedTest {
  /** `Suite.Test`, as `--test=ALL.Suite.Test` selects it. */
  readonly name: string;
  readonly failures: readonly AssertionFailure[];
}

export interface SuiteFailure {
  readonly suite: string;
  readonly reason: string;
}

export interface CunitResults {
  /** `Suite.Test` of every test that passed (skipped ones included, see above). */
  readonly passedTests: readonly string[];
  readonly failedTests: readonly FailedTest[];
  /** Suites whose set-up failed (none of their tests ran). */
  readonly suiteFailures: readonly SuiteFailure[];
  /** The "Test Cases" summary row; undefined when the run did not finish. */
  readonly tests: RunCounts | undefined;
  readonly asserts: RunCounts | undefined;
  /** True when the summary was written, i.e. the tool ran to its end. */
  readonly complete: boolean;
}

export interface IscsiTestCuOptions {
  /** `iscsi://127.0.0.1:PORT/<target-iqn>/<lun>` */
  readonly url: string;
  /**
   * A second URL for the same logical unit (usually the same URL again): the
   * MultipathIO tests log in through both and skip without it.
   */
  readonly secondPathUrl?: string;
  /** CUnit test pattern: `ALL`, `ALL.Inquiry`, `ALL.Read10.Simple`. */
  readonly test?: string;
  /** `--dataloss`: allow the destructive (write) tests. Default true. */
  readonly dataloss?: boolean;
  readonly timeoutMs: number;
}

export interface IscsiTestCuRun {
  readonly results: CunitResults;
  readonly durationMs: number;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  /** The suite's own log (`[SKIPPED]` / `[FAILED]` lines), bounded. */
  readonly log: string;
  /** The suite's `[SKIPPED] <reason>` notes (optional features the target lacks), reason → how often. */
  readonly skippedNotes: ReadonlyMap<string, number>;
  readonly command: string;
}

const MAX_LOG_CHARS = 2_000_000;

/** XML text of a CUnit element; CUnit escapes &, <, > (and quotes) in names and conditions. */
function unescapeXml(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&')
    .trim();
}

function countsRow(xml: string, type: string): RunCounts | undefined {
  const pattern = new RegExp(
    `<TYPE>\\s*${type}\\s*</TYPE>\\s*<TOTAL>\\s*(\\d+)\\s*</TOTAL>\\s*<RUN>\\s*(\\d+)\\s*</RUN>\\s*` +
      `<SUCCEEDED>\\s*(\\d+)\\s*</SUCCEEDED>\\s*<FAILED>\\s*(\\d+)\\s*</FAILED>\\s*<INACTIVE>\\s*(\\d+|n/a)\\s*</INACTIVE>`,
  );
  const match = pattern.exec(xml);
  if (match === null) return undefined;
  const [, total, ran, passed, failed, inactive] = match;
  return { total: Number(total), ran: Number(ran), passed: Number(passed), failed: Number(failed), inactive: inactive === 'n/a' ? 0 : Number(inactive) };
}

/**
 * Parse `CUnitAutomated-Results.xml` (pure). Records are read in document
 * order: a SUITE_NAME opens a suite, test records belong to the last one.
 */
export function parseCunitResults(xml: string): CunitResults {
  const record =
    /<SUITE_NAME>([\s\S]*?)<\/SUITE_NAME>(?:\s*<FAILURE_REASON>([\s\S]*?)<\/FAILURE_REASON>)?|<CUNIT_RUN_TEST_SUCCESS>\s*<TEST_NAME>([\s\S]*?)<\/TEST_NAME>|<CUNIT_RUN_TEST_FAILURE>\s*<TEST_NAME>([\s\S]*?)<\/TEST_NAME>\s*<FILE_NAME>([\s\S]*?)<\/FILE_NAME>\s*<LINE_NUMBER>([\s\S]*?)<\/LINE_NUMBER>\s*<CONDITION>([\s\S]*?)<\/CONDITION>/g;
  let suite = '';
  const passed: string[] = [];
  const failed = new Map<string, AssertionFailure[]>();
  const suiteFailures: SuiteFailure[] = [];
  for (const match of xml.matchAll(record)) {
    const [, suiteName, suiteReason, passedName, failedName, file, line, condition] = match;
    if (suiteName !== undefined) {
      suite = unescapeXml(suiteName);
      if (suiteReason !== undefined) suiteFailures.push({ suite, reason: unescapeXml(suiteReason) });
    } else if (passedName !== undefined) {
      passed.push(`${suite}.${unescapeXml(passedName)}`);
    } else if (failedName !== undefined) {
      const name = `${suite}.${unescapeXml(failedName)}`;
      const failures = failed.get(name) ?? [];
      failures.push({ file: unescapeXml(file ?? ''), line: Number(unescapeXml(line ?? '')), condition: unescapeXml(condition ?? '') });
      failed.set(name, failures);
    }
  }
  const tests = countsRow(xml, 'Test Cases');
  return {
    passedTests: passed,
    failedTests: [...failed].map(([name, failures]) => ({ name, failures })),
    suiteFailures,
    tests,
    asserts: countsRow(xml, 'Assertions'),
    complete: tests !== undefined && xml.includes('</CUNIT_TEST_RUN_REPORT>'),
  };
}

export function iscsiTestCuArgs(options: IscsiTestCuOptions): string[] {
  const args = [`--test=${options.test ?? 'ALL'}`, '-x', '-i', INITIATOR_NAMES[0], '-I', INITIATOR_NAMES[1]];
  if (options.dataloss !== false) args.push('--dataloss');
  args.push(options.url);
  if (options.secondPathUrl !== undefined) args.push(options.secondPathUrl);
  return args;
}

/**
 * Run the suite in a scratch directory (the XML lands there) and parse the
 * result. Never throws for failed tests or a non-zero exit: the caller
 * judges `results`. SIGKILL at `timeoutMs` (then `timedOut`, `complete` false).
 */
export async function runIscsiTestCu(options: IscsiTestCuOptions): Promise<IscsiTestCuRun> {
  const workDir = await mkdtemp(join(tmpdir(), 'plinth-iscsi-test-cu-'));
  try {
    const args = iscsiTestCuArgs(options);
    const startedMs = Date.now();
    const child = spawn(ISCSI_TEST_CU, args, { cwd: workDir, env: toolEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const collect = (chunk: Buffer): void => {
      if (log.length < MAX_LOG_CHARS) log += chunk.toString('utf8');
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, closeSignal) => resolve([code, closeSignal]));
    }).finally(() => clearTimeout(timer));
    const xml = await readFile(join(workDir, RESULTS_FILE), 'utf8').catch((err: unknown) => {
      // No results file at all (the tool died before its first suite): report an empty, incomplete run.
      log += `\n[no ${RESULTS_FILE}: ${err instanceof Error ? err.message : String(err)}]`;
      return '';
    });
    return {
      results: parseCunitResults(xml),
      durationMs: Date.now() - startedMs,
      exitCode,
      signal,
      timedOut,
      log,
      skippedNotes: countSkippedNotes(log),
      command: [ISCSI_TEST_CU, ...args].join(' '),
    };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** How many `[SKIPPED]` notes the suite printed in all. */
export function totalSkippedNotes(notes: ReadonlyMap<string, number>): number {
  return [...notes.values()].reduce((sum, count) => sum + count, 0);
}

export function countSkippedNotes(log: string): Map<string, number> {
  const notes = new Map<string, number>();
  for (const match of log.matchAll(/\[SKIPPED\] ([^\n]*?)\s*$/gm)) {
    const reason = match[1] ?? '';
    notes.set(reason, (notes.get(reason) ?? 0) + 1);
  }
  return notes;
}

/** A few lines for a test's output: counts, duration and every failed test with its first failed assertion. */
export function describeIscsiTestCuRun(run: IscsiTestCuRun): string {
  const { results } = run;
  const counts = results.tests;
  const head = counts === undefined
    ? `iscsi-test-cu did not finish (exit ${run.exitCode ?? run.signal}${run.timedOut ? ', timed out' : ''}): ${results.passedTests.length} passed, ${results.failedTests.length} failed so far`
    : `iscsi-test-cu: ${counts.passed}/${counts.total} passed, ${counts.failed} failed, ${counts.inactive} inactive`;
  const skipped = totalSkippedNotes(run.skippedNotes);
  const lines = [`${head} in ${(run.durationMs / 1000).toFixed(1)} s (${skipped} [SKIPPED] notes)`];
  for (const test of results.failedTests) {
    const first = test.failures[0];
    const where = first === undefined ? '' : ` — ${first.file}:${first.line} ${first.condition}`;
    lines.push(`  FAILED ${test.name} (${test.failures.length} assertion(s))${where}`);
  }
  for (const failure of results.suiteFailures) lines.push(`  SUITE FAILED ${failure.suite}: ${failure.reason}`);
  for (const [reason, count] of run.skippedNotes) lines.push(`  skipped ${count}x: ${reason}`);
  return lines.join('\n');
}
