/**
 * Issue 7: the failpoint core. The grammar (good and bad input with clear
 * errors), the registry's skip/times/match bookkeeping, and the actions as
 * seen through replaced effects (no process is crashed or frozen here).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { pino } from 'pino';
import { armCataloguedFailpoints, armFailpointsFromEnv, describeArmed } from '../../../common/failpoints/arm-failpoints.js';
import { FAILPOINT_CATALOGUE, FAILPOINT_NAMES } from '../../../common/failpoints/failpoint-catalogue.js';
import { FailpointRegistry } from '../../../common/failpoints/failpoint-registry.js';
import { formatFailpoint, MAX_STALL_MS, parseFailpoint, parseFailpointList } from '../../../common/failpoints/failpoint-spec.js';
import { failpoints, hitFailpoint, hitFailpointSync, useFailpointEffects, type FailpointEffects } from '../../../common/failpoints/failpoints.js';
import { isPlinthError } from '../../../common/plinth-error.js';

t.test('grammar: actions and options', async (t) => {
  t.same(parseFailpoint('a.b=crash'), { name: 'a.b', action: { kind: 'crash' }, skip: 0 });
  t.same(parseFailpoint(' a.b = power-cut '), { name: 'a.b', action: { kind: 'power-cut' }, skip: 0 }, 'spaces around name and action');
  t.same(parseFailpoint('a=error'), { name: 'a', action: { kind: 'error', errno: 'EIO' }, skip: 0 }, 'error defaults to EIO');
  t.same(parseFailpoint('a=error(ENOSPC)'), { name: 'a', action: { kind: 'error', errno: 'ENOSPC' }, skip: 0 });
  t.same(parseFailpoint('a=stall(250)'), { name: 'a', action: { kind: 'stall', durationMs: 250 }, skip: 0 });
  t.same(parseFailpoint('a=stall(0)'), { name: 'a', action: { kind: 'stall', durationMs: 0 }, skip: 0 });
  t.same(parseFailpoint('a=crash:times=2:skip=3:match=vol-1'), { name: 'a', action: { kind: 'crash' }, skip: 3, times: 2, match: 'vol-1' });
  t.same(parseFailpoint('a=off'), { name: 'a', off: true });
  t.same(parseFailpointList('a=crash; ;b=off;'), [{ name: 'a', action: { kind: 'crash' }, skip: 0 }, { name: 'b', off: true }], 'list: empty entries ignored');
  for (const text of ['a=crash', 'a=error(ENOSPC):times=1', 'a=stall(5000):skip=2:match=x', 'a.b-c=power-cut:times=4:skip=1']) {
    const spec = parseFailpoint(text);
    t.ok(!('off' in spec), text);
    if (!('off' in spec)) t.equal(formatFailpoint(spec), text, `${text} round-trips through formatFailpoint`);
  }
});

t.test('grammar: bad input is refused with a message that says what is wrong', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['crash', /expected name=action/],
    ['=crash', /expected name=action/],
    ['A.b=crash', /bad failpoint name/],
    ['a b=crash', /bad failpoint name/],
    ['a=explode', /unknown action "explode"/],
    ['a=crash(1)', /crash takes no argument/],
    ['a=power-cut(1)', /power-cut takes no argument/],
    ['a=error(EPERM)', /expected one of EIO, ENOSPC/],
    ['a=stall', /stall\(MS\) needs whole milliseconds/],
    ['a=stall(-1)', /stall\(MS\)/],
    ['a=stall(1.5)', /stall\(MS\)/],
    [`a=stall(${MAX_STALL_MS + 1})`, /stall\(MS\)/],
    ['a=stall(x', /bad action/],
    ['a=crash:times=0', /times=0: expected a whole number >= 1/],
    ['a=crash:skip=-1', /skip=-1: expected a whole number >= 0/],
    ['a=crash:times=x', /times=x/],
    ['a=crash:color=red', /unknown option "color"/],
    ['a=crash:times', /bad option "times"/],
    ['a=crash:match=a=b', /bad option/],
    ['a=off:times=1', /`off` takes no options/],
  ];
  for (const [text, message] of cases) {
    t.throws(() => parseFailpoint(text), { code: 'INVALID_ARGUMENT', message }, text);
  }
  t.throws(() => parseFailpointList('a=crash;b=boom'), { code: 'INVALID_ARGUMENT', message: /unknown action "boom"/ }, 'one bad entry fails the list');
});

t.test('registry: skip, times, match and the armed flag', async (t) => {
  const registry = new FailpointRegistry();
  t.equal(registry.armed, false, 'nothing armed at first');
  t.equal(registry.check('a'), undefined, 'an unarmed point does nothing');

  registry.armFromText('a=crash:skip=2:times=2');
  t.equal(registry.armed, true);
  t.equal(registry.check('a'), undefined, 'hit 1 skipped');
  t.equal(registry.check('a'), undefined, 'hit 2 skipped');
  t.same(registry.check('a'), { kind: 'crash' }, 'hit 3 fires');
  t.same(registry.status(), [{ spec: parseFailpoint('a=crash:skip=2:times=2'), hits: 3, fired: 1 }], 'status counts hits and firings');
  t.same(registry.check('a'), { kind: 'crash' }, 'hit 4 fires');
  t.equal(registry.armed, false, 'times=2 used up: disarmed');
  t.equal(registry.check('a'), undefined, 'and it stays quiet');

  registry.armFromText('b=error:match=vol-7');
  t.equal(registry.check('b', 'vol-1'), undefined, 'another subject passes');
  t.equal(registry.check('b'), undefined, 'no subject passes');
  t.same(registry.check('b', 'vol-7'), { kind: 'error', errno: 'EIO' }, 'the matching subject fires');
  t.same(registry.status()[0], { spec: parseFailpoint('b=error:match=vol-7'), hits: 1, fired: 1 }, 'non-matching passes are not hits');
  t.same(registry.check('b', 'vol-7'), { kind: 'error', errno: 'EIO' }, 'without times it fires every hit');

  registry.armFromText('c=stall(5);b=off');
  t.same(registry.status().map((point) => point.spec.name), ['c'], '`off` disarms');
  registry.armFromText('c=stall(9)');
  t.same(registry.check('c'), { kind: 'stall', durationMs: 9 }, 're-arming replaces the spec');
  t.equal(registry.disarm('c'), true);
  t.equal(registry.disarm('c'), false, 'disarming twice reports nothing removed');
  registry.armFromText('d=crash;e=crash');
  registry.disarmAll();
  t.equal(registry.armed, false, 'disarmAll');
  t.same(registry.status(), []);
});

interface Watched {
  readonly effects: FailpointEffects;
  readonly seen: string[];
}

/** Effects that record what would have happened; crash and power-cut throw instead of killing the test. */
function watchedEffects(): Watched {
  const seen: string[] = [];
  const effects: FailpointEffects = {
    crash(name: string): never {
      seen.push(`crash ${name}`);
      throw new Error(`crash ${name}`);
    },
    powerCut(name: string): never {
      seen.push(`power-cut ${name}`);
      throw new Error(`power-cut ${name}`);
    },
    sleep: async (durationMs: number) => {
      seen.push(`sleep ${durationMs}`);
    },
    freeze(durationMs: number): void {
      seen.push(`freeze ${durationMs}`);
    },
  };
  return { effects, seen };
}

