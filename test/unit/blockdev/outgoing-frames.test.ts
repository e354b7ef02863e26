import t from 'tap';
import { type FrameSink, OutgoingFrames } from '../../../blockdev/outgoing-frames.js';

/** A socket stand-in that records what each flush wrote, and whether it was corked. */
class RecordingSink implements FrameSink {
  readonly writes: Buffer[][] = [];
  #corked: Buffer[] | undefined;

  write(chunk: Buffer): boolean {
    // Copy: a later overwrite of sent bytes must show up as a test failure.
    const copy = Buffer.from(chunk);
    if (this.#corked !== undefined) this.#corked.push(copy);
    else this.writes.push([copy]);
    return true;
  }

  cork(): void {
    this.#corked = [];
  }

  uncork(): void {
    if (this.#corked !== undefined) this.writes.push(this.#corked);
    this.#corked = undefined;
  }
}

function manualSchedule(): { schedule: (flush: () => void) => void; run: () => void; count: () => number } {
  const queued: (() => void)[] = [];
  return {
    schedule: (flush) => queued.push(flush),
    run: () => {
      for (const flush of queued.splice(0)) flush();
    },
    count: () => queued.length,
  };
}

function put(frames: OutgoingFrames, text: string): void {
  const at = frames.reserve(text.length);
  frames.slab.write(text, at, 'latin1');
}

t.test('frames of one turn leave in one write, in order', async (t) => {
  const sink = new RecordingSink();
  const turn = manualSchedule();
  const frames = new OutgoingFrames(sink, { slabBytes: 64, schedule: turn.schedule });
  put(frames, 'one|');
  put(frames, 'two|');
  put(frames, 'three|');
  t.equal(turn.count(), 1, 'one flush scheduled per turn');
  t.ok(frames.pending);
  t.same(sink.writes, [], 'nothing written before the turn ends');
  turn.run();
  t.notOk(frames.pending);
  t.equal(sink.writes.length, 1);
  t.equal(Buffer.concat(sink.writes[0] ?? []).toString('latin1'), 'one|two|three|');
  put(frames, 'four|');
  turn.run();
  t.equal(Buffer.concat(sink.writes[1] ?? []).toString('latin1'), 'four|', 'the next turn sends only its own frames');
});

t.test('frames sent in a batch leave at its end, in one write, with no flush scheduled', async (t) => {
  const sink = new RecordingSink();
  const turn = manualSchedule();
  const frames = new OutgoingFrames(sink, { slabBytes: 64, schedule: turn.schedule });
  frames.beginBatch();
  put(frames, 'a|');
  frames.beginBatch();
  put(frames, 'b|');
  frames.endBatch();
  t.same(sink.writes, [], 'an inner batch does not flush');
  frames.endBatch();
  t.equal(turn.count(), 0, 'nothing was scheduled');
  t.same(sink.writes.map((write) => Buffer.concat(write).toString('latin1')), ['a|b|'], 'the outer end wrote both');
  frames.beginBatch();
  frames.endBatch();
  t.equal(sink.writes.length, 1, 'an empty batch writes nothing');
  put(frames, 'c|');
  t.equal(turn.count(), 1, 'outside a batch the flush is scheduled as before');
  frames.beginBatch();
  put(frames, 'd|');
  frames.endBatch();
  t.same(sink.writes.map((write) => Buffer.concat(write).toString('latin1')), ['a|b|', 'c|d|'], 'a batch also takes frames already waiting');
  turn.run();
  t.equal(sink.writes.length, 2, 'the scheduled flush then finds nothing left');
});

t.test('a full slab is replaced, never overwritten; appended chunks keep their place', async (t) => {
  const sink = new RecordingSink();
  const turn = manualSchedule();
  const frames = new OutgoingFrames(sink, { slabBytes: 8, schedule: turn.schedule });
  put(frames, 'aaaa');
  put(frames, 'bbbb');
  frames.append(Buffer.from('LARGE', 'latin1'));
  put(frames, 'cccc');
  put(frames, 'dddddddddddd'); // bigger than a slab: a slab of its own
  turn.run();
  t.equal(sink.writes.length, 1, 'one corked write');
  t.equal(Buffer.concat(sink.writes[0] ?? []).toString('latin1'), 'aaaabbbbLARGEccccdddddddddddd');
});

t.test('discard drops what was not sent and sends nothing more', async (t) => {
  const sink = new RecordingSink();
  const turn = manualSchedule();
  const frames = new OutgoingFrames(sink, { schedule: turn.schedule });
  put(frames, 'lost');
  frames.discard();
  turn.run();
  put(frames, 'also lost');
  turn.run();
  t.same(sink.writes, []);
});

/** Like a socket: keeps the chunks it was given (no copy) and says how many bytes it still holds. */
class HoldingSink implements FrameSink {
  readonly held: Buffer[] = [];
  writableLength = 0;
  /** Bytes the next writes leave buffered (0: handed to the kernel at once). */
  buffering = false;

  write(chunk: Buffer): boolean {
    this.held.push(chunk);
    if (this.buffering) this.writableLength += chunk.length;
    return !this.buffering;
  }

  cork(): void {}

  uncork(): void {}

  text(): string {
    return Buffer.concat(this.held).toString('latin1');
  }
}

t.test('a slab starts over only once the socket holds nothing', async (t) => {
  const sink = new HoldingSink();
  const turn = manualSchedule();
  const frames = new OutgoingFrames(sink, { slabBytes: 64, schedule: turn.schedule });
  put(frames, 'one|');
  turn.run();
  const firstSlab = frames.slab;
  put(frames, 'two|');
  t.equal(frames.slab, firstSlab, 'same slab');
  turn.run();
  t.equal(sink.text(), 'two|two|', 'sent bytes were reused: the socket had them all (the sink kept views)');

  // Backpressure: what the socket still buffers must never be overwritten.
  sink.held.length = 0;
  sink.buffering = true;
  put(frames, 'AAAA');
  turn.run();
  put(frames, 'BBBB');
  turn.run();
  t.equal(sink.text(), 'AAAABBBB', 'bytes the socket still holds stay intact');
  sink.buffering = false;
  sink.writableLength = 0; // the socket drained
  put(frames, 'CCCC');
  turn.run();
  t.equal(sink.text().slice(0, 8), 'AAAABBBB', 'nothing was overwritten before the socket drained');
  put(frames, 'DDDD');
  t.equal(sink.text().slice(8, 12), 'CCCC');
  t.equal(frames.slab, firstSlab, 'still the one slab');
});

t.test('a sink without writableLength never has its slab reused', async (t) => {
  const held: Buffer[] = [];
  const sink: FrameSink = { write: (chunk) => held.push(chunk) > 0, cork: () => undefined, uncork: () => undefined };
  const turn = manualSchedule();
  const frames = new OutgoingFrames(sink, { slabBytes: 64, schedule: turn.schedule });
  put(frames, 'keep');
  turn.run();
  put(frames, 'next');
  turn.run();
  t.equal(Buffer.concat(held).toString('latin1'), 'keepnext');
});

t.test("hasBacklogOf counts this turn's frames and hands them to the socket once they reach the bound", async (t) => {
  const sink = new HoldingSink();
  const turn = manualSchedule();
  const frames = new OutgoingFrames(sink, { slabBytes: 64, schedule: turn.schedule });
  put(frames, 'one|');
  t.notOk(frames.hasBacklogOf(8), 'under the bound: nothing sent early');
  t.same(sink.held, []);
  frames.append(Buffer.from('large-payload|'));
  t.notOk(frames.hasBacklogOf(8), 'the kernel took it all once handed over: no backlog left');
  t.equal(sink.text(), 'one|large-payload|', 'sent early, in order');
  t.notOk(frames.pending, 'nothing left for the scheduled flush');

  sink.held.length = 0; // the kernel has those bytes: the slab starts over
  sink.buffering = true;
  put(frames, 'two|');
  frames.append(Buffer.from('held-by-the-socket|'));
  t.ok(frames.hasBacklogOf(8), 'the socket kept what it was given');
  t.equal(sink.writableLength, 'two|held-by-the-socket|'.length);
  put(frames, 'x');
  t.ok(frames.hasBacklogOf(8), 'still over while the socket holds bytes');
  t.equal(sink.text(), 'two|held-by-the-socket|x');
  turn.run();
  t.equal(sink.text(), 'two|held-by-the-socket|x', 'the scheduled flush sends nothing twice');
});
