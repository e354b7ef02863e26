import t from 'tap';
import { LinkAcker, LinkWatchdog, type LinkTimers } from '../../../../consensus/transport/link-liveness.js';
import { makeTransport, waitFor } from './transport-helpers.js';

/** A manual clock: timers fire only when the test advances time. */
function manualTimers(): LinkTimers & { advance(ms: number): void } {
  let nowMs = 0;
  let nextId = 0;
  const pending = new Map<number, { at: number; callback: () => void }>();
  return {
    now: () => nowMs,
    setTimeout: (callback, delayMs) => {
      nextId += 1;
      pending.set(nextId, { at: nowMs + delayMs, callback });
      return nextId as unknown as NodeJS.Timeout;
    },
    clearTimeout: (timer) => {
      pending.delete(timer as unknown as number);
    },
    advance(ms: number) {
      const target = nowMs + ms;
      for (;;) {
        const due = [...pending.entries()].filter(([, entry]) => entry.at <= target).sort((a, b) => a[1].at - b[1].at)[0];
        if (due === undefined) break;
        pending.delete(due[0]);
        nowMs = due[1].at;
        due[1].callback();
      }
      nowMs = target;
    },
  };
}

t.test('the watchdog fires only when a write stays unacknowledged past the limit', async (t) => {
  const timers = manualTimers();
  const dead: number[] = [];
  const watchdog = new LinkWatchdog(1000, timers, (silentMs) => dead.push(silentMs));
  watchdog.noteWrite();
  timers.advance(600);
  watchdog.noteAck();
  timers.advance(300);
  watchdog.noteWrite(); // at 900: a fresh write, its own full second
  timers.advance(200); // the first timer fires at 1000 and re-arms for the newer write
  t.same(dead, [], 'acked in time, then a newer write not yet overdue');
  timers.advance(850);
  t.same(dead, [1000], 'the newer write went a full second without an ack');
  watchdog.noteWrite();
  timers.advance(5000);
  t.same(dead, [1000], 'a closed watchdog stays quiet');
});

t.test('the acker batches acks: one per interval, always after the last frame', async (t) => {
  const timers = manualTimers();
  let acks = 0;
  const acker = new LinkAcker(100, timers, () => (acks += 1));
  for (let i = 0; i < 10; i++) acker.noteFrame();
  t.equal(acks, 0);
  timers.advance(100);
  t.equal(acks, 1, 'ten frames, one ack');
  timers.advance(1000);
  t.equal(acks, 1, 'no frames, no acks');
  acker.noteFrame();
  acker.close();
  timers.advance(200);
  t.equal(acks, 1, 'nothing after close');
});

t.test('a dialer whose peer never acknowledges drops the link and redials; an acking peer keeps one link', async (t) => {
  const silent = makeTransport('silent', { ackIntervalMs: 60_000 });
  const acking = makeTransport('acking', { ackIntervalMs: 20 });
  const dialer = makeTransport('dialer', { linkDeadAfterMs: 300 });
  t.teardown(async () => {
    await dialer.transport.close();
    await silent.transport.close();
    await acking.transport.close();
  });
  dialer.transport.setPeer('silent', await silent.transport.listen());
  dialer.transport.setPeer('acking', await acking.transport.listen());
  const deadline = Date.now() + 1500;
  let sent = 0;
  while (Date.now() < deadline) {
    dialer.transport.send('silent', `s${sent}`);
    dialer.transport.send('acking', `a${sent}`);
    sent += 1;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await waitFor(() => acking.received.length === sent, 3000, 'every message at the acking peer');
  const stats = dialer.transport.stats();
  t.ok((stats.get('silent')?.connectAttempts ?? 0) >= 3, `redialed the silent peer (${stats.get('silent')?.connectAttempts} connects)`);
  t.equal(stats.get('acking')?.connectAttempts, 1, 'one link to the peer that acks');
  t.ok(silent.received.length > 0, 'messages still reach the silent peer between redials');
});