t.test('actions through replaced effects', async (t) => {
  const { effects, seen } = watchedEffects();
  const restore = useFailpointEffects(effects);
  t.teardown(() => {
    restore();
    failpoints.disarmAll();
  });

  await hitFailpoint('x.unarmed');
  hitFailpointSync('x.unarmed');
  t.same(seen, [], 'unarmed points do nothing');

  failpoints.armFromText('x.crash=crash:times=1;x.cut=power-cut;x.stall=stall(40);x.eio=error;x.enospc=error(ENOSPC)');
  await t.rejects(hitFailpoint('x.crash'), { message: 'crash x.crash' }, 'crash goes to effects.crash');
  await hitFailpoint('x.crash');
  t.throws(() => hitFailpointSync('x.cut'), { message: 'power-cut x.cut' }, 'power-cut goes to effects.powerCut');
  await hitFailpoint('x.stall');
  hitFailpointSync('x.stall');
  t.same(seen, ['crash x.crash', 'power-cut x.cut', 'sleep 40', 'freeze 40'], 'async stall sleeps, sync stall freezes; times=1 fired once');

  await t.rejects(hitFailpoint('x.eio', 'v'), { code: 'IO_ERROR', details: { failpoint: 'x.eio' } }, 'error → IO_ERROR');
  t.throws(() => hitFailpointSync('x.enospc'), { code: 'NO_SPACE', message: /injected ENOSPC/ }, 'error(ENOSPC) → NO_SPACE');

  restore();
  failpoints.armFromText('x.stall=stall(30):times=1');
  const startedMs = performance.now();
  await hitFailpoint('x.stall');
  t.ok(performance.now() - startedMs >= 25, 'the real async stall waits');
});

