import t from 'tap';
import { type FrameSink, OutgoingFrames } from '../../../blockdev/replica/outgoing-frames.js';

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
