import t from 'tap';
import pino from 'pino';
import { PlinthError } from '../../../common/plinth-error.js';
import type { CommandProposer } from '../../../daemon/control/command-proposer.js';
import { SnapshotCoordinator, type PausableVolume } from '../../../daemon/snapshots/snapshot-coordinator.js';
import type { SnapshotOp, VolumeAtGeneration } from '../../../daemon/snapshots/snapshot-replica-client.js';
import { applyCommand } from '../../../daemon/state/apply-command.js';
import { findVolume, type ClusterState } from '../../../daemon/state/cluster-state.js';
import type { Command } from '../../../daemon/state/commands.js';
import { ok, withNodes } from './helpers/cluster-state-fixture.js';

/** Issue 8: the coordinator's rules with a fake replica port and an in-memory command log (pure state machine). */

const AT = '2026-01-01T00:00:00.000Z';
const logger = pino({ level: 'silent' });

class MemoryLog implements CommandProposer {
  state: ClusterState;
  readonly proposed: Command[] = [];

  constructor(state: ClusterState) {
    this.state = state;
  }

  async propose(command: Command): ReturnType<CommandProposer['propose']> {
    this.proposed.push(command);
    const outcome = applyCommand(this.state, command);
    if (outcome instanceof PlinthError) throw outcome;
    this.state = outcome.state;
    return outcome.result;
  }
}

interface Call {
  readonly nodeId: string;
  readonly op: SnapshotOp | 'clone';
  readonly generation: number;
}

function rig(options: { failOn?: (call: Call) => boolean; attachedHere?: boolean; pauseNeverDrains?: boolean } = {}) {
  let state = withNodes(['n1', 'n2', 'n3'], AT);
  state = ok(state, { type: 'volume.create', id: 'vol-1', name: 'db', sizeBytes: 1 << 20, createdAt: AT, placement: ['n1', 'n2', 'n3'] }).state;
  if (options.attachedHere === true) state = ok(state, { type: 'volume.attach', name: 'db', nodeId: 'n1' }).state;
  const log = new MemoryLog(state);
  const calls: Call[] = [];
  const events: string[] = [];
  const record = async (call: Call): Promise<void> => {
    calls.push(call);
    events.push(`${call.op}@${call.nodeId}`);
    if (options.failOn?.(call) === true) throw new PlinthError('IO_ERROR', `replica ${call.nodeId} failed`);
  };
  const volume: PausableVolume = {
    pause: async () => {
      events.push('pause');
      if (options.pauseNeverDrains === true) await new Promise(() => undefined);
    },
    resume: () => {
      events.push('resume');
    },
  };
  let nextId = 0;
  const coordinator = new SnapshotCoordinator(
    { nodeId: 'n1', pauseTimeoutMs: 200 },
    {
      commands: log,
      replicas: {
        run: (nodeId: string, op: SnapshotOp, at: VolumeAtGeneration) => record({ nodeId, op, generation: at.generation }),
        clone: (nodeId: string, at: VolumeAtGeneration) => record({ nodeId, op: 'clone', generation: at.generation }),
      },
      localVolume: (name) => (name === 'db' && options.attachedHere === true ? volume : undefined),
      logger,
      clock: () => new Date(AT),
      newId: () => `id-${(nextId += 1)}`,
    },
  );
  return { log, calls, events, coordinator };
}

t.test('attached here: pause, every in-sync replica at the generation, resume, then commit', async (t) => {
  const r = rig({ attachedHere: true });
  const snapshot = await r.coordinator.createSnapshot({ volume: 'db', snapshot: 's1' });
  t.same(snapshot.holders, ['n1', 'n2', 'n3']);
  t.equal(r.events[0], 'pause');
  t.same(new Set(r.events.slice(1, 4)), new Set(['create@n1', 'create@n2', 'create@n3']));
  t.equal(r.events[4], 'resume');
  t.ok(r.calls.every((call) => call.generation === 1), 'at the owner\'s generation');
  t.equal(r.log.proposed.at(-1)?.type, 'snapshot.create', 'committed after the replicas took it');
});

t.test('one replica fails: no snapshot recorded, the copies taken are deleted, writes resumed', async (t) => {
  const r = rig({ attachedHere: true, failOn: (call) => call.op === 'create' && call.nodeId === 'n3' });
  await t.rejects(r.coordinator.createSnapshot({ volume: 'db', snapshot: 's1' }), { code: 'IO_ERROR', message: /failed on n3/ });
  t.same(r.calls.filter((call) => call.op === 'delete').map((call) => call.nodeId).sort(), ['n1', 'n2', 'n3']);
  t.ok(r.events.includes('resume'));
  t.same(findVolume(r.log.state, 'db')?.snapshots ?? [], []);
  t.notOk(r.log.proposed.some((command) => command.type === 'snapshot.create'));
});

t.test('a pause that does not drain in time fails with TIMEOUT and resumes', async (t) => {
  const r = rig({ attachedHere: true, pauseNeverDrains: true });
  await t.rejects(r.coordinator.createSnapshot({ volume: 'db', snapshot: 's1' }), { code: 'TIMEOUT' });
  t.same(r.events, ['pause', 'resume']);
});

t.test('detached: no pause; duplicate names refused before any replica is asked', async (t) => {
  const r = rig();
  await r.coordinator.createSnapshot({ volume: 'db', snapshot: 's1' });
  t.notOk(r.events.includes('pause'));
  const before = r.calls.length;
  await t.rejects(r.coordinator.createSnapshot({ volume: 'db', snapshot: 's1' }), { code: 'SNAPSHOT_EXISTS' });
  await t.rejects(r.coordinator.createSnapshot({ volume: 'db', snapshot: 'bad@name' }), { code: 'INVALID_NAME' });
  await t.rejects(r.coordinator.createSnapshot({ volume: 'nope', snapshot: 's2' }), { code: 'VOLUME_NOT_FOUND' });
  t.equal(r.calls.length, before);
});

