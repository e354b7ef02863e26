import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { buildApiApp } from '../../../api/build-api-app.js';
import { ClusterStateMachine, encodeCommand } from '../../../daemon/cluster/cluster-state-machine.js';
import { createLogger } from '../../../daemon/logging/create-logger.js';
import { activeRequestScopes, currentRequestId, outsideRequestScope, runWithRequestId } from '../../../daemon/logging/request-context.js';
import { decodeCommandEntry, type Command } from '../../../daemon/state/commands.js';
import { FakeControlPlane } from '../../helpers/fake-control-plane.js';

const TOKEN = 'request-id-test-token-0123456789';

function logLines(lines: readonly string[]): Record<string, unknown>[] {
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

t.test('a REST request runs with its x-request-id: the handler sees it after body parsing, every line has it once', async (t) => {
  const lines: string[] = [];
  const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
  const seen: (string | undefined)[] = [];
  class RecordingControl extends FakeControlPlane {
    override async createVolume(...args: Parameters<FakeControlPlane['createVolume']>): ReturnType<FakeControlPlane['createVolume']> {
      seen.push(currentRequestId());
      await new Promise((resolve) => setTimeout(resolve, 5));
      logger.info('inside the control plane, after a timer');
      seen.push(currentRequestId());
      return super.createVolume(...args);
    }
  }
  const app = await buildApiApp({ token: TOKEN, version: 't', logger }, { control: new RecordingControl(), metrics: new Registry() });
  t.teardown(() => app.close());
  const response = await app.inject({
    method: 'POST',
    url: '/v1/volumes',
    headers: { authorization: `Bearer ${TOKEN}`, 'x-request-id': 'op-42', 'content-type': 'application/json' },
    payload: JSON.stringify({ name: 'v1', size: '1MiB' }),
  });
  t.equal(response.statusCode, 201, response.body);
  t.equal(response.headers['x-request-id'], 'op-42');
  t.same(seen, ['op-42', 'op-42']);
  t.equal(currentRequestId(), undefined, 'nothing leaks to the caller');
  t.equal(activeRequestScopes(), 0, 'the scope ended with the response (the storage is disabled again)');
  const parsed = logLines(lines);
  t.ok(parsed.length >= 3, 'fastify incoming + completed + our line');
  for (const [index, line] of parsed.entries()) {
    t.equal(line['requestId'], 'op-42', `line ${index}: ${String(line['msg'])}`);
    t.equal(line['reqId'], undefined, 'fastify uses the same key, not reqId');
    t.equal((lines[index] ?? '').split('"requestId"').length, 2, 'the key appears once');
  }
});

t.test('a scope ends at end() or after maxActiveMs, whichever is first; work it started outlives it untagged', async (t) => {
  let resumeLater: (() => void) | undefined;
  const later = new Promise<void>((resolve) => (resumeLater = resolve));
  const seenLater: (string | undefined)[] = [];
  await runWithRequestId('op-a', async (scope) => {
    t.equal(currentRequestId(), 'op-a');
    t.equal(await outsideRequestScope(async () => currentRequestId()), undefined, 'outsideRequestScope hides it');
    t.equal(currentRequestId(), 'op-a', 'and the caller resumes in it');
    // A "loop" started by the operation, resumed after the operation ended.
    void later.then(() => seenLater.push(currentRequestId()));
    scope.end();
  }, 10_000);
  t.equal(activeRequestScopes(), 0);
  await runWithRequestId('op-b', async () => {
    resumeLater?.();
    await later;
    await new Promise((resolve) => setImmediate(resolve));
  }, 50);
  t.same(seenLater, [undefined], 'a stale scope never tags a line, even while another operation runs');
  await new Promise((resolve) => setTimeout(resolve, 80));
  t.equal(activeRequestScopes(), 0, 'op-b expired after its maxActiveMs');
});

t.test('the Raft entry envelope: requestId is optional, old entries decode unchanged', async (t) => {
  const command: Command = { type: 'volume.delete', name: 'v' };
  t.same(decodeCommandEntry(JSON.parse(encodeCommand(command).toString('utf8'))), { command });
  t.same(decodeCommandEntry(JSON.parse(encodeCommand(command, 'op-1').toString('utf8'))), { command, requestId: 'op-1' });
  t.same(JSON.parse(encodeCommand(command).toString('utf8')), command, 'without an id the bytes are what they always were');
  t.throws(() => decodeCommandEntry({ ...command, requestId: 7 }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => decodeCommandEntry({ ...command, requestId: 'x'.repeat(129) }), { code: 'INVALID_ARGUMENT' });
});

t.test('the state machine logs applies of control operations at info with their id, and hands it to listeners', async (t) => {
  const lines: string[] = [];
  const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
  const machine = new ClusterStateMachine({ logger });
  const heard: { type: string; requestId: string | undefined; scoped: string | undefined }[] = [];
  machine.onApplied((command, _outcome, _index, requestId) => heard.push({ type: command.type, requestId, scoped: currentRequestId() }));
  machine.apply({ index: 1, term: 1, command: encodeCommand({ type: 'cluster.init', clusterId: 'c1' }) });
  machine.apply({ index: 2, term: 1, command: encodeCommand({ type: 'volume.delete', name: 'nope' }, 'op-7') });
  t.same(heard, [
    { type: 'cluster.init', requestId: undefined, scoped: undefined },
    { type: 'volume.delete', requestId: 'op-7', scoped: 'op-7' },
  ]);
  const parsed = logLines(lines);
  t.equal(parsed.length, 1, 'the entry without an id stays at debug');
  t.equal(parsed[0]?.['requestId'], 'op-7');
  t.equal(parsed[0]?.['msg'], 'applied volume.delete requestId=op-7');
  t.equal(parsed[0]?.['refused'], 'VOLUME_NOT_FOUND');
  t.ok(pino.version);
});
