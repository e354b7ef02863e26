/**
 * Every failpoint compiled into Plinth (issue 7), in one list so the docs
 * (docs/testing.md "Failpoints"), the test-only API and the tests refer to
 * the same names. A name is `<area>.<step>`. `subject` is what the call site
 * passes for `:match=S`; `sync` sites run inside synchronous code, where a
 * `stall` freezes the whole process (as SIGSTOP would) instead of one request.
 */

export interface FailpointEntry {
  readonly name: string;
  /** The file and moment of the call site. */
  readonly where: string;
  /** What `:match=` compares with. */
  readonly subject: string;
  /** What a crash there leaves behind, and what `error` means there. */
  readonly meaning: string;
  readonly sync: boolean;
}

export const FAILPOINT_CATALOGUE: readonly FailpointEntry[] = [
  {
    name: 'replica.write.before-ack',
    where: 'blockdev/replica/replica-service.ts: a WRITE/TRIM/WRITE_ZEROES reached the replica\'s pool, the reply is not sent',
    subject: 'volume id',
    meaning: 'crash: the replica holds data the owner never saw acknowledged; error: the replica answers the write with EIO',
    sync: false,
  },
  {
    name: 'replica.flush.before-ack',
    where: 'blockdev/replica/replica-service.ts: a FLUSH made the replica durable, the reply is not sent',
    subject: 'volume id',
    meaning: 'crash: data durable on the replica, the FLUSH not acknowledged; error: the replica answers the FLUSH with EIO',
    sync: false,
  },
  {
    name: 'pool.flush.after-data-sync',
    where: 'blockdev/pool/pool-flusher.ts: every dirty disk was fdatasync\'d, the extent-map batch is not written yet',
    subject: 'none',
    meaning: 'crash: data durable but not mapped; newly allocated extents read as zeroes after restart (invariant 5); error: the flush fails and its batch is queued again',
    sync: false,
  },
  {
    name: 'pool.write',
    where: 'blockdev/pool/volume-store.ts: before a volume store\'s write/writev/trim/writeZeroes touches a disk (inline fast paths step aside while any point is armed)',
    subject: 'volume id',
    meaning: 'error: the disk failed the write (a replica reporting a disk fault); crash: nothing of this write reached the disk',
    sync: false,
  },
  {
    name: 'pool.read',
    where: 'blockdev/pool/volume-store.ts: before a volume store\'s read touches a disk',
    subject: 'volume id',
    meaning: 'error: the disk failed the read; the owner reads another in-sync replica and reports this one',
    sync: false,
  },
  {
    name: 'disk.read',
    where: 'blockdev/pool/disk.ts: before a pread on one pool disk (under every data path)',
    subject: 'the disk extent index of the position',
    meaning: 'error: a failing disk (IO_ERROR); stall: a slow disk',
    sync: false,
  },
  {
    name: 'disk.write',
    where: 'blockdev/pool/disk.ts: before a pwrite/pwritev on one pool disk',
    subject: 'the disk extent index of the position',
    meaning: 'error(ENOSPC): a full disk (NO_SPACE); error: a failing disk; crash: the write never reached the disk',
    sync: false,
  },
  {
    name: 'disk.sync',
    where: 'blockdev/pool/disk.ts: before the fdatasync of one pool disk',
    subject: 'the pool disk index',
    meaning: 'stall: a stalled disk; error: fdatasync failed (the flush fails, the disk stays dirty); power-cut: un-synced writes are lost (power-loss disk layer)',
    sync: false,
  },
  {
    name: 'controller.write.after-fanout',
    where: 'blockdev/volume/replicated-volume.ts: every write target answered and invariant 2 holds, the client is not answered yet',
    subject: 'volume id',
    meaning: 'crash: every replica holds a write no client saw acknowledged; error: the client gets EIO for a write the replicas hold',
    sync: false,
  },
  {
    name: 'controller.fault.before-commit',
    where: 'daemon/volume/proposer-cluster.ts: the owner proposed replica.fault for a failed replica, the commit is not awaited yet',
    subject: 'volume name',
    meaning: 'crash: the writes the replica missed are never acknowledged (invariant 2); error: the report fails and the volume suspends',
    sync: false,
  },
  {
    name: 'rebuild.mid-copy',
    where: 'blockdev/volume/catch-up.ts: before each chunk a catch-up copies',
    subject: 'none (arm it only on the owner)',
    meaning: 'crash: the target holds part of the copy and stays out of the in-sync set; error: this catch-up fails and a later one resumes',
    sync: false,
  },
  {
    name: 'raft.install-snapshot.mid-chunk',
    where: 'consensus/node/raft-node.ts: a follower got an InstallSnapshot chunk after the first one (some are stored)',
    subject: 'sender node id',
    meaning: 'crash: the half-assembled snapshot is lost, the leader sends it again after restart; error: the chunk is dropped (as if lost)',
    sync: true,
  },
  {
    name: 'raft.append.before-persist',
    where: 'consensus/node/raft-node.ts: the Ready loop has log entries to persist, before the synced write',
    subject: 'this node id',
    meaning: 'crash: the entries were never acknowledged by this node; error: the log write fails and the Raft node stops (fatal, like a disk error)',
    sync: false,
  },
  {
    name: 'raft.apply.before',
    where: 'consensus/node/raft-node.ts: committed entries are durable, before they are applied to the state machine',
    subject: 'this node id',
    meaning: 'crash: committed but not applied here; replayed from the log at restart; error: the Raft node stops (fatal)',
    sync: false,
  },
  {
    name: 'nbd.reply.before-send',
    where: 'blockdev/nbd/nbd-connection.ts: a transmission reply is computed, not yet written to the socket',
    subject: 'export name',
    meaning: 'crash: the request ran, the client never hears of it; error: the connection is dropped without the reply',
    sync: true,
  },
];

export const FAILPOINT_NAMES: ReadonlySet<string> = new Set(FAILPOINT_CATALOGUE.map((entry) => entry.name));
