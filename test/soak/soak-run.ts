/**
 * One chaos soak (issue 7): start the cluster, run the model-checked
 * workload on every volume while the nemesis injects faults, heal, wait for
 * convergence, read every block back through NBD, stop the daemons and
 * compare every replica offline. Used by the CLI (soak-runner.ts) and by
 * the CI test (test/integration/soak-short.test.ts).
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { TeardownHost } from '../helpers/daemon-harness.js';
import { replayCommand, type SoakOptions } from './soak-args.js';
import { SoakCluster } from './soak-cluster.js';
import { BlockModel, type Violation } from './soak-model.js';
import { Nemesis, type FaultKind, type NetworkFaults } from './soak-nemesis.js';
import { NetnsCluster, netnsUnavailableReason } from '../setup/netns-cluster.js';
import type { WorkerSpawner } from './nbd-worker.js';
import { compareReplicas, type VolumeReplicas } from './soak-replica-compare.js';
import { failures, type SoakSummary } from './soak-report.js';
import { OP_KINDS, VolumeWorkload, type OpKind } from './soak-workload.js';

const VOLUME_SIZE = '16MiB';
const VOLUME_BLOCKS = 4096;
/** Longer than any hold (a frozen owner thaws first) and than the controller's replica timeout plus fault commit (10 s + 5 s). */
const OP_TIMEOUT_MS = 30_000;
const CONVERGE_TIMEOUT_MS = 120_000;
const FINAL_CHECK_MS = 90_000;

/** The workload's NBD client runs in a namespace of its own, wired to every node (partitions may include it). */
const CLIENT_NAMESPACE_ID = 'client';

/** Kinds this machine or build cannot inject, with the reason printed in the summary. */
export function unavailableKinds(kinds: readonly FaultKind[]): Record<string, string> {
  const reasons: Record<string, string> = {};
  if (kinds.includes('partition')) {
    const netns = netnsUnavailableReason();
    if (netns !== undefined) reasons['partition'] = `${netns} (partitions need network namespaces; the soak runs on loopback)`;
    // Namespaces are built per node id up front; a replaced member would need a new one.
    else if (kinds.includes('membership')) reasons['membership'] = 'runs on loopback only: leave out partition to include it';
  }
  return reasons;
}

interface Network {
  readonly netns?: NetnsCluster;
  readonly faults?: NetworkFaults;
  readonly spawner?: WorkerSpawner;
}

/** With partitions in the mix: one namespace per node plus the client's (test/setup/netns-cluster.ts). */
async function buildNetwork(host: TeardownHost, nodes: number, partitions: boolean): Promise<Network> {
  if (!partitions) return {};
  const ids = Array.from({ length: nodes }, (_, i) => `n${i + 1}`);
  const netns = await NetnsCluster.create(host, [...ids, CLIENT_NAMESPACE_ID]);
  return {
    netns,
    faults: {
      partition: async (node, peers, client) => netns.partition(node, client ? [...peers, CLIENT_NAMESPACE_ID] : peers),
      heal: () => netns.heal(),
    },
    spawner: (command, args) => netns.spawnIn(CLIENT_NAMESPACE_ID, command, args, { stdio: ['pipe', 'pipe', 'pipe'] }),
  };
}

export async function runSoak(options: SoakOptions, host: TeardownHost, logger: Logger): Promise<SoakSummary> {
  const startedAt = Date.now();
  const unavailable = unavailableKinds(options.kinds);
  const kinds = options.kinds.filter((kind) => unavailable[kind] === undefined);
  const skippedKinds = Object.fromEntries(options.kinds.filter((kind) => unavailable[kind] !== undefined).map((kind) => [kind, unavailable[kind] ?? '']));
  const network = await buildNetwork(host, options.nodes, kinds.includes('partition'));
  const cluster = await SoakCluster.start(
    host,
    {
      nodeCount: options.nodes,
      powerLoss: kinds.includes('power-cut'),
      seed: options.seed,
      logLevel: options.daemonLogLevel,
      ...(network.netns === undefined ? {} : { netns: network.netns }),
    },
    { logger },
  );
  const violations: Violation[] = [];
  const onViolation = (violation: Violation): void => {
    violations.push(violation);
    logger.error({ violation, seed: options.seed }, 'model violation');
  };
  const names = Array.from({ length: options.volumes }, (_, i) => `soak${i}`);
  const models = new Map<string, BlockModel>();
  for (const name of names) {
    await cluster.createVolume(name, VOLUME_SIZE, 3);
    models.set(name, new BlockModel(name, VOLUME_BLOCKS));
  }
  const workloads = names.map((name, i) => new VolumeWorkload(
    { seed: options.seed * 1000 + i, opTimeoutMs: OP_TIMEOUT_MS },
    {
      model: requireModel(models, name),
      targets: cluster,
      logger: logger.child({ volume: name }),
      onViolation,
      ...(network.spawner === undefined ? {} : { spawner: network.spawner }),
    },
  ));
  host.teardown(() => workloads.forEach((workload) => workload.close()));
  const stopWorkload = new AbortController();
  const running = workloads.map((workload) => workload.run(stopWorkload.signal));

  const nemesis = new Nemesis(
    { seed: options.seed, kinds: kinds.length === 0 ? ['stop'] : kinds, quietMs: [500, 3000], holdMs: [1500, 8000] },
    { cluster, volumes: names, logger: logger.child({ module: 'nemesis' }), ...(network.faults === undefined ? {} : { network: network.faults }) },
  );
  await nemesis.run(startedAt + options.minutes * 60_000);
  logger.info('faults over; waiting for convergence');
  const convergence = await cluster.waitConverged(names, CONVERGE_TIMEOUT_MS);
  stopWorkload.abort();
  await Promise.all(running);

  const finalCheckErrors: string[] = [];
  for (const workload of workloads) {
    const result = await workload.finalCheck(Date.now() + FINAL_CHECK_MS);
    if (!result.completed) finalCheckErrors.push(`${workload.volume}: final read incomplete (${result.error ?? ''})`);
  }
  const placements = await Promise.all(names.map(async (name): Promise<VolumeReplicas> => {
    const view = await cluster.volume(name);
    const replicas = view.replicas.map((replica) => ({ nodeId: replica.nodeId, dataDir: cluster.daemon(replica.nodeId).dataDir }));
    return { name, volumeId: view.id, sizeBytes: view.sizeBytes, replicas, model: requireModel(models, name) };
  }));
  await cluster.stopAll();
  const replicas = await compareReplicas(placements);
  for (const result of replicas) for (const violation of result.violations) onViolation(violation);

  const summary = summarise(options, {
    kinds, skippedKinds, startedAt, workloads, models, nemesis, cluster, convergence, finalCheckErrors, replicas, violations,
  });
  await keepLogs(options, cluster, summary, logger);
  return summary;
}

