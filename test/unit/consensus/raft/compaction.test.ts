/** Raft §7: log compaction and InstallSnapshot in chunks. */
import t from 'tap';
import { emptyState } from '../../../../consensus/raft/index.js';
import { Harness } from './raft-harness.js';

t.test('§7 compaction drops entries; a lagging follower gets the snapshot in chunks', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { maxSnapshotChunkBytes: 16 });
  h.campaign('a');
  h.isolate('c');
  for (let i = 0; i < 20; i++) h.core('a').propose(Buffer.from(`v${i}`));
  h.deliver();
  const applied = h.core('a').status().appliedIndex;
  const image = Buffer.from(JSON.stringify(h.appliedData('a')));
  const snapshot = h.core('a').compact(applied, image);
  h.node('a').storage.saveCompaction(snapshot);
  t.equal(h.core('a').status().firstIndex, applied + 1, 'entries up to the snapshot are gone');
  t.same(snapshot.metadata.confState.voters, ['a', 'b', 'c']);
  t.throws(() => h.core('a').compact(applied, image), { code: 'RAFT_SNAPSHOT_INVALID' });
  h.heal();
  const chunkSizes: number[] = [];
  for (let i = 0; i < 10; i++) {
    h.tick('a', 2);
    h.deliver((m) => {
      if (m.type === 'snapshot-chunk') chunkSizes.push(m.data.length);
      return true;
    });
  }
  t.ok(chunkSizes.length >= Math.ceil(image.length / 16), `${chunkSizes.length} chunks for ${image.length} bytes`);
  t.ok(chunkSizes.every((n) => n <= 16), 'chunks are bounded');
  const c = h.node('c');
  t.equal(c.storage.state().snapshot?.data.toString(), image.toString(), 'c persisted the assembled snapshot');
  t.equal(c.core.status().commitIndex, h.core('a').status().commitIndex);
  h.core('a').propose(Buffer.from('after'));
  h.deliver();
  t.same(h.appliedData('c'), ['after'], 'c continues with entries after the snapshot');
});

t.test('§7 lost chunks are resent; a restarted node recovers from its snapshot', async (t) => {
  const h = new Harness(['a', 'b'], { maxSnapshotChunkBytes: 8 });
  h.campaign('a');
  for (let i = 0; i < 10; i++) h.core('a').propose(Buffer.from(`v${i}`));
  h.deliver();
  const snap = h.core('a').compact(h.core('a').status().appliedIndex, Buffer.from('state-image-0123456789'));
  h.node('a').storage.saveCompaction(snap);
  const joiner = h.addNode('c', emptyState());
  h.core('a').proposeConfChange({ type: 'add-learner', nodeId: 'c' });
  let dropped = 0;
  for (let i = 0; i < 20; i++) {
    h.tick('a', 2);
    // Drop every third chunk.
    h.deliver((m) => !(m.type === 'snapshot-chunk' && ++dropped % 3 === 0));
  }
  t.equal(joiner.storage.state().snapshot?.data.toString(), 'state-image-0123456789');
  t.equal(joiner.core.status().lastIndex, h.core('a').status().lastIndex);
  h.restart('c');
  t.equal(h.core('c').status().firstIndex, snap.metadata.index + 1, 'restart starts from the snapshot');
  t.same(h.core('c').status().confState.learners, ['c']);
});

t.test('a follower refuses a snapshot larger than maxSnapshotBytes', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { maxSnapshotBytes: 10 });
  h.campaign('a');
  h.isolate('c');
  for (let i = 0; i < 5; i++) h.core('a').propose(Buffer.from(`v${i}`));
  h.deliver();
  h.node('a').storage.saveCompaction(h.core('a').compact(h.core('a').status().appliedIndex, Buffer.alloc(100)));
  h.heal();
  h.tick('a', 2);
  h.deliver();
  t.equal(h.node('c').storage.state().snapshot, null);
  t.equal(h.core('c').status().lastIndex, 2);
});
