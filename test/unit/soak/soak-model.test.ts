/**
 * The soak's per-block model (test/soak/soak-model.ts): acknowledged writes
 * narrow a block to one version, failed ones widen it, reads never narrow,
 * garbage is always a violation, and misuse is loud.
 */
import t from 'tap';
import { BlockModel, MAX_POSSIBLE_VERSIONS_PER_BLOCK } from '../../soak/soak-model.js';

t.test('a fresh block reads as zeroes only', async (t) => {
  const model = new BlockModel('v', 8);
  t.same(model.allowed(3), [0]);
  t.equal(model.check(3, { kind: 'version', version: 0 }, 'p'), undefined);
  t.match(model.check(3, { kind: 'version', version: 1 }, 'p'), { volume: 'v', block: 3, read: '1', allowed: [0], phase: 'p', history: [] });
});

t.test('an acknowledged write is the only allowed content, until the next one', async (t) => {
  const model = new BlockModel('v', 8);
  const first = model.beginWrite(2);
  t.ok(model.isBusy(2));
  model.acknowledge(2);
  t.notOk(model.isBusy(2));
  t.same(model.allowed(2), [first]);
  t.ok(model.check(2, { kind: 'version', version: 0 }, 'p'), 'the old zeroes are gone');
  const second = model.beginWrite(2);
  model.acknowledge(2);
  t.same(model.allowed(2), [second]);
  t.ok(model.check(2, { kind: 'version', version: first }, 'p'), 'a superseded write is a violation (lost or reordered write)');
});

t.test('a failed write may or may not have landed; a later acknowledged write settles it', async (t) => {
  const model = new BlockModel('v', 8);
  const acked = model.beginWrite(1);
  model.acknowledge(1);
  const lost = model.beginWrite(1);
  model.fail(1);
  t.same(model.allowed(1), [acked, lost]);
  t.equal(model.check(1, { kind: 'version', version: acked }, 'p'), undefined);
  t.equal(model.check(1, { kind: 'version', version: lost }, 'p'), undefined);
  t.equal(model.check(1, { kind: 'version', version: acked }, 'p'), undefined, 'reads do not narrow: a resync may still pick the other source');
  t.equal(model.uncertainBlocks(), 1);
  const settled = model.beginWrite(1);
  model.acknowledge(1);
  t.same(model.allowed(1), [settled]);
  t.ok(model.check(1, { kind: 'version', version: lost }, 'p'), 'a failed write landing after a later acknowledged one is a violation');
  t.equal(model.uncertainBlocks(), 0);
});

t.test('zeroing mutations are version 0', async (t) => {
  const model = new BlockModel('v', 8);
  const written = model.beginWrite(4);
  model.acknowledge(4);
  model.beginZero(4);
  model.fail(4);
  t.same(model.allowed(4), [0, written]);
  model.beginZero(4);
  model.acknowledge(4);
  t.same(model.allowed(4), [0]);
});

t.test('garbage is a violation whatever the model allows', async (t) => {
  const model = new BlockModel('v', 8);
  t.match(model.check(0, { kind: 'garbage', detail: 'sector stamps 1@0, 2@0' }, 'final'), { read: 'garbage: sector stamps 1@0, 2@0', phase: 'final' });
});

t.test('versions are unique and misuse throws', async (t) => {
  const model = new BlockModel('v', 8);
  const a = model.beginWrite(0);
  const b = model.beginWrite(1);
  t.not(a, b);
  t.throws(() => model.beginWrite(0), /already has a mutation in flight/);
  t.throws(() => model.acknowledge(5), /no mutation in flight/);
  t.throws(() => model.allowed(8), RangeError);
  t.throws(() => model.beginWrite(-1), RangeError);
  t.throws(() => new BlockModel('v', 0), RangeError);
  t.same(model.touchedBlocks(), []);
  model.acknowledge(0);
  model.fail(1);
  t.same(model.touchedBlocks(), [0, 1]);
});

t.test('a block that keeps failing has a bound', async (t) => {
  const model = new BlockModel('v', 2);
  for (let i = 0; i < MAX_POSSIBLE_VERSIONS_PER_BLOCK - 1; i++) {
    model.beginWrite(0);
    model.fail(0);
  }
  model.beginWrite(0);
  t.throws(() => model.fail(0), /more than/);
});

t.test('a violation carries the block\'s recent mutations', async (t) => {
  let now = 1000;
  const model = new BlockModel('v', 4, () => now);
  const first = model.beginWrite(1);
  now = 1005;
  model.acknowledge(1);
  const second = model.beginWrite(1);
  now = 1010;
  model.fail(1);
  t.match(model.check(1, { kind: 'version', version: 0 }, 'p'), { history: [`5 ${first} acked`, `10 ${second} failed`] });
});
