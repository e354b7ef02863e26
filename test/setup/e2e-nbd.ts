/**
 * NBD clients from libnbd (nbdinfo, nbdsh) as the e2e tests use them, with
 * their JSON parsed into the few fields the tests assert on.
 */
import { describeRun, run, runOk, type RunResult } from './e2e-process.js';

const TOOL_TIMEOUT_MS = 30_000;

export interface NbdinfoExport {
  readonly name: string;
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  readonly canMultiConn: boolean;
  readonly canFlush: boolean;
  readonly canFua: boolean;
  readonly canTrim: boolean;
  readonly canZero: boolean;
}

function field(record: Record<string, unknown>, key: string): unknown {
  return record[key];
}

function toExport(value: unknown): NbdinfoExport {
  if (typeof value !== 'object' || value === null) throw new Error(`nbdinfo export is not an object: ${String(value)}`);
  const record = value as Record<string, unknown>;
  const name = field(record, 'export-name');
  const sizeBytes = field(record, 'export-size');
  if (typeof name !== 'string' || typeof sizeBytes !== 'number') {
    throw new Error(`nbdinfo export lacks export-name/export-size: ${JSON.stringify(value)}`);
  }
  return {
    name,
    sizeBytes,
    readOnly: field(record, 'is_read_only') === true,
    canMultiConn: field(record, 'can_multi_conn') === true,
    canFlush: field(record, 'can_flush') === true,
    canFua: field(record, 'can_fua') === true,
    canTrim: field(record, 'can_trim') === true,
    canZero: field(record, 'can_zero') === true,
  };
}

export function parseNbdinfoJson(text: string): NbdinfoExport[] {
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || !('exports' in parsed) || !Array.isArray(parsed.exports)) {
    throw new Error(`nbdinfo --json output has no exports array: ${text.slice(0, 500)}`);
  }
  const exports: unknown[] = parsed.exports;
  return exports.map(toExport);
}

/** `nbdinfo --json URI` for one export. */
export async function nbdinfoExport(uri: string): Promise<NbdinfoExport> {
  const result = await runOk('nbdinfo', ['--json', '--no-content', uri], { timeoutMs: TOOL_TIMEOUT_MS });
  const [only] = parseNbdinfoJson(result.stdout);
  if (only === undefined) throw new Error(`nbdinfo listed no export: ${describeRun(result)}`);
  return only;
}

/** `nbdinfo --list --json URI`: every export the server lists. */
export async function nbdinfoList(uri: string): Promise<NbdinfoExport[]> {
  const result = await runOk('nbdinfo', ['--list', '--json', '--no-content', uri], { timeoutMs: TOOL_TIMEOUT_MS });
  return parseNbdinfoJson(result.stdout);
}

/** Plain `nbdinfo URI` without insisting on success (for refusals). */
export function nbdinfoRaw(uri: string): Promise<RunResult> {
  return run('nbdinfo', ['--no-content', uri], { timeoutMs: TOOL_TIMEOUT_MS });
}

/**
 * Run a Python script in nbdsh with `h` connected to the URI (nbdsh -u URI -c
 * SCRIPT). Returns the result without throwing so tests can check errno text.
 */
export function nbdsh(uri: string, script: string, timeoutMs = TOOL_TIMEOUT_MS): Promise<RunResult> {
  return run('nbdsh', ['-u', uri, '-c', script], { timeoutMs });
}
