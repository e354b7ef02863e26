import { pino } from 'pino';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { buildApiApp } from '../../../api/build-api-app.js';
import { findCommand } from '../../../api/cli/command-table.js';
import { parseCommandLine } from '../../../api/cli/parse-args.js';
import type { SendReceiveServices } from '../../../api/routes/send-receive-routes.js';
import { PlinthError } from '../../../common/plinth-error.js';
import type { SnapshotSchedule } from '../../../daemon/state/snapshot-schedule-commands.js';
import type { FakeControlPlane } from '../../helpers/fake-control-plane.js';
import { SnapshotControlPlane } from '../../helpers/snapshot-control-plane.js';
import { AUTH_HEADERS, buildTestApp, TEST_TOKEN } from './api-fixture.js';

/**
 * The dashboard shows each action's CLI and REST equivalent
 * (api/dashboard/public/equivalents.js, a browser module with no DOM use).
 * Here every CLI line goes through the real CLI parser and command table,
 * and every REST call is sent to the real routes, so what the page shows
 * is what works.
 */

interface RestCall {
  readonly method: string;
  readonly path: string;
  readonly body?: Record<string, unknown>;
}
interface Equivalent {
  readonly cli: string;
  readonly rest: RestCall;
}
interface EquivalentsModule {
  createEquivalent(request: { name: string; size: string; replicas?: number }): Equivalent;
  resizeEquivalent(name: string, size: string): Equivalent;
  attachEquivalent(name: string, nodeId: string): Equivalent;
  detachEquivalent(name: string): Equivalent;
  deleteEquivalent(name: string): Equivalent;
  listSnapshotsEquivalent(volume: string): Equivalent;
  createSnapshotEquivalent(volume: string, snapshot: string): Equivalent;
  deleteSnapshotEquivalent(volume: string, snapshot: string): Equivalent;
  cloneEquivalent(volume: string, snapshot: string, cloneName: string): Equivalent;
  revertEquivalent(volume: string, snapshot: string): Equivalent;
  groupSnapshotEquivalent(snapshot: string, volumes: string[]): Equivalent;
  scheduleEquivalent(volume: string, schedule: { every: string; everyMs: number; keep: number }): Equivalent;
  clearScheduleEquivalent(volume: string): Equivalent;
  describeRest(rest: RestCall): string;
  shellWord(word: string): string;
}

/** dist/test/unit/api/ → the package's api/dashboard/public/equivalents.js (served as is, never compiled). */
const MODULE_URL = new URL('../../../../api/dashboard/public/equivalents.js', import.meta.url).href;

async function loadEquivalents(): Promise<EquivalentsModule> {
  const loaded: unknown = await import(MODULE_URL);
  if (typeof loaded !== 'object' || loaded === null || !('createEquivalent' in loaded)) throw new Error(`${MODULE_URL} is not the equivalents module`);
  return loaded as EquivalentsModule;
}

/** The CLI line's words (the names used here need no shell quoting), checked against the command table. */
interface ExpectedCommand {
  readonly noun: string;
  readonly verb: string;
  readonly args: readonly string[];
  readonly options: Readonly<Record<string, string | boolean>>;
}

function checkCliLine(t: Test, line: string, expected: ExpectedCommand): void {
  const words = line.split(' ');
  t.equal(words.shift(), 'plinth', `${line}: the binary`);
  const parsed = parseCommandLine(words);
  const [noun, verb, ...args] = parsed.positionals;
  t.same([noun, verb], [expected.noun, expected.verb], `${line}: noun and verb`);
  const spec = findCommand(noun ?? '', verb ?? '');
  if (spec === undefined) {
    t.fail(`${line}: no such CLI command`);
    return;
  }
  t.same(args, expected.args, `${line}: arguments`);
  t.equal(args.length, spec.args.length, `${line}: arity`);
  for (const option of parsed.givenOptions) t.ok(spec.options.includes(option), `${line}: --${option} is an option of ${spec.synopsis}`);
  for (const option of spec.requiredOptions) t.ok(parsed.givenOptions.includes(option), `${line}: required --${option}`);
  t.match(parsed.options, expected.options, `${line}: option values`);
}