interface RunFacts {
  readonly kinds: readonly FaultKind[];
  readonly skippedKinds: Record<string, string>;
  readonly startedAt: number;
  readonly workloads: readonly VolumeWorkload[];
  readonly models: ReadonlyMap<string, BlockModel>;
  readonly nemesis: Nemesis;
  readonly cluster: SoakCluster;
  readonly convergence: SoakSummary['convergence'];
  readonly finalCheckErrors: readonly string[];
  readonly replicas: SoakSummary['replicas'];
  readonly violations: readonly Violation[];
}

function summarise(options: SoakOptions, facts: RunFacts): SoakSummary {
  const sum = (pick: (workload: VolumeWorkload) => Record<OpKind, number>): Record<OpKind, number> =>
    Object.fromEntries(OP_KINDS.map((kind) => [kind, facts.workloads.reduce((total, workload) => total + pick(workload)[kind], 0)])) as Record<OpKind, number>;
  return {
    seed: options.seed,
    nodes: options.nodes,
    kinds: facts.kinds,
    skippedKinds: facts.skippedKinds,
    faultMinutes: options.minutes,
    totalSeconds: (Date.now() - facts.startedAt) / 1000,
    opsOk: sum((workload) => workload.stats.ok),
    opsFailed: sum((workload) => workload.stats.failed),
    readsChecked: facts.workloads.reduce((total, workload) => total + workload.stats.readsChecked, 0),
    reconnects: facts.workloads.reduce((total, workload) => total + workload.stats.reconnects, 0),
    workerTimeouts: facts.workloads.reduce((total, workload) => total + workload.workerTimeouts, 0),
    uncertainBlocks: [...facts.models.values()].reduce((total, model) => total + model.uncertainBlocks(), 0),
    faults: facts.nemesis.faults,
    restarts: facts.cluster.restarts,
    nemesisErrors: facts.nemesis.errors,
    convergence: facts.convergence,
    finalCheckErrors: facts.finalCheckErrors,
    replicas: facts.replicas,
    violations: facts.violations,
    replay: replayCommand(options),
  };
}

/** Every daemon incarnation's output and the summary; after a failure also the data dirs (sparse copies). */
async function keepLogs(options: SoakOptions, cluster: SoakCluster, summary: SoakSummary, logger: Logger): Promise<void> {
  await mkdir(options.logDir, { recursive: true });
  for (const [index, { id, daemon }] of cluster.incarnations.entries()) {
    await writeFile(join(options.logDir, `${id}.${index}.stdout.log`), daemon.stdout());
    await writeFile(join(options.logDir, `${id}.${index}.stderr.log`), daemon.stderr());
  }
  await writeFile(join(options.logDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  if (failures(summary).length > 0) {
    // cp keeps the 1 GiB disk files sparse; the harness removes the originals at teardown.
    for (const id of cluster.ids) await promisify(execFile)('cp', ['-a', '--sparse=always', cluster.daemon(id).dataDir, join(options.logDir, `data-${id}`)]);
  }
  logger.info({ logDir: options.logDir }, 'logs kept');
}

function requireModel(models: ReadonlyMap<string, BlockModel>, name: string): BlockModel {
  const model = models.get(name);
  if (model === undefined) throw new Error(`no model for ${name}`);
  return model;
}
