import { pino } from 'pino';
import t from 'tap';
import { createLogger } from '../../../daemon/logging/create-logger.js';
import { LogRing } from '../../../daemon/logging/log-ring.js';
import { activeRequestScopes, runWithRequestId } from '../../../daemon/logging/request-context.js';

t.test('keeps at most maxLines, oldest dropped first', async (t) => {
  const ring = new LogRing({ maxLines: 3, maxBytes: 1 << 20 });
  for (let i = 1; i <= 5; i += 1) ring.write(`line ${i}\n`);
  t.same(ring.snapshot().lines, ['line 3', 'line 4', 'line 5']);
  t.equal(ring.snapshot().evictedLines, 2);
  t.equal(ring.lineCount, 3);
});

t.test('keeps at most maxBytes, and cuts a line longer than maxLineBytes', async (t) => {
  const ring = new LogRing({ maxLines: 100, maxBytes: 25, maxLineBytes: 20 });
  ring.write('aaaaaaaaaa\nbbbbbbbbbb\n');
  ring.write('cccccccccc\n');
  t.same(ring.snapshot().lines, ['bbbbbbbbbb', 'cccccccccc']);
  t.ok(ring.sizeBytes <= 25);
  ring.write(`${'z'.repeat(100)}\n`);
  const last = ring.snapshot().lines.at(-1) ?? '';
  t.equal(last.length, 20);
  t.match(last, /truncated\]$/);
  t.ok(ring.sizeBytes <= 25);
  for (let i = 0; i < 10_000; i += 1) ring.write(`${i}\n`);
  t.ok(ring.sizeBytes <= 25 && ring.lineCount <= 100, 'bounded under load');
});

t.test('snapshot: lines since a time, newest kept within maxBytes', async (t) => {
  let nowMs = 1000;
  const ring = new LogRing({}, { now: () => nowMs });
  ring.write('old\n');
  nowMs = 2000;
  ring.write('mid\n');
  nowMs = 3000;
  ring.write('new\n');
  t.same(ring.snapshot({ sinceMs: 2000 }).lines, ['mid', 'new']);
  const capped = ring.snapshot({ maxBytes: 4 });
  t.same(capped.lines, ['new']);
  t.equal(capped.omittedLines, 2);
});

t.test('createLogger feeds the ring with what stdout gets, with the request id of the current operation', async (t) => {
  const ring = new LogRing();
  const seen: string[] = [];
  const logger = createLogger('info', { write: (line: string) => void seen.push(line) }, { ring });
  logger.debug('not at info');
  logger.info({ volume: 'v' }, 'outside');
  runWithRequestId('req-123', (scope) => {
    logger.child({ nodeId: 'n1' }).info('inside');
    scope.end();
  }, 1000);
  runWithRequestId('req-456', (scope) => {
    scope.end();
    logger.info('after the operation ended');
  }, 1000);
  t.equal(activeRequestScopes(), 0);
  const lines = ring.snapshot().lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  t.same(lines.map((line) => line['msg']), ['outside', 'inside', 'after the operation ended']);
  t.equal(seen.length, 3, 'stdout got the same lines');
  t.equal(lines[0]?.['requestId'], undefined);
  t.equal(lines[1]?.['requestId'], 'req-123');
  t.equal(lines[2]?.['requestId'], undefined);
  // A logger already bound to the id (fastify's request logger) does not get it twice.
  const bound: string[] = [];
  const boundLogger = createLogger('info', { write: (line: string) => void bound.push(line) }).child({ requestId: 'req-9' });
  runWithRequestId('req-9', (scope) => {
    boundLogger.info('once');
    scope.end();
  }, 1000);
  t.equal(bound[0]?.split('"requestId"').length, 2, 'the key appears once');
  t.ok(pino.version);
});