t.test('every CLI equivalent is a command the CLI accepts, with the same values', async (t) => {
  const eq = await loadEquivalents();
  checkCliLine(t, eq.createEquivalent({ name: 'db1', size: '2GiB', replicas: 3 }).cli, { noun: 'volume', verb: 'create', args: ['db1'], options: { size: '2GiB', replicas: '3' } });
  checkCliLine(t, eq.createEquivalent({ name: 'db1', size: '512MiB' }).cli, { noun: 'volume', verb: 'create', args: ['db1'], options: { size: '512MiB' } });
  checkCliLine(t, eq.resizeEquivalent('db1', '4GiB').cli, { noun: 'volume', verb: 'resize', args: ['db1'], options: { size: '4GiB' } });
  checkCliLine(t, eq.attachEquivalent('db1', 'node-2').cli, { noun: 'volume', verb: 'attach', args: ['db1'], options: { node: 'node-2' } });
  checkCliLine(t, eq.detachEquivalent('db1').cli, { noun: 'volume', verb: 'detach', args: ['db1'], options: {} });
  checkCliLine(t, eq.deleteEquivalent('db1').cli, { noun: 'volume', verb: 'rm', args: ['db1'], options: {} });
  t.equal(eq.createEquivalent({ name: 'db1', size: '2GiB', replicas: 3 }).cli, 'plinth volume create db1 --size 2GiB --replicas 3');
});

t.test('every REST equivalent is accepted by the real routes and does what it says', async (t) => {
  const eq = await loadEquivalents();
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  const send = async (rest: RestCall) => app.inject({
    method: rest.method as 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: rest.path,
    headers: AUTH_HEADERS,
    ...(rest.body === undefined ? {} : { payload: rest.body }),
  });

  const created = await send(eq.createEquivalent({ name: 'db1', size: '1GiB', replicas: 2 }).rest);
  t.equal(created.statusCode, 201, created.body);
  t.match(created.json(), { name: 'db1', sizeBytes: 1024 ** 3, replicaCount: 2 });
  const grown = await send(eq.resizeEquivalent('db1', '2GiB').rest);
  t.equal(grown.statusCode, 200, grown.body);
  t.match(grown.json(), { sizeBytes: 2 * 1024 ** 3 });
  const attached = await send(eq.attachEquivalent('db1', 'node-2').rest);
  t.equal(attached.statusCode, 200, attached.body);
  t.match(attached.json(), { attachedTo: 'node-2' });
  const detached = await send(eq.detachEquivalent('db1').rest);
  t.equal(detached.statusCode, 200, detached.body);
  t.match(detached.json(), { attachedTo: null });
  const deleted = await send(eq.deleteEquivalent('db1').rest);
  t.equal(deleted.statusCode, 204, deleted.body);
  const gone = await app.inject({ method: 'GET', url: '/v1/volumes/db1', headers: AUTH_HEADERS });
  t.equal(gone.statusCode, 404);
});

t.test('describeRest and shellWord', async (t) => {
  const eq = await loadEquivalents();
  t.equal(eq.describeRest(eq.createEquivalent({ name: 'db1', size: '1GiB' }).rest), 'POST /v1/volumes {"name":"db1","size":"1GiB"}');
  t.equal(eq.describeRest(eq.deleteEquivalent('db1').rest), 'DELETE /v1/volumes/db1');
  t.equal(eq.describeRest(eq.detachEquivalent('db1').rest), 'POST /v1/volumes/db1/detach {}');
  t.equal(eq.shellWord('node-2'), 'node-2');
  t.equal(eq.shellWord("it's here"), "'it'\\''s here'");
  t.equal(eq.shellWord(''), "''");
  t.equal(eq.resizeEquivalent('a b', '1GiB').rest.path, '/v1/volumes/a%20b', 'names are URL-encoded in paths');
});

t.test('every snapshot CLI equivalent is a command the CLI accepts (issue 8)', async (t) => {
  const eq = await loadEquivalents();
  checkCliLine(t, eq.listSnapshotsEquivalent('db1').cli, { noun: 'snapshot', verb: 'ls', args: ['db1'], options: {} });
  checkCliLine(t, eq.createSnapshotEquivalent('db1', 's1').cli, { noun: 'snapshot', verb: 'create', args: ['db1', 's1'], options: {} });
  checkCliLine(t, eq.deleteSnapshotEquivalent('db1', 's1').cli, { noun: 'snapshot', verb: 'rm', args: ['db1', 's1'], options: {} });
  checkCliLine(t, eq.cloneEquivalent('db1', 's1', 'db1-copy').cli, { noun: 'volume', verb: 'clone', args: ['db1@s1', 'db1-copy'], options: {} });
  checkCliLine(t, eq.revertEquivalent('db1', 's1').cli, { noun: 'volume', verb: 'revert', args: ['db1', 's1'], options: {} });
  checkCliLine(t, eq.groupSnapshotEquivalent('nightly', ['db1', 'wal1']).cli, { noun: 'snapshot', verb: 'create-group', args: ['nightly', 'db1,wal1'], options: {} });
  const schedule = eq.scheduleEquivalent('db1', { every: '1h30m', everyMs: 5_400_000, keep: 24 });
  checkCliLine(t, schedule.cli, { noun: 'snapshot', verb: 'schedule', args: ['db1'], options: { every: '1h30m', keep: '24' } });
  checkCliLine(t, eq.clearScheduleEquivalent('db1').cli, { noun: 'snapshot', verb: 'schedule', args: ['db1'], options: { off: true } });
  t.equal(eq.cloneEquivalent('db1', 's1', 'db1-copy').cli, 'plinth volume clone db1@s1 db1-copy');
  t.equal(eq.describeRest(schedule.rest), 'PUT /v1/volumes/db1/snapshot-schedule {"everyMs":5400000,"keep":24}');
  t.equal(eq.revertEquivalent('a b', 's 1').rest.path, '/v1/volumes/a%20b/snapshots/s%201/revert', 'both names URL-encoded');
});

