import { readFile } from 'node:fs/promises';
import t from 'tap';
import { createDaemonMetrics } from '../../../daemon/metrics/daemon-metrics.js';
import { VolumeIoRecorder } from '../../../daemon/metrics/volume-io-stats.js';
import { emptyClusterState } from '../../../daemon/state/cluster-state.js';
import { MemoryPool } from '../../helpers/memory-pool.js';

// dist/test/unit/metrics/ → the repository root.
const DASHBOARD_URL = new URL('../../../../docs/grafana/plinth-dashboard.json', import.meta.url);

interface DashboardTarget {
  readonly expr?: unknown;
  readonly datasource?: unknown;
}

interface DashboardPanel {
  readonly type?: unknown;
  readonly title?: unknown;
  readonly datasource?: unknown;
  readonly targets?: readonly DashboardTarget[];
  readonly panels?: readonly DashboardPanel[];
}

interface Dashboard {
  readonly schemaVersion?: unknown;
  readonly uid?: unknown;
  readonly panels?: readonly DashboardPanel[];
  readonly templating?: { readonly list?: ReadonlyArray<{ readonly name?: unknown; readonly type?: unknown; readonly definition?: unknown }> };
}

/** Every series name a daemon exports, with a histogram's _bucket/_sum/_count, from a real registry. */
async function exportedSeriesNames(): Promise<Set<string>> {
  const registry = createDaemonMetrics({
    pool: new MemoryPool(),
    clusterState: () => emptyClusterState(),
    connectionCount: () => 0,
    rebuildProgress: () => new Map(),
    volumeIo: new VolumeIoRecorder(),
    raft: { status: () => ({ term: 1, commitIndex: 1, appliedIndex: 1, role: 'leader' }), leaderChanges: () => 1, onProposalApplied: () => () => undefined },
  });
  const names = new Set<string>();
  for (const metric of await registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram' || String(metric.type) === 'summary') {
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${metric.name}${suffix}`);
    }
  }
  return names;
}

function allPanels(panels: readonly DashboardPanel[]): DashboardPanel[] {
  return panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);
}

function balanced(expr: string): boolean {
  let depth = 0;
  for (const char of expr) {
    if (char === '(' || char === '{' || char === '[') depth++;
    if (char === ')' || char === '}' || char === ']') depth--;
    if (depth < 0) return false;
  }
  return depth === 0;
}

t.test('every metric the Grafana dashboard queries is one the daemon exports', async (t) => {
  const dashboard = JSON.parse(await readFile(DASHBOARD_URL, 'utf8')) as Dashboard;
  const exported = await exportedSeriesNames();
  t.ok(exported.has('plinth_volume_io_duration_seconds_bucket'), 'the registry knows the volume latency histogram');
  t.ok(exported.has('plinth_raft_proposal_duration_seconds_bucket'));

  const expressions: Array<{ title: string; expr: string }> = [];
  for (const panel of allPanels(dashboard.panels ?? [])) {
    if (panel.type === 'row') continue;
    const title = String(panel.title);
    t.match(panel.datasource, { uid: '${datasource}' }, `panel "${title}" uses the datasource variable`);
    t.ok((panel.targets ?? []).length > 0, `panel "${title}" has queries`);
    for (const target of panel.targets ?? []) {
      t.type(target.expr, 'string', `panel "${title}" has a PromQL expression`);
      expressions.push({ title, expr: String(target.expr) });
    }
  }
  for (const variable of dashboard.templating?.list ?? []) {
    if (typeof variable.definition === 'string') expressions.push({ title: `variable ${String(variable.name)}`, expr: variable.definition });
  }
  t.ok(expressions.length >= 15, `the dashboard has its queries (${expressions.length})`);

  const used = new Set<string>();
  for (const { title, expr } of expressions) {
    t.ok(balanced(expr), `"${title}": brackets balance in ${expr}`);
    const names = expr.match(/\bplinth_[a-z0-9_]+/g) ?? [];
    t.ok(names.length > 0, `"${title}" queries a plinth_ metric`);
    for (const name of names) {
      used.add(name);
      t.ok(exported.has(name), `"${title}" uses ${name}, which the daemon exports`);
    }
  }
  // The list (issue 6 "Prometheus /metrics"): the dashboard shows each family.
  for (const family of [
    'plinth_raft_is_leader', 'plinth_raft_term', 'plinth_raft_commit_index', 'plinth_raft_applied_index', 'plinth_raft_leader_changes_total',
    'plinth_raft_proposal_duration_seconds_bucket', 'plinth_disk_capacity_bytes', 'plinth_disk_used_bytes', 'plinth_volume_io_operations_total',
    'plinth_volume_read_bytes_total', 'plinth_volume_written_bytes_total', 'plinth_volume_io_duration_seconds_bucket', 'plinth_volume_io_in_flight',
    'plinth_volume_state', 'plinth_volume_replicas', 'plinth_rebuild_copied_bytes', 'plinth_rebuild_total_bytes',
  ]) {
    t.ok(used.has(family), `the dashboard shows ${family}`);
  }
});

t.test('the dashboard is a Grafana 10 dashboard with a Prometheus datasource variable', async (t) => {
  const dashboard = JSON.parse(await readFile(DASHBOARD_URL, 'utf8')) as Dashboard;
  t.type(dashboard.schemaVersion, 'number');
  t.ok(Number(dashboard.schemaVersion) >= 36, 'schemaVersion of Grafana 9.4+/10');
  t.equal(dashboard.uid, 'plinth-overview');
  const datasource = dashboard.templating?.list?.find((variable) => variable.name === 'datasource');
  t.match(datasource, { type: 'datasource' });
  t.match(dashboard.templating?.list, [{ name: 'datasource' }, { name: 'volume', type: 'query' }]);
  const titles = allPanels(dashboard.panels ?? []).filter((panel) => panel.type === 'row').map((panel) => panel.title);
  t.same(titles, ['Cluster', 'Nodes', 'Volumes']);
});