t.test('arming from outside: catalogue names only, all or nothing, env logged at warn', async (t) => {
  const registry = new FailpointRegistry();
  t.throws(() => armCataloguedFailpoints(registry, 'pool.write=error;pool.wirte=crash'), { code: 'INVALID_ARGUMENT', message: /unknown failpoint "pool.wirte"; known: .*pool.write/ });
  t.equal(registry.armed, false, 'nothing armed when any entry is bad');
  armCataloguedFailpoints(registry, 'pool.write=error(ENOSPC):times=3;raft.apply.before=stall(10)');
  t.same(describeArmed(registry), ['pool.write=error(ENOSPC):times=3', 'raft.apply.before=stall(10)']);
  armCataloguedFailpoints(registry, 'pool.write=off');
  t.same(describeArmed(registry), ['raft.apply.before=stall(10)']);

  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const fromEnv = new FailpointRegistry();
  armFailpointsFromEnv(fromEnv, {}, logger);
  armFailpointsFromEnv(fromEnv, { PLINTH_FAILPOINTS: '  ' }, logger);
  t.equal(fromEnv.armed, false, 'unset or blank: nothing armed');
  t.same(lines, [], 'and nothing logged');
  armFailpointsFromEnv(fromEnv, { PLINTH_FAILPOINTS: 'replica.write.before-ack=crash:skip=10' }, logger);
  t.match(lines, [{ level: 40, failpoints: ['replica.write.before-ack=crash:skip=10'], msg: /PLINTH_FAILPOINTS/ }], 'armed list logged at warn');
  t.throws(() => armFailpointsFromEnv(fromEnv, { PLINTH_FAILPOINTS: 'nope=crash' }, logger), { code: 'INVALID_ARGUMENT' });
});

/** Every `hitFailpoint('name'` in the sources names a catalogue entry, and every entry has a call site. */
t.test('the catalogue and the call sites agree', async (t) => {
  const root = fileURLToPath(new URL('../../../../', import.meta.url));
  const used = new Set<string>();
  for (const folder of ['blockdev', 'consensus', 'daemon', 'common', 'api']) {
    for (const file of await sourceFiles(join(root, folder))) {
      const text = await readFile(file, 'utf8');
      for (const match of text.matchAll(/hitFailpoint(?:Sync)?\(\s*'([a-z0-9.-]+)'/g)) if (match[1] !== undefined) used.add(match[1]);
    }
  }
  t.same([...used].filter((name) => !FAILPOINT_NAMES.has(name)), [], 'no call site outside the catalogue');
  t.same(FAILPOINT_CATALOGUE.map((entry) => entry.name).filter((name) => !used.has(name)), [], 'no catalogue entry without a call site');
  t.equal(FAILPOINT_NAMES.size, FAILPOINT_CATALOGUE.length, 'names are unique');
  for (const entry of FAILPOINT_CATALOGUE) t.doesNotThrow(() => parseFailpoint(`${entry.name}=crash`), `${entry.name} fits the grammar`);
});

async function sourceFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) found.push(path);
  }
  return found;
}

t.test('isPlinthError sanity for injected errors', async (t) => {
  failpoints.armFromText('y=error:times=1');
  t.teardown(() => failpoints.disarmAll());
  const error: unknown = await hitFailpoint('y').then(() => undefined, (err: unknown) => err);
  t.ok(isPlinthError(error, 'IO_ERROR'), 'an injected error is a PlinthError the data path maps');
});
