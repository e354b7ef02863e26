import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { openDisk } from '../../../blockdev/pool/disk.js';
import {
  DEFAULT_INLINE_IO_OPTIONS,
  type InlineIoOptions,
  InlineIoPolicy,
  resolveInlineIoOptions,
} from '../../../blockdev/pool/inline-io-policy.js';

/** Inline I/O while fast; threadpool for a doubling cool-down after a slow op (inline-io-policy.ts). */

class ManualClock {
  nowMs = 0;
  now(): number {
    return this.nowMs;
  }
}

const OPTIONS: InlineIoOptions = { maxInlineBytes: 65536, slowOpMs: 1, slowOpsToCoolDown: 1, coolDownMs: 100, maxCoolDownMs: 400 };

/** Run one inline op that takes `durationMs` on the manual clock. */
function inlineOp(policy: InlineIoPolicy, clock: ManualClock, durationMs: number): void {
  const started = policy.startInline();
  clock.nowMs += durationMs;
  policy.finishInline(started);
}

t.test('small requests run inline, large ones on the threadpool', async (t) => {
  const clock = new ManualClock();
  const policy = new InlineIoPolicy(OPTIONS, clock);
  t.equal(policy.shouldInline(4096), true);
  t.equal(policy.shouldInline(65536), true, 'the limit itself is inline');
  t.equal(policy.shouldInline(65537), false);
  t.equal(policy.shouldInline(1024 * 1024), false);
  t.match(policy.stats(), { inlineOps: 2, threadpoolOps: 2, slowInlineOps: 0 });
});

t.test('a slow inline op sends everything to the threadpool for the cool-down', async (t) => {
  const clock = new ManualClock();
  const policy = new InlineIoPolicy(OPTIONS, clock);
  inlineOp(policy, clock, 0.5);
  t.equal(policy.shouldInline(4096), true, 'a fast op changes nothing');
  inlineOp(policy, clock, 5);
  t.equal(policy.shouldInline(4096), false, 'cooling down right after the slow op');
  clock.nowMs += 99;
  t.equal(policy.shouldInline(4096), false, 'still cooling down just before the end');
  clock.nowMs += 1;
  t.equal(policy.shouldInline(4096), true, 'inline again once the cool-down is over');
  t.equal(policy.stats().slowInlineOps, 1);
});

t.test('repeated slow ops double the cool-down up to the maximum; a fast op resets it', async (t) => {
  const clock = new ManualClock();
  const policy = new InlineIoPolicy(OPTIONS, clock);
  const coolDowns: number[] = [];
  for (let round = 0; round < 4; round += 1) {
    t.equal(policy.shouldInline(4096), true);
    inlineOp(policy, clock, 2);
    const start = clock.nowMs;
    while (!policy.shouldInline(4096)) clock.nowMs += 1;
    coolDowns.push(clock.nowMs - start);
  }
  t.same(coolDowns, [100, 200, 400, 400]);
  inlineOp(policy, clock, 0.1);
  t.equal(policy.stats().nextCoolDownMs, 100, 'reset by a fast op');
});

t.test('with slowOpsToCoolDown 2, one slow op (a preemption) is forgiven; two in a row cool down', async (t) => {
  const clock = new ManualClock();
  const policy = new InlineIoPolicy({ ...OPTIONS, slowOpsToCoolDown: 2 }, clock);
  inlineOp(policy, clock, 5);
  t.equal(policy.shouldInline(4096), true, 'one slow op alone');
  inlineOp(policy, clock, 0.1);
  inlineOp(policy, clock, 5);
  t.equal(policy.shouldInline(4096), true, 'a fast op in between resets the count');
  inlineOp(policy, clock, 5);
  t.equal(policy.shouldInline(4096), false, 'two consecutive slow ops start the cool-down');
});

t.test('a failing inline op is still timed (finishInline runs in finally)', async (t) => {
  const clock = new ManualClock();
  const policy = new InlineIoPolicy(OPTIONS, clock);
  t.throws(() => {
    const started = policy.startInline();
    try {
      clock.nowMs += 3;
      throw new Error('EIO');
    } finally {
      policy.finishInline(started);
    }
  });
  t.equal(policy.shouldInline(4096), false);
});

t.test('maxInlineBytes 0 turns inline I/O off; bad options are CONFIG_INVALID', async (t) => {
  const policy = new InlineIoPolicy(resolveInlineIoOptions({ maxInlineBytes: 0 }), new ManualClock());
  t.equal(policy.shouldInline(1), false);
  t.same(resolveInlineIoOptions(), DEFAULT_INLINE_IO_OPTIONS);
  t.throws(() => resolveInlineIoOptions({ slowOpMs: -1 }), { code: 'CONFIG_INVALID' });
  t.throws(() => resolveInlineIoOptions({ slowOpsToCoolDown: 0 }), { code: 'CONFIG_INVALID' });
  t.throws(() => resolveInlineIoOptions({ coolDownMs: 10, maxCoolDownMs: 5 }), { code: 'CONFIG_INVALID' });
  t.throws(() => resolveInlineIoOptions({ maxInlineBytes: Number.NaN }), { code: 'CONFIG_INVALID' });
});

t.test('a disk does small I/O inline and large I/O on the threadpool, with the same bytes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-inline-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const disk = await openDisk({ path: join(dir, 'disk'), sizeBytes: 4 * 1024 * 1024, mayCreate: true }, pino({ level: 'silent' }));
  t.teardown(() => disk.close());
  const small = Buffer.alloc(4096, 0xab);
  const large = Buffer.alloc(1024 * 1024, 0xcd);
  await disk.write(small, 0, small.length, 8192);
  await disk.write(large, 0, large.length, 1024 * 1024);
  const readSmall = Buffer.alloc(small.length);
  const readLarge = Buffer.alloc(large.length);
  await disk.read(readSmall, 0, readSmall.length, 8192);
  await disk.read(readLarge, 0, readLarge.length, 1024 * 1024);
  t.ok(readSmall.equals(small));
  t.ok(readLarge.equals(large));
  t.equal(disk.dirty, true, 'inline writes mark the disk dirty for the next flush');
  const stats = disk.inlineIoStats();
  t.ok(stats.inlineOps >= 2 || stats.slowInlineOps > 0, 'small ops went inline (unless the machine stalled one)');
  t.equal(stats.threadpoolOps >= 2, true, 'the 1 MiB ops went to the threadpool');
  await disk.sync();
  t.equal(disk.dirty, false);
  await t.rejects(disk.read(Buffer.alloc(4096), 0, 4096, 4 * 1024 * 1024), { code: 'IO_ERROR' }, 'a short inline read past the end is an error');
});
