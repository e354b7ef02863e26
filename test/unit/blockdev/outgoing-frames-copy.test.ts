import t from 'tap';
import { type FrameSink, OutgoingFrames } from '../../../blockdev/outgoing-frames.js';

/**
 * copy() and append(chunk, afterWrite) (outgoing-frames.ts), as the NBD
 * connection uses them for its replies: copied bytes are independent of the
 * caller's buffer, an appended chunk keeps its place in the order, and its
 * callback runs only once the socket reported the write as done, never
 * after a failed write or a discard.
 */

type WriteCallback = (error?: Error | null) => void;

class CallbackSink implements FrameSink {
  readonly written: Buffer[] = [];
  readonly callbacks: (WriteCallback | undefined)[] = [];
  writableLength = 0;

  write(chunk: Buffer, callback?: WriteCallback): boolean {
    this.written.push(Buffer.from(chunk));
    this.callbacks.push(callback);
    return true;
  }

  cork(): void {}

  uncork(): void {}
}

function manualTurn(): { schedule: (flush: () => void) => void; run: () => void } {
  const queued: (() => void)[] = [];
  return {
    schedule: (flush) => queued.push(flush),
    run: () => {
      for (const flush of queued.splice(0)) flush();
    },
  };
}

t.test('copy() takes the bytes at once: the caller may reuse its buffer', async (t) => {
  const sink = new CallbackSink();
  const turn = manualTurn();
  const frames = new OutgoingFrames(sink, { slabBytes: 64, schedule: turn.schedule });
  const reply = Buffer.from('first|');
  frames.copy(reply);
  reply.fill(0x2d); // the caller recycles its buffer before the flush
  frames.copy(Buffer.from('second|'));
  turn.run();
  t.equal(Buffer.concat(sink.written).toString('latin1'), 'first|second|');
  t.equal(sink.written.length, 1, 'one write for the turn');
});

t.test('an appended chunk keeps its place and reports its write once it succeeded', async (t) => {
  const sink = new CallbackSink();
  const turn = manualTurn();
  const frames = new OutgoingFrames(sink, { slabBytes: 64, schedule: turn.schedule });
  let recycled = 0;
  frames.copy(Buffer.from('head|'));
  frames.append(Buffer.from('LARGE|'), () => {
    recycled += 1;
  });
  frames.copy(Buffer.from('tail|'));
  turn.run();
  t.same(
    sink.written.map((chunk) => chunk.toString('latin1')),
    ['head|', 'LARGE|', 'tail|'],
    'in order, the large chunk as is',
  );
  t.equal(recycled, 0, 'not before the socket wrote it');
  const callback = sink.callbacks[1];
  if (callback === undefined) throw new Error('the appended chunk was written without a callback');
  t.equal(sink.callbacks[0], undefined, 'copied bytes need no callback');
  callback(null);
  t.equal(recycled, 1, 'after the write completed');
});

t.test('a failed write or a discard never reports the chunk as written', async (t) => {
  const sink = new CallbackSink();
  const turn = manualTurn();
  const frames = new OutgoingFrames(sink, { slabBytes: 64, schedule: turn.schedule });
  let recycled = 0;
  frames.append(Buffer.from('one'), () => {
    recycled += 1;
  });
  turn.run();
  sink.callbacks[0]?.(new Error('EPIPE'));
  t.equal(recycled, 0, 'a failed write may leave the bytes in use');

  frames.append(Buffer.from('two'), () => {
    recycled += 1;
  });
  frames.discard();
  turn.run();
  t.equal(sink.written.length, 1, 'nothing is written after a discard');
  t.equal(recycled, 0);
});

t.test('afterQueued: at once when everything was copied, else after the last appended chunk was written', async (t) => {
  const sink = new CallbackSink();
  const turn = manualTurn();
  const frames = new OutgoingFrames(sink, { slabBytes: 64, schedule: turn.schedule });
  const events: string[] = [];
  frames.copy(Buffer.from('small|'));
  frames.afterQueued(() => events.push('copied only'));
  t.same(events, ['copied only'], 'nothing appended: the caller may reuse its buffer now');

  frames.append(Buffer.from('big-1|'), () => events.push('big-1 written'));
  frames.copy(Buffer.from('header|'));
  frames.append(Buffer.from('big-2|'));
  frames.afterQueued(() => events.push('reply A may be recycled'));
  frames.afterQueued(() => events.push('reply B may be recycled'));
  turn.run();
  t.same(events, ['copied only'], 'nothing before the socket reports the writes');
  sink.callbacks.forEach((callback) => callback?.(null));
  t.same(events, ['copied only', 'big-1 written', 'reply A may be recycled', 'reply B may be recycled'], 'after the last appended chunk, in order');

  frames.copy(Buffer.from('next turn|'));
  frames.afterQueued(() => events.push('next turn'));
  t.equal(events.at(-1), 'next turn', 'a flushed turn leaves no chunk to wait for');

  frames.append(Buffer.from('lost|'));
  frames.afterQueued(() => events.push('never'));
  turn.run();
  const lastCallback = sink.callbacks.at(-1);
  lastCallback?.(new Error('EPIPE'));
  t.notOk(events.includes('never'), 'not after a failed write: the bytes may still be in use');
});
