import t from 'tap';
import { PlinthError } from '../../../common/plinth-error.js';
import { IoGate } from '../../../blockdev/volume/io-gate.js';

t.test('in-flight is bounded; waiters are bounded, then BUSY', async (t) => {
  const gate = new IoGate({ maxInFlight: 1, maxWaiting: 1 });
  await gate.enter();
  let admitted = false;
  const second = gate.enter().then(() => {
    admitted = true;
  });
  await t.rejects(gate.enter(), { code: 'BUSY' });
  await Promise.resolve();
  t.notOk(admitted, 'second waits for a slot');
  gate.leave();
  await second;
  t.ok(admitted);
  t.equal(gate.inFlight, 1);
  gate.leave();
  t.throws(() => gate.leave(), { code: 'INTERNAL' });
});

t.test('pause drains in-flight I/O and holds new I/O until resume', async (t) => {
  const gate = new IoGate({ maxInFlight: 4, maxWaiting: 4 });
  await gate.enter();
  let paused = false;
  const pausing = gate.pause().then(() => {
    paused = true;
  });
  let admitted = false;
  const later = gate.enter().then(() => {
    admitted = true;
  });
  await Promise.resolve();
  t.notOk(paused, 'pause waits for the in-flight request');
  gate.leave();
  await pausing;
  t.ok(paused);
  t.equal(gate.state, 'paused');
  t.notOk(admitted, 'new I/O waits while paused');
  gate.resume();
  await later;
  t.ok(admitted);
  gate.leave();
});

t.test('pauses nest: I/O reopens at the last resume (a group snapshot and a single one overlapping)', async (t) => {
  const gate = new IoGate({ maxInFlight: 4, maxWaiting: 4 });
  await gate.pause(); // a group snapshot's hold
  await gate.pause(); // a snapshot of one of its volumes meanwhile
  let admitted = false;
  const write = gate.enter().then(() => {
    admitted = true;
  });
  gate.resume();
  await Promise.resolve();
  t.equal(gate.state, 'paused', 'the first resume leaves the other pause in force');
  t.notOk(admitted, 'a write still waits');
  gate.resume();
  await write;
  t.ok(admitted, 'the last resume lets it in');
  t.equal(gate.state, 'open');
  gate.resume();
  t.equal(gate.state, 'open', 'a resume too many changes nothing');
  gate.leave();
});

t.test('stop refuses waiters and new I/O; the first terminal error wins', async (t) => {
  const gate = new IoGate({ maxInFlight: 1, maxWaiting: 2 });
  await gate.enter();
  const waiting = gate.enter();
  gate.stop('fenced', new PlinthError('FENCED', 'newer owner'));
  await t.rejects(waiting, { code: 'FENCED' });
  t.throws(() => gate.assertNotStopped(), { code: 'FENCED' });
  gate.stop('suspended', new PlinthError('IO_ERROR', 'no quorum'));
  gate.close(new PlinthError('SHUTTING_DOWN', 'closing'));
  t.equal(gate.state, 'fenced');
  await t.rejects(gate.enter(), { code: 'FENCED' });
  gate.leave();
  await gate.drain();
});

t.test('close refuses new I/O but lets in-flight I/O finish', async (t) => {
  const gate = new IoGate({ maxInFlight: 2, maxWaiting: 2 });
  await gate.enter();
  gate.close(new PlinthError('SHUTTING_DOWN', 'closing'));
  t.doesNotThrow(() => gate.assertNotStopped(), 'in-flight I/O may still complete');
  await t.rejects(gate.enter(), { code: 'SHUTTING_DOWN' });
  const drained = gate.drain();
  gate.leave();
  await drained;
  t.equal(gate.state, 'closed');
});
