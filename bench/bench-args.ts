/**
 * The command line the side-by-side benchmarks share (nbd-bench.ts,
 * iscsi-bench.ts): Plinth against a reference target, the same flags, the
 * same row and target selection; each bench names its rows, its targets
 * and how strict its numbers are.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseSize } from '../common/sizes.js';

export interface SideBySideOptions<Row, Target extends string> {
  readonly runtimeSec: number;
  readonly rounds: number;
  readonly sizeBytes: number;
  readonly rows: readonly Row[];
  readonly targets: readonly Target[];
  readonly cpuProfileDir: string | undefined;
  readonly json: boolean;
  readonly workDir: string | undefined;
}

export interface SideBySideSpec<Row extends { readonly id: string }, Target extends string> {
  /** Every row, in the default order; --rows picks some by id. */
  readonly rows: readonly Row[];
  /** Every target, in the default order; --targets picks some. */
  readonly targets: readonly Target[];
  readonly parseRuntimeSec: (text: string, flag: string) => number;
  readonly parseRounds: (text: string, flag: string) => number;
}

export function positiveInteger(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${flag} must be a positive integer, got "${text}"`);
  return value;
}

export function positiveNumber(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${flag} must be a positive number, got "${text}"`);
  return value;
}

export function parseSideBySideArgs<Row extends { readonly id: string }, Target extends string>(
  argv: readonly string[],
  spec: SideBySideSpec<Row, Target>,
): SideBySideOptions<Row, Target> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'runtime-sec': { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      size: { type: 'string', default: '1GiB' },
      rows: { type: 'string' },
      targets: { type: 'string', default: spec.targets.join(',') },
      'cpu-prof': { type: 'string' },
      json: { type: 'boolean', default: false },
      'work-dir': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const rows = selectRows(values.rows, spec.rows);
  const targets = selectTargets(values.targets, spec.targets);
  return {
    runtimeSec: spec.parseRuntimeSec(values['runtime-sec'], 'runtime-sec'),
    rounds: spec.parseRounds(values.rounds, 'rounds'),
    sizeBytes: parseSize(values.size),
    rows,
    targets,
    cpuProfileDir: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
    json: values.json,
    workDir: values['work-dir'],
  };
}

function selectRows<Row extends { readonly id: string }>(list: string | undefined, all: readonly Row[]): Row[] {
  const rowIds = list?.split(',') ?? all.map((row) => row.id);
  return rowIds.map((id) => {
    const row = all.find((candidate) => candidate.id === id);
    if (row === undefined) throw new Error(`unknown row "${id}"; rows: ${all.map((r) => r.id).join(', ')}`);
    return row;
  });
}

function selectTargets<Target extends string>(list: string, all: readonly Target[]): Target[] {
  return list.split(',').map((name) => {
    const target = all.find((candidate) => candidate === name);
    if (target === undefined) throw new Error(`unknown target "${name}"; use ${all.join(',')}`);
    return target;
  });
}