function notServed(): never {
  throw new PlinthError('NOT_SUPPORTED', 'send/receive is not part of this test');
}

/** Real routes, with schedules kept in a map (the retention service's get/set contract). */
function scheduleServices(control: FakeControlPlane): SendReceiveServices {
  const schedules = new Map<string, SnapshotSchedule>();
  return {
    send: { open: async () => notServed() },
    receive: { receive: async () => notServed(), status: async () => notServed(), abort: async () => notServed() },
    schedules: {
      get: async (volume) => {
        await control.getVolume(volume);
        return { volume, schedule: schedules.get(volume) ?? null };
      },
      set: async (volume, schedule) => {
        await control.getVolume(volume);
        if (schedule === null) schedules.delete(volume);
        else schedules.set(volume, schedule);
        return { volume, schedule };
      },
    },
  };
}

t.test('every snapshot REST equivalent is accepted by the real routes (issue 8)', async (t) => {
  const eq = await loadEquivalents();
  const control = new SnapshotControlPlane();
  const app = await buildApiApp(
    { token: TEST_TOKEN, version: '0.1.0-test', logger: pino({ level: 'silent' }) },
    { control, metrics: new Registry(), sendReceive: scheduleServices(control) },
  );
  t.teardown(() => app.close());
  const send = async (rest: RestCall) => app.inject({
    method: rest.method as 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: rest.path,
    headers: AUTH_HEADERS,
    ...(rest.body === undefined ? {} : { payload: rest.body }),
  });
  await send(eq.createEquivalent({ name: 'db1', size: '1GiB' }).rest);
  await send(eq.createEquivalent({ name: 'wal1', size: '1GiB' }).rest);

  const taken = await send(eq.createSnapshotEquivalent('db1', 's1').rest);
  t.equal(taken.statusCode, 201, taken.body);
  t.match(taken.json(), { name: 's1', volume: 'db1' });
  const listed = await send(eq.listSnapshotsEquivalent('db1').rest);
  t.equal(listed.statusCode, 200, listed.body);
  t.match(listed.json(), { snapshots: [{ name: 's1' }] });

  const cloned = await send(eq.cloneEquivalent('db1', 's1', 'db1-copy').rest);
  t.equal(cloned.statusCode, 201, cloned.body);
  t.match(cloned.json(), { name: 'db1-copy', sizeBytes: 1024 ** 3 });

  const reverted = await send(eq.revertEquivalent('db1', 's1').rest);
  t.equal(reverted.statusCode, 200, `a detached volume reverts: ${reverted.body}`);
  await send(eq.attachEquivalent('db1', 'node-2').rest);
  const refused = await send(eq.revertEquivalent('db1', 's1').rest);
  t.equal(refused.statusCode, 409, refused.body);
  t.match(refused.json(), { error: { code: 'VOLUME_ATTACHED' } });

  const group = await send(eq.groupSnapshotEquivalent('nightly', ['db1', 'wal1']).rest);
  t.equal(group.statusCode, 201, group.body);
  t.match(group.json(), { name: 'nightly', snapshots: [{ volume: 'db1' }, { volume: 'wal1' }] });

  const scheduled = await send(eq.scheduleEquivalent('db1', { every: '1h', everyMs: 3_600_000, keep: 24 }).rest);
  t.equal(scheduled.statusCode, 200, scheduled.body);
  t.same(scheduled.json(), { volume: 'db1', schedule: { everyMs: 3_600_000, keep: 24 } });
  const tooOften = await send(eq.scheduleEquivalent('db1', { every: '10s', everyMs: 10_000, keep: 24 }).rest);
  t.equal(tooOften.statusCode, 400, 'the route\'s own bounds apply to what the page sends');
  const cleared = await send(eq.clearScheduleEquivalent('db1').rest);
  t.same(cleared.json(), { volume: 'db1', schedule: null });

  const deleted = await send(eq.deleteSnapshotEquivalent('db1', 's1').rest);
  t.equal(deleted.statusCode, 204, deleted.body);
  t.match((await send(eq.listSnapshotsEquivalent('db1').rest)).json(), { snapshots: [{ name: 'nightly', groupId: 'group-1' }] });
});