t.test('attached to another node without a way to forward: VOLUME_ATTACHED naming it', async (t) => {
  const r = rig();
  r.log.state = ok(r.log.state, { type: 'volume.attach', name: 'db', nodeId: 'n2' }).state;
  await t.rejects(r.coordinator.createSnapshot({ volume: 'db', snapshot: 's1' }), { code: 'VOLUME_ATTACHED', message: /n2/ });
});

t.test('attached to a node that is down: refused (a partitioned owner may still write)', async (t) => {
  const r = rig();
  r.log.state = ok(ok(r.log.state, { type: 'volume.attach', name: 'db', nodeId: 'n2' }).state, { type: 'node.down', nodeId: 'n2', at: AT }).state;
  await t.rejects(r.coordinator.createSnapshot({ volume: 'db', snapshot: 's1' }), { code: 'VOLUME_ATTACHED', message: /n2, which is down/ });
  await t.rejects(r.coordinator.createGroup('g1', ['db']), { code: 'VOLUME_ATTACHED', message: /down/ });
  t.same(r.calls, [], 'no replica asked');
});

t.test('clone: the holders that made it become its replicas', async (t) => {
  const r = rig({ failOn: (call) => call.op === 'clone' && call.nodeId === 'n2' });
  await r.coordinator.createSnapshot({ volume: 'db', snapshot: 's1' });
  const clone = await r.coordinator.cloneVolume('db', 's1', 'db-copy');
  t.same(clone.replicas.map((replica) => replica.nodeId), ['n1', 'n3'], 'n2 failed: one replica fewer, said in the log');
  await t.rejects(r.coordinator.cloneVolume('db', 's1', 'db-copy'), { code: 'VOLUME_EXISTS' });
});

t.test('revert: a replica whose REVERT failed is faulted before the new generation commits', async (t) => {
  const r = rig({ failOn: (call) => call.op === 'revert' && call.nodeId === 'n3' });
  await r.coordinator.createSnapshot({ volume: 'db', snapshot: 's1' });
  const reverted = await r.coordinator.revertVolume('db', 's1');
  t.equal(reverted.generation, 1);
  t.same(reverted.replicas.map((replica) => [replica.nodeId, replica.state]), [['n1', 'in-sync'], ['n2', 'in-sync'], ['n3', 'faulted']]);
  t.same(r.log.proposed.slice(-2).map((command) => command.type), ['replica.fault', 'volume.revert']);
});

t.test('group: every owner paused before any replica takes anything; one pause refused: the others resume, nothing taken', async (t) => {
  const build = (refuse: boolean) => {
    let state = withNodes(['n1', 'n2', 'n3'], AT);
    for (const [name, owner] of [['data', 'n2'], ['wal', 'n3']] as const) {
      state = ok(state, { type: 'volume.create', id: `id-${name}`, name, sizeBytes: 1 << 20, createdAt: AT, placement: ['n1', 'n2', 'n3'] }).state;
      state = ok(state, { type: 'volume.attach', name, nodeId: owner }).state;
    }
    const log = new MemoryLog(state);
    const events: string[] = [];
    let nextId = 0;
    const coordinator = new SnapshotCoordinator(
      { nodeId: 'n1', pauseTimeoutMs: 1000 },
      {
        commands: log,
        replicas: {
          run: async (nodeId: string, op: SnapshotOp, at: VolumeAtGeneration) => {
            events.push(`${op}:${at.volumeId}@${nodeId}`);
          },
          clone: async () => undefined,
        },
        localVolume: () => undefined,
        pauseOwner: async (owner, volume) => {
          if (refuse && owner === 'n3') throw new PlinthError('TIMEOUT', 'n3 did not answer');
          events.push(`pause:${volume}@${owner}`);
          return { token: `t-${volume}` };
        },
        resumeOwner: async (owner, volume, token) => {
          events.push(`resume:${volume}@${owner}:${token}`);
        },
        logger,
        clock: () => new Date(AT),
        newId: () => `id-${(nextId += 1)}`,
      },
    );
    return { log, events, coordinator };
  };
  const good = build(false);
  const group = await good.coordinator.createGroup('g1', ['data', 'wal']);
  t.same(group.snapshots.map((item) => item.volume), ['data', 'wal']);
  t.ok(group.snapshots.every((item) => item.snapshot.groupId === group.groupId), 'one groupId');
  const firstCreate = good.events.findIndex((event) => event.startsWith('create:'));
  t.same(new Set(good.events.slice(0, firstCreate)), new Set(['pause:data@n2', 'pause:wal@n3']), 'both owners paused first');
  t.ok(good.events.slice(-2).every((event) => event.startsWith('resume:')), 'then resumed, with their tokens');

  const bad = build(true);
  await t.rejects(bad.coordinator.createGroup('g1', ['data', 'wal']), { code: 'TIMEOUT' });
  t.same(bad.events, ['pause:data@n2', 'resume:data@n2:t-data'], 'the paused owner resumed; no replica asked');
  t.notOk(bad.log.proposed.some((command) => command.type === 'snapshot.create'));
  await t.rejects(good.coordinator.createGroup('g1', ['data', 'wal']), { code: 'SNAPSHOT_EXISTS' });
  await t.rejects(good.coordinator.createGroup('g2', ['data', 'data']), { code: 'INVALID_ARGUMENT' });
});
