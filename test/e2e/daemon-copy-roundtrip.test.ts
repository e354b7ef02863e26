/**
 * Bulk data through the daemon with two independent NBD clients: 256 MiB of
 * seeded random bytes into a volume and back out, byte-identical (sha256),
 * with qemu-img convert and with nbdcopy. Each volume gets its own seed, and
 * each is also read back by the other tool, so a mix-up between volumes or a
 * client-specific quirk cannot pass.
 */
import { join } from 'node:path';
import t from 'tap';
import { createVolume } from '../setup/e2e-api.js';
import { sha256File, writeSeededFile } from '../setup/e2e-data.js';
import { makeWorkDir, startDaemon } from '../setup/e2e-fixture.js';
import { missingToolsReason, runOk } from '../setup/e2e-process.js';

const MIB = 1024 ** 2;
const VOLUME_BYTES = 256 * MIB;
const COPY_TIMEOUT_MS = 60_000;

const skip = missingToolsReason(['qemu-img', 'nbdcopy']);

t.test('256 MiB round trips through qemu-img and nbdcopy', { skip: skip ?? false }, async (t) => {
  const workDir = await makeWorkDir(t, 'copy');
  const daemon = await startDaemon(t, workDir, ['d0.img:2GiB']);
  await createVolume(daemon.apiUrl, daemon.token, 'via-qemu', VOLUME_BYTES);
  await createVolume(daemon.apiUrl, daemon.token, 'via-nbdcopy', VOLUME_BYTES);

  const qemuSource = join(workDir, 'qemu-source.img');
  const nbdcopySource = join(workDir, 'nbdcopy-source.img');
  await writeSeededFile(qemuSource, VOLUME_BYTES, 'copy-roundtrip-qemu');
  await writeSeededFile(nbdcopySource, VOLUME_BYTES, 'copy-roundtrip-nbdcopy');
  const qemuSum = await sha256File(qemuSource);
  const nbdcopySum = await sha256File(nbdcopySource);
  t.not(qemuSum, nbdcopySum, 'the two sources differ');

  await runOk('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', qemuSource, daemon.nbdUri('via-qemu')], {
    timeoutMs: COPY_TIMEOUT_MS,
  });
  await runOk('nbdcopy', ['--flush', nbdcopySource, daemon.nbdUri('via-nbdcopy')], { timeoutMs: COPY_TIMEOUT_MS });

  await t.test('qemu-img reads back what qemu-img wrote', async (t) => {
    const out = join(workDir, 'qemu-out.img');
    await runOk('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', daemon.nbdUri('via-qemu'), out], { timeoutMs: COPY_TIMEOUT_MS });
    t.equal(await sha256File(out), qemuSum, 'sha256 matches the source');
  });

  await t.test('nbdcopy reads back what nbdcopy wrote', async (t) => {
    const out = join(workDir, 'nbdcopy-out.img');
    await runOk('nbdcopy', [daemon.nbdUri('via-nbdcopy'), out], { timeoutMs: COPY_TIMEOUT_MS });
    t.equal(await sha256File(out), nbdcopySum, 'sha256 matches the source');
  });

  await t.test('each tool reads the other tool\'s volume identically', async (t) => {
    const crossQemu = join(workDir, 'cross-qemu.img');
    const crossNbdcopy = join(workDir, 'cross-nbdcopy.img');
    await runOk('nbdcopy', [daemon.nbdUri('via-qemu'), crossQemu], { timeoutMs: COPY_TIMEOUT_MS });
    await runOk('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', daemon.nbdUri('via-nbdcopy'), crossNbdcopy], {
      timeoutMs: COPY_TIMEOUT_MS,
    });
    t.equal(await sha256File(crossQemu), qemuSum, 'nbdcopy reads the qemu-img volume');
    t.equal(await sha256File(crossNbdcopy), nbdcopySum, 'qemu-img reads the nbdcopy volume');
  });
});
