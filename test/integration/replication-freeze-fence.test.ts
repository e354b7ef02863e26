/**
 * Issue 4, "show it": a frozen former owner cannot write (invariant 3).
 * Three real plinthd processes on 127.0.0.1; a client connected to the
 * owner n1 sends writes while n1 is SIGSTOPped (they queue in its socket);
 * n2 takes the volume over with a forced attach (new generation, fences the
 * replicas it reaches) and writes; SIGCONT n1: none of its queued writes
 * lands on n2 or n3.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import t, { type Test } from 'tap';
import { createVolume, eventually, PYTHON, runClient, startCluster, writeClient } from './fixtures/replication-cluster.js';

const OFFSETS = [0, 4096, 65_536, 1_048_576, 8_388_608, 33_554_432].join(',');
const OLD_BYTE = '17';
const QUEUED_BYTE = '170';
const NEW_BYTE = '187';

interface QueuedWriter {
  /** Lines the writer printed so far, and a wait for the next one matching a key. */
  next(key: string, timeoutMs: number): Promise<Record<string, unknown>>;
  go(): void;
}

function startQueuedWriter(t: Test, script: string, uri: string): QueuedWriter {
  const child = spawn(PYTHON, [script, 'queued', uri, QUEUED_BYTE, OFFSETS], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(JSON.parse(line) as Record<string, unknown>);
    for (const wake of waiters.splice(0)) wake();
  });
  return {
    next: async (key, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find((line) => key in line);
        if (found !== undefined) return found;
        if (Date.now() > deadline) throw new Error(`queued writer printed no ${key} within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
    go: () => child.stdin.write('go\n'),
  };
}

t.test('SIGSTOP the owner, fail over, write, SIGCONT: its queued writes are fenced', async (t) => {
  const script = await writeClient(t);
  const [n1, n2, n3] = await startCluster(t);
  await createVolume(t, n1, 'frozen');
  t.same(await runClient(script, ['fill', n1.nbdUri('frozen'), OLD_BYTE, OFFSETS], 30_000), [{ filled: true }], 'n1 wrote the old data');

  const writer = startQueuedWriter(t, script, n1.nbdUri('frozen'));
  await writer.next('connected', 15_000);
  n1.signal('SIGSTOP');
  t.teardown(() => n1.signal('SIGCONT'));
  writer.go();
  t.match(await writer.next('sent', 15_000), { sent: 6 }, 'writes sent to the frozen owner');

  const attached = await eventually('a forced attach on n2', 40_000, async () => {
    const response = await n2.api('POST', '/v1/volumes/frozen/attach', { node: 'n2', force: true }, { timeoutMs: 20_000 });
    return response.status === 200 ? response.body : undefined;
  });
  t.match(attached, { attachedTo: 'n2' }, 'n2 took the volume over');
  t.same(await runClient(script, ['fill', n2.nbdUri('frozen'), NEW_BYTE, OFFSETS], 30_000), [{ filled: true }], 'n2 wrote the new data');

  n1.signal('SIGCONT');
  await writer.next('finished', 40_000);
  // Give anything n1 still had queued time to try.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.same(await runClient(script, ['check', n2.nbdUri('frozen'), NEW_BYTE, OFFSETS], 30_000), [{ wrong: [] }], 'n2 reads what n2 wrote');

  // n3's copy: take the volume to n3 (reads go to the local replica first) and read it there.
  const moved = await n3.api('POST', '/v1/volumes/frozen/attach', { node: 'n3', force: true }, { timeoutMs: 20_000 });
  t.equal(moved.status, 200, `attach on n3: ${JSON.stringify(moved.body)}`);
  t.same(await runClient(script, ['check', n3.nbdUri('frozen'), NEW_BYTE, OFFSETS], 30_000), [{ wrong: [] }], 'n3 holds what n2 wrote');

  await t.test('a sole local replica (fast path) stops writing once another owner is committed', async (t) => {
    const created = await n1.api('POST', '/v1/volumes', { name: 'solo', size: '64MiB', replicas: 1 });
    t.match(created.body, { replicas: [{ nodeId: 'n1' }] }, 'the only replica is on n1 (the creating node)');
    t.same(await runClient(script, ['fill', n1.nbdUri('solo'), OLD_BYTE, OFFSETS], 30_000), [{ filled: true }], 'n1 wrote the old data');
    const stale = startQueuedWriter(t, script, n1.nbdUri('solo'));
    await stale.next('connected', 15_000);
    const taken = await n2.api('POST', '/v1/volumes/solo/attach', { node: 'n2', force: true }, { timeoutMs: 20_000 });
    t.equal(taken.status, 200, `forced attach on n2: ${JSON.stringify(taken.body)}`);
    // n1's linearizable read returns once n1 has applied the new owner.
    t.match((await n1.api('GET', '/v1/volumes/solo')).body, { attachedTo: 'n2' }, 'n1 knows the new owner');
    stale.go();
    // Told at once either way: n1 has already dropped the client (its
    // applied-state watcher saw the owner move), or it fails each write as
    // fenced. Both are right; what matters is that nothing lands (below).
    const finished = await stale.next('finished', 15_000);
    t.ok(finished['disconnected'] !== undefined || finished['in_flight'] === 0, `the stale client was refused: ${JSON.stringify(finished)}`);
    t.same(await runClient(script, ['check', n2.nbdUri('solo'), OLD_BYTE, OFFSETS], 30_000), [{ wrong: [] }], 'the stale connection wrote nothing');
  });
});
