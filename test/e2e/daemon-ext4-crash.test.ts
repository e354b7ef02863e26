/**
 * A real filesystem on a Plinth volume survives kill -9 of the daemon
 * (README "Put a filesystem on it"; ARCHITECTURE invariants 1 and 5: what was
 * flushed is durable, metadata is durable before the FLUSH that covers it).
 *
 * nbdfuse exposes the volume as a file, losetup makes it a block device, ext4
 * goes on top. Files with known checksums are written and `sync`ed (ext4
 * turns that into NBD FLUSHes), the daemon is killed with SIGKILL, the stack
 * is torn down, the daemon restarts on the same data dir, and the filesystem
 * must be consistent (fsck) with every file intact.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { createVolume } from '../setup/e2e-api.js';
import { BlockStack, blockStackUnavailableReason } from '../setup/e2e-block-stack.js';
import { seededBytes, sha256 } from '../setup/e2e-data.js';
import { makeWorkDir, startDaemon } from '../setup/e2e-fixture.js';
import { describeRun, missingToolsReason, run, runOk } from '../setup/e2e-process.js';

const TOOL_TIMEOUT_MS = 60_000;
const KIB = 1024;
const MIB = 1024 * KIB;

/** Files of assorted sizes (1 byte to 12 MiB) so small inline, block-mapped and extent-mapped files all appear. */
const FILE_SIZES_BYTES = [1, 100, 4 * KIB, 4 * KIB + 1, 64 * KIB, 300 * KIB, MIB, 3 * MIB + 17, 12 * MIB];

const skip =
  missingToolsReason(['nbdfuse', 'losetup', 'mkfs.ext4', 'fsck.ext4', 'e2fsck', 'mount', 'umount', 'fusermount3', 'sync']) ??
  blockStackUnavailableReason();

t.test('ext4 on a volume survives kill -9 of the daemon', { skip: skip ?? false }, async (t) => {
  const workDir = await makeWorkDir(t, 'ext4');
  const daemon = await startDaemon(t, workDir, ['d0.img:2GiB']);
  // Registered after the daemon, so tap (newest first) tears the mount stack
  // down before it stops the daemon and removes the work dir.
  const stack = new BlockStack(workDir, 'fs');
  t.teardown(async () => {
    const problems = await stack.detach();
    if (problems.length > 0) t.comment(`teardown problems: ${problems.join('; ')}`);
  });
  await createVolume(daemon.apiUrl, daemon.token, 'fs-vol', '256MiB');

  const expected = new Map<string, string>();
  await t.test('mkfs, mount, write files, sync', async (t) => {
    const device = await stack.attach(daemon.nbdUri('fs-vol'));
    await runOk('mkfs.ext4', ['-q', '-F', device], { timeoutMs: TOOL_TIMEOUT_MS });
    await stack.mount();
    for (const [index, sizeBytes] of FILE_SIZES_BYTES.entries()) {
      const data = Buffer.concat([...seededBytes(`ext4-file-${index}`, sizeBytes)]);
      const name = `file-${index}.bin`;
      await writeFile(join(stack.paths.mountDir, name), data);
      expected.set(name, sha256(data));
    }
    await runOk('sync', [], { timeoutMs: TOOL_TIMEOUT_MS });
    t.equal(expected.size, FILE_SIZES_BYTES.length, 'all files written and synced');
  });

  await t.test('kill -9 the daemon and tear the stack down', async (t) => {
    await daemon.kill();
    t.notOk(daemon.isRunning(), 'daemon is gone');
    const problems = await stack.detach();
    t.same(problems, [], 'mount, loop device and fuse mount all removed');
  });

  await t.test('restart, fsck clean, every file intact', async (t) => {
    await daemon.restart();
    const device = await stack.attach(daemon.nbdUri('fs-vol'));
    // Replay the ext4 journal as mount would: `sync` commits the journal but
    // need not checkpoint it, and `fsck -n` refuses to replay.
    await runOk('e2fsck', ['-E', 'journal_only', '-y', device], { timeoutMs: TOOL_TIMEOUT_MS });
    const fsck = await run('fsck.ext4', ['-n', '-f', device], { timeoutMs: TOOL_TIMEOUT_MS });
    t.equal(fsck.code, 0, `fsck.ext4 -n -f is clean: ${describeRun(fsck)}`);
    await stack.mount();
    for (const [name, digest] of expected) {
      const data = await readFile(join(stack.paths.mountDir, name));
      t.equal(sha256(data), digest, `${name} (${data.length} bytes) matches`);
    }
    // Unmount while the daemon is alive, so ext4 can write its clean state.
    t.same(await stack.detach(), [], 'clean unmount and detach');
  });
});
