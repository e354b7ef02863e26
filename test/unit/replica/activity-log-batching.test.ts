import pino from 'pino';
import t from 'tap';
import { VolumeActivity } from '../../../blockdev/replica/activity-log.js';
import type { ReplicaBatchOperation, ReplicaDatabase } from '../../../blockdev/replica/replica-database.js';

/**
 * Group commit of activity marks (invariant 4): marks that arrive while an
 * earlier batch is being written share the next sync'd batch, every write
 * still waits for its own region's mark, and a clear enqueued in between is
 * never overtaken by a later mark.
 */

const REGION = 4096;

interface Batch {
  readonly operations: ReplicaBatchOperation[];
  readonly sync: boolean;
  release(): void;
}

/** An in-memory database whose batches complete only when the test releases them. */
class HeldDatabase implements ReplicaDatabase {
  readonly batches: Batch[] = [];
  readonly store = new Map<string, Buffer>();

  get(key: string): Promise<Buffer | undefined> {
    return Promise.resolve(this.store.get(key));
  }

  batch(operations: ReplicaBatchOperation[], options: { sync: boolean }): Promise<void> {
    return new Promise((resolve) => {
      this.batches.push({
        operations,
        sync: options.sync,
        release: () => {
          for (const operation of operations) {
            if (operation.type === 'put') this.store.set(operation.key, operation.value);
            else this.store.delete(operation.key);
          }
          resolve();
        },
      });
    });
  }

  async *iterator(): AsyncIterable<[string, Buffer]> {
    // Starts empty.
  }

  releaseAll(): void {
    for (const batch of this.batches.splice(0)) batch.release();
  }
}

async function settle(): Promise<void> {
  for (let round = 0; round < 10; round += 1) await Promise.resolve();
}

function activeFlag(db: HeldDatabase, region: number): number | undefined {
  return db.store.get(`reg!v!${region.toString(16).padStart(8, '0')}`)?.readUInt8(8);
}

t.test('marks arriving while a batch is written share one later batch; each write waits for its mark', async (t) => {
  const db = new HeldDatabase();
  const activity = await VolumeActivity.load('v', REGION, { db, logger: pino({ level: 'silent' }) });
  let firstDone = false;
  const first = activity.beginWrite(0, 1).then((ticket) => {
    firstDone = true;
    return ticket;
  });
  await settle();
  t.equal(db.batches.length, 1, 'the first mark is being written');
  const later = [1, 2, 3, 4].map((region) => activity.beginWrite(region * REGION, 1));
  await settle();
  t.equal(db.batches.length, 1, 'later marks wait for the running batch instead of queueing four');
  t.notOk(firstDone, 'no write proceeds before its mark is durable');
  db.batches.shift()?.release();
  const firstTicket = await first;
  await settle();
  t.equal(db.batches.length, 1, 'one batch for the four later marks');
  t.equal(db.batches[0]?.operations.length, 4);
  t.equal(db.batches[0]?.sync, true, 'marks are sync writes');
  db.releaseAll();
  const tickets = await Promise.all(later);
  for (const region of [0, 1, 2, 3, 4]) t.equal(activeFlag(db, region), 1, `region ${region} durably active`);
  activity.endWrite(firstTicket);
  for (const ticket of tickets) activity.endWrite(ticket);
});

t.test('a clear enqueued after an open batch is not overtaken by a later mark of the same region', async (t) => {
  const db = new HeldDatabase();
  const activity = await VolumeActivity.load('v', REGION, { db, logger: pino({ level: 'silent' }) });
  // Region 0 active, then idle: two flushes clear it.
  const ticket = activity.beginWrite(0, 1);
  await settle();
  db.releaseAll();
  activity.endWrite(await ticket);
  // Hold the chain with a mark of region 5, so the clear queues behind an open batch.
  const blocker = activity.beginWrite(5 * REGION, 1);
  await settle();
  const pendingBlocker = db.batches.shift();
  const busy = activity.beginWrite(6 * REGION, 1); // opens a batch behind the blocker
  await activity.aroundFlush(async () => undefined);
  await activity.aroundFlush(async () => undefined); // enqueues the clear of region 0 after the open batch
  const again = activity.beginWrite(0, 1); // must not join the batch that precedes the clear
  pendingBlocker?.release();
  for (let round = 0; round < 5; round += 1) {
    await settle();
    db.releaseAll();
  }
  const tickets = await Promise.all([blocker, busy, again]);
  t.equal(activeFlag(db, 0), 1, 'region 0 ends durably active: its new mark came after the clear');
  for (const held of tickets) activity.endWrite(held);
});
