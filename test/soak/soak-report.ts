/**
 * The soak's summary: what ran, what was injected, what was checked, what
 * broke, and how to replay it. Pure formatting over plain data.
 */
import type { CompareResult } from './soak-replica-compare.js';
import type { Violation } from './soak-model.js';
import type { FaultRecord } from './soak-nemesis.js';
import type { OpKind } from './soak-workload.js';

export interface SoakSummary {
  readonly seed: number;
  readonly nodes: number;
  readonly kinds: readonly string[];
  /** Kinds asked for but left out, with the reason. */
  readonly skippedKinds: Readonly<Record<string, string>>;
  readonly faultMinutes: number;
  readonly totalSeconds: number;
  readonly opsOk: Readonly<Record<OpKind, number>>;
  readonly opsFailed: Readonly<Record<OpKind, number>>;
  readonly readsChecked: number;
  readonly reconnects: number;
  readonly workerTimeouts: number;
  readonly uncertainBlocks: number;
  readonly faults: readonly FaultRecord[];
  readonly restarts: number;
  readonly nemesisErrors: readonly string[];
  readonly convergence: { readonly converged: boolean; readonly elapsedMs: number; readonly last: string };
  readonly finalCheckErrors: readonly string[];
  readonly replicas: readonly CompareResult[];
  readonly violations: readonly Violation[];
  /** The command that replays this run's schedule. */
  readonly replay: string;
}

/** Every way a run can fail: model violations, divergent replicas, no convergence, unfinished final checks. */
export function failures(summary: SoakSummary): string[] {
  const found: string[] = [];
  if (summary.violations.length > 0) found.push(`${summary.violations.length} model violation(s)`);
  for (const result of summary.replicas) {
    if (result.differingCount > 0) found.push(`${result.volume}: ${result.differingCount} block(s) differ between replicas`);
  }
  if (!summary.convergence.converged) found.push(`no convergence within ${summary.convergence.elapsedMs} ms (${summary.convergence.last})`);
  found.push(...summary.finalCheckErrors);
  return found;
}

export function formatSummary(summary: SoakSummary): string {
  const lines: string[] = [];
  const total = (counts: Readonly<Record<string, number>>): number => Object.values(counts).reduce((a, b) => a + b, 0);
  lines.push(`soak seed ${summary.seed}: ${summary.nodes} nodes, faults ${summary.kinds.join(',')}, ${summary.faultMinutes} min of faults, ${summary.totalSeconds.toFixed(0)} s in all`);
  for (const [kind, reason] of Object.entries(summary.skippedKinds)) lines.push(`  kind ${kind} not in the mix: ${reason}`);
  lines.push(`  ops ok:     ${formatCounts(summary.opsOk)} (total ${total(summary.opsOk)})`);
  lines.push(`  ops failed: ${formatCounts(summary.opsFailed)} (total ${total(summary.opsFailed)})`);
  lines.push(`  reads checked against the model: ${summary.readsChecked}; reconnects ${summary.reconnects}; worker timeouts ${summary.workerTimeouts}; blocks of unknown fate ${summary.uncertainBlocks}`);
  const byKind: Record<string, number> = {};
  for (const fault of summary.faults) byKind[fault.kind] = (byKind[fault.kind] ?? 0) + 1;
  lines.push(`  faults: ${formatCounts(byKind)} (total ${summary.faults.length}); daemon restarts ${summary.restarts}`);
  const byPoint: Record<string, number> = {};
  for (const fault of summary.faults) {
    if (fault.kind !== 'failpoint' && fault.kind !== 'power-cut' && fault.kind !== 'disk') continue;
    const point = fault.detail.replace(/:(skip|times)=\d+/g, '');
    byPoint[point] = (byPoint[point] ?? 0) + 1;
  }
  if (Object.keys(byPoint).length > 0) lines.push(`  points armed: ${formatCounts(byPoint)}`);
  for (const error of summary.nemesisErrors.slice(0, 10)) lines.push(`  nemesis error: ${error}`);
  const crashed = summary.faults.filter((fault) => fault.outcome.startsWith('crashed')).length;
  lines.push(`  armed points that crashed their node: ${crashed}`);
  lines.push(`  convergence: ${summary.convergence.converged ? `healthy after ${summary.convergence.elapsedMs} ms` : `NOT converged after ${summary.convergence.elapsedMs} ms: ${summary.convergence.last}`}`);
  for (const result of summary.replicas) {
    lines.push(`  replicas of ${result.volume}: ${result.replicasRead} read offline, ${result.blocksCompared} blocks each, ${result.differingCount} differ`);
    for (const difference of result.differing) lines.push(`    block ${difference.block}: ${JSON.stringify(difference.byNode)}`);
  }
  for (const violation of summary.violations.slice(0, 20)) {
    lines.push(`  VIOLATION ${violation.volume} block ${violation.block} (${violation.phase}): read ${violation.read}, allowed ${violation.allowed.join('|')}; history ${violation.history.join(', ')}`);
  }
  const found = failures(summary);
  lines.push(found.length === 0 ? '  result: OK' : `  result: FAILED: ${found.join('; ')}`);
  if (found.length > 0) lines.push(`  replay: ${summary.replay}`);
  return lines.join('\n');
}

function formatCounts(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts);
  return entries.length === 0 ? 'none' : entries.map(([kind, count]) => `${kind} ${count}`).join(', ');
}
