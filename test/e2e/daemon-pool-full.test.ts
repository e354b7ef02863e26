/**
 * A thin volume larger than its pool fills the pool: the writer gets ENOSPC
 * (pool NO_SPACE → NBD ENOSPC), and nothing else breaks (ARCHITECTURE
 * invariant 7): the daemon stays healthy, another volume keeps reading and
 * writing the space it already has, and the API still answers.
 */
import t from 'tap';
import { apiRequest, createVolume, healthz } from '../setup/e2e-api.js';
import { makeWorkDir, startDaemon } from '../setup/e2e-fixture.js';
import { nbdsh } from '../setup/e2e-nbd.js';
import { describeRun, missingToolsReason } from '../setup/e2e-process.js';

const MIB = 1024 ** 2;
const POOL_DISK = 'd0.img:64MiB';
const SMALL_VOLUME_BYTES = 8 * MIB;
const WRITER_TIMEOUT_MS = 60_000;

/**
 * Write 1 MiB chunks until the server refuses; print where and with which
 * errno. Bounded by the volume size (256 MiB > the 64 MiB pool).
 */
const FILL_SCRIPT = `
import errno
chunk = b'\\xab' * (1 << 20)
offset = 0
try:
    while offset < h.get_size():
        h.pwrite(chunk, offset)
        offset += len(chunk)
    print('NO-ERROR', offset)
except nbd.Error as e:
    print('ERROR', offset, errno.errorcode.get(e.errno, e.errno), e.string)
`;

/** Fill the small volume with a byte pattern, flush, read it back. */
function patternScript(fill: number): string {
  return `
size = h.get_size()
h.pwrite(bytes([${fill}]) * size, 0)
h.flush()
data = h.pread(size, 0)
assert data == bytes([${fill}]) * size, 'pattern ${fill} did not read back'
print('PATTERN-OK', ${fill})
`;
}

const skip = missingToolsReason(['nbdsh']);

t.test('a volume that fills its pool gets ENOSPC; the rest keeps working', { skip: skip ?? false }, async (t) => {
  const workDir = await makeWorkDir(t, 'full');
  const daemon = await startDaemon(t, workDir, [POOL_DISK]);
  await createVolume(daemon.apiUrl, daemon.token, 'small', SMALL_VOLUME_BYTES);
  await createVolume(daemon.apiUrl, daemon.token, 'big', '256MiB');

  const before = await nbdsh(daemon.nbdUri('small'), patternScript(0x11));
  t.equal(before.code, 0, `the small volume takes its space first: ${describeRun(before)}`);

  await t.test('the writer of the big volume gets ENOSPC', async (t) => {
    const result = await nbdsh(daemon.nbdUri('big'), FILL_SCRIPT, WRITER_TIMEOUT_MS);
    t.equal(result.code, 0, describeRun(result));
    const match = /^ERROR (\d+) (\S+) (.*)$/m.exec(result.stdout);
    t.ok(match, `the write was refused: ${result.stdout}`);
    t.equal(match?.[2], 'ENOSPC', 'with ENOSPC');
    t.match(match?.[3] ?? '', /No space left on device/, 'which libnbd renders as "No space left on device"');
    const failedAtBytes = Number(match?.[1] ?? Number.NaN);
    t.ok(failedAtBytes > 0 && failedAtBytes < 64 * MIB, `failed inside the pool's capacity (at ${failedAtBytes / MIB} MiB)`);
  });

  await t.test('the daemon stays up and the API answers', async (t) => {
    t.equal(await healthz(daemon.apiUrl), 200, '/healthz 200');
    const list = await apiRequest(daemon.apiUrl, { method: 'GET', path: '/v1/volumes', token: daemon.token });
    t.equal(list.status, 200, list.text);
    t.ok(daemon.isRunning(), 'process still running');
  });

  await t.test('the other volume still reads and writes', async (t) => {
    const result = await nbdsh(daemon.nbdUri('small'), `
assert h.pread(${SMALL_VOLUME_BYTES}, 0) == bytes([0x11]) * ${SMALL_VOLUME_BYTES}, 'old pattern lost'
${patternScript(0x22)}`);
    t.equal(result.code, 0, describeRun(result));
    t.match(result.stdout, /PATTERN-OK 34/, 'old data intact, new pattern written, flushed and read back');
  });

  await t.test('the big volume reads back what it did get', async (t) => {
    const result = await nbdsh(daemon.nbdUri('big'), `
assert h.pread(1 << 20, 0) == b'\\xab' * (1 << 20), 'first MiB lost'
print('READ-OK')`);
    t.equal(result.code, 0, describeRun(result));
    t.match(result.stdout, /READ-OK/);
  });
});
