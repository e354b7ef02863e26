/**
 * Failover row of the cluster benchmark (issue 4 "Benchmark": "failover
 * (kill to first served read) < 10 s with default timeouts"). A 3-replica
 * volume with a writer (fio) connected to its owner; kill -9 the owner; a
 * libnbd probe (python3-libnbd) then keeps connecting to a survivor's NBD
 * port — connecting attaches the volume there once the cluster has marked
 * the owner down (ARCHITECTURE "NBD" row) — and reports when its first
 * 4 KiB read succeeded. The killed node is restarted and caught up before
 * the next repetition, which kills the new owner.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterMember, ClusterTarget } from './cluster-target.js';
import { pollUntil } from './cluster-target.js';
import { fioArgs, runFio } from './fio-run.js';

export interface FailoverOptions {
  readonly repetitions: number;
  readonly progress: (message: string) => void;
}

const MIB = 1024 * 1024;
const VOLUME = 'bench-failover';
const VOLUME_BYTES = 64 * MIB;
const PYTHON = '/usr/bin/python3';
/** Give up on a failover after this long (the target is 10 s). */
const PROBE_DEADLINE_SEC = 60;
const HEAL_TIMEOUT_MS = 120_000;

/**
 * Waits for "go" on stdin, then retries connect + 4 KiB pread against the
 * URI every 50 ms and prints the elapsed milliseconds of the first success.
 */
const PROBE_PY = String.raw`import json, sys, time
import nbd

uri, deadline_sec = sys.argv[1], float(sys.argv[2])
sys.stdin.readline()
start = time.monotonic()
attempts = 0
last = ""
while time.monotonic() - start < deadline_sec:
    attempts += 1
    try:
        h = nbd.NBD()
        h.connect_uri(uri)
        h.pread(4096, 0)
        elapsed = (time.monotonic() - start) * 1000
        h.shutdown()
        print(json.dumps({"ms": elapsed, "attempts": attempts}), flush=True)
        sys.exit(0)
    except nbd.Error as err:
        last = str(err)
        time.sleep(0.05)
print(json.dumps({"error": last, "attempts": attempts}), flush=True)
sys.exit(1)
`;

interface ProbeOutcome {
  readonly ms?: number;
  readonly attempts: number;
  readonly error?: string;
}

function startProbe(scriptPath: string, uri: string): { child: ChildProcess; outcome: Promise<ProbeOutcome> } {
  const child = spawn(PYTHON, [scriptPath, uri, String(PROBE_DEADLINE_SEC)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4096)));
  const outcome = new Promise<ProbeOutcome>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', () => {
      const line = stdout.trim().split('\n').at(-1) ?? '';
      if (!line.startsWith('{')) {
        reject(new Error(`failover probe printed nothing: ${stderr.trim()}`));
        return;
      }
      resolve(JSON.parse(line) as ProbeOutcome);
    });
  });
  return { child, outcome };
}

/** A long time-based 4 KiB writer on the owner: the client the kill cuts off. */
function startWriter(owner: ClusterMember, outputPath: string): ChildProcess {
  const args = fioArgs({ uri: owner.nbdUri(VOLUME), rw: 'randwrite', blockSizeBytes: 4096, ioDepth: 4, sizeBytes: VOLUME_BYTES, runtimeSec: 600 }, outputPath);
  // Its exit status is irrelevant: it loses its server by design.
  return spawn('fio', args, { stdio: 'ignore' });
}

async function waitHealthy(via: ClusterMember, members: number): Promise<string> {
  return pollUntil(`${VOLUME} healthy with ${members} replicas in sync`, HEAL_TIMEOUT_MS, 200, async () => {
    const view = await via.volume(VOLUME);
    const inSync = view.replicas.filter((replica) => replica.state === 'in-sync').length;
    return view.state === 'healthy' && inSync === members && view.attachedTo !== null ? view.attachedTo : undefined;
  });
}

async function oneFailover(cluster: ClusterTarget, scriptPath: string, scratchDir: string, options: FailoverOptions, repetition: number): Promise<number> {
  const anyMember = cluster.members.find((member) => member.running);
  if (anyMember === undefined) throw new Error('no running member');
  const owner = cluster.member(await waitHealthy(anyMember, 3));
  const survivor = cluster.members.find((member) => member.nodeId !== owner.nodeId && member.running);
  if (survivor === undefined) throw new Error('no survivor');
  const writer = startWriter(owner, join(scratchDir, `writer-${repetition}.json`));
  const writerExited = new Promise<void>((resolve) => writer.once('exit', () => resolve()));
  const probe = startProbe(scriptPath, survivor.nbdUri(VOLUME));
  try {
    // Let the writer get going so the kill lands with writes in flight.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await owner.kill();
    probe.child.stdin?.write('go\n');
    const outcome = await probe.outcome;
    if (outcome.ms === undefined) throw new Error(`no read through ${survivor.nodeId} within ${PROBE_DEADLINE_SEC} s: ${outcome.error ?? 'unknown'}`);
    options.progress(`failover ${repetition}/${options.repetitions}: kill -9 ${owner.nodeId} → first read via ${survivor.nodeId} in ${outcome.ms.toFixed(0)} ms (${outcome.attempts} attempts)`);
    return outcome.ms;
  } finally {
    if (writer.exitCode === null && writer.signalCode === null) writer.kill('SIGKILL');
    await writerExited;
    if (probe.child.exitCode === null && probe.child.signalCode === null) probe.child.kill('SIGKILL');
    // Bring the killed node back; its replica is caught up before the next repetition.
    await owner.start();
  }
}

/** Kill → first successful read, `repetitions` times; milliseconds each. */
export async function measureFailovers(cluster: ClusterTarget, options: FailoverOptions): Promise<number[]> {
  const first = cluster.member('n1');
  await first.createVolume(VOLUME, VOLUME_BYTES, 3);
  // Fill it through n1, which attaches it there.
  await runFio({ uri: first.nbdUri(VOLUME), rw: 'write', blockSizeBytes: MIB, ioDepth: 8, sizeBytes: VOLUME_BYTES });
  const scratchDir = await mkdtemp(join(tmpdir(), 'plinth-failover-bench-'));
  try {
    const scriptPath = join(scratchDir, 'probe.py');
    await writeFile(scriptPath, PROBE_PY);
    const timesMs: number[] = [];
    for (let repetition = 1; repetition <= options.repetitions; repetition += 1) {
      timesMs.push(await oneFailover(cluster, scriptPath, scratchDir, options, repetition));
    }
    await waitHealthy(first, 3);
    return timesMs;
  } finally {
    await rm(scratchDir, { recursive: true, force: true });
  }
}
