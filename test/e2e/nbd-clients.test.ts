import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { startNbdServer } from '../../blockdev/nbd/nbd-server.js';
import { MemoryBlockDevice } from '../helpers/memory-block-device.js';
import { describeRun, missingToolsReason, run, runOk } from '../setup/e2e-process.js';
import { StaticExportProvider } from '../unit/nbd/helpers/static-export-provider.js';

/**
 * The standalone NBD server (no daemon) over memory devices, driven by the
 * real clients: libnbd's nbdinfo, nbdsh and nbdcopy, and qemu-io. Each test
 * starts its own server on an ephemeral loopback port.
 */

const MIB = 1024 * 1024;
const SIZE = 64 * MIB;
const TOOL_TIMEOUT_MS = 30_000;

interface Served {
  readonly base: string;
  readonly provider: StaticExportProvider;
  readonly devices: Record<string, MemoryBlockDevice>;
}

async function serve(t: Test): Promise<Served> {
  const devices = {
    vol1: new MemoryBlockDevice({ sizeBytes: SIZE }),
    vol2: new MemoryBlockDevice({ sizeBytes: SIZE }),
    aligned: new MemoryBlockDevice({ sizeBytes: SIZE, blockSize: { minimumBytes: 512, preferredBytes: 4096 } }),
    'vol1@snap': new MemoryBlockDevice({ sizeBytes: 8 * MIB, capabilities: { readOnly: true } }),
  };
  const provider = new StaticExportProvider(
    Object.entries(devices).map(([name, device]) => ({ name, device, description: `memory export ${name}` })),
  );
  const server = await startNbdServer(
    { host: '127.0.0.1', port: 0 },
    { exports: provider, logger: pino({ level: process.env['NBD_TEST_LOG'] ?? 'silent' }) },
  );
  t.teardown(() => server.close(AbortSignal.timeout(10_000)));
  return { base: `nbd://127.0.0.1:${server.address().port}`, provider, devices };
}

type Json = Record<string, unknown>;

function exportsOf(stdout: string): Json[] {
  const parsed = JSON.parse(stdout) as { exports?: Json[] };
  return parsed.exports ?? [];
}

const nbdinfoSkip = missingToolsReason(['nbdinfo']);

t.test('nbdinfo --json shows size, block sizes and capabilities', { skip: nbdinfoSkip ?? false }, async (t) => {
  const { base, provider } = await serve(t);
  const result = await runOk('nbdinfo', ['--json', `${base}/vol1`], { timeoutMs: TOOL_TIMEOUT_MS });
  const parsed = JSON.parse(result.stdout) as Json;
  t.equal(parsed['protocol'], 'newstyle-fixed');
  t.equal(parsed['structured'], true, 'structured replies negotiated');
  const [info] = exportsOf(result.stdout);
  t.match(info, {
    'export-name': 'vol1',
    'export-size': SIZE,
    is_read_only: false,
    can_flush: true,
    can_fua: true,
    can_trim: true,
    can_zero: true,
    can_fast_zero: true,
    can_multi_conn: true,
    block_size_minimum: 1,
    block_size_preferred: 4096,
    block_size_maximum: 32 * MIB,
  });
  t.match(info?.['contexts'], ['base:allocation']);
  const snap = exportsOf((await runOk('nbdinfo', ['--json', `${base}/vol1@snap`], { timeoutMs: TOOL_TIMEOUT_MS })).stdout)[0];
  t.match(snap, { 'export-name': 'vol1@snap', is_read_only: true, can_trim: false, can_zero: false });
  t.equal(provider.outstandingHandles(), 0, 'nbdinfo left nothing attached');
});

t.test('nbdinfo --list lists every export with its description', { skip: nbdinfoSkip ?? false }, async (t) => {
  const { base } = await serve(t);
  const result = await runOk('nbdinfo', ['--list', '--json', base], { timeoutMs: TOOL_TIMEOUT_MS });
  const listed = exportsOf(result.stdout);
  t.same(listed.map((entry) => entry['export-name']).sort(), ['aligned', 'vol1', 'vol1@snap', 'vol2']);
  t.match(listed.find((entry) => entry['export-name'] === 'vol2'), { description: 'memory export vol2', 'export-size': SIZE });
});

t.test('an unknown export is refused', { skip: nbdinfoSkip ?? false }, async (t) => {
  const { base } = await serve(t);
  for (const name of ['missing', '']) {
    const result = await run('nbdinfo', [`${base}/${name}`], { timeoutMs: TOOL_TIMEOUT_MS });
    t.not(result.code, 0, describeRun(result));
    t.match(result.stderr, /no volume named|No such file|unknown|not available/i, `"${name}" refused with a reason`);
  }
});

const nbdshSkip = missingToolsReason(['nbdsh', 'nbdinfo']);

/** Run `script` in nbdsh with `h` connected to `uri`, base:allocation requested, client-side checks off. */
function nbdshScript(uri: string, script: string): Promise<ReturnType<typeof run> extends Promise<infer R> ? R : never> {
  const prelude = [
    'import errno',
    'h.set_strict_mode(0)',
    'h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)',
    `h.connect_uri(${JSON.stringify(uri)})`,
    'def expect_errno(name, fn, want):',
    '    try:',
    '        fn()',
    '    except nbd.Error as e:',
    '        assert e.errnum == want, f"{name}: errno {e.errnum}, want {want}: {e.string}"',
    '        print("ERRNO-OK", name)',
    '        return',
    '    raise AssertionError(f"{name}: succeeded, want errno {want}")',
  ].join('\n');
  return run('nbdsh', ['-c', `${prelude}\n${script}`], { timeoutMs: TOOL_TIMEOUT_MS });
}

t.test('nbdsh: read, write, trim, zero, flush, block status and errors', { skip: nbdshSkip ?? false }, async (t) => {
  const { base, devices } = await serve(t);
  const script = `
size = h.get_size()
assert size == ${SIZE}
assert h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
data = bytes(range(256)) * 1024
h.pwrite(data, 1048576, nbd.CMD_FLAG_FUA)
assert h.pread(len(data), 1048576) == data
h.flush()
h.trim(65536, 1048576)
h.zero(65536, 1048576 + 65536, nbd.CMD_FLAG_NO_HOLE)
assert h.pread(65536, 1048576) == bytes(65536)
assert h.pread(65536, 1048576 + 65536) == bytes(65536)
h.zero(65536, 4194304, nbd.CMD_FLAG_FAST_ZERO)
extents = []
def record(metacontext, offset, entries, err):
    extents.extend(entries)
h.block_status(4 * 1048576, 0, record)
print("EXTENTS", extents)
# [1 MiB, +64k) was trimmed: a hole; the NO_HOLE zeroes and the rest of the write are data.
assert extents[:4] == [1048576 + 65536, 3, 196608, 0], extents
expect_errno("read past the end", lambda: h.pread(512, size), errno.EINVAL)
expect_errno("write past the end", lambda: h.pwrite(bytes(512), size), errno.ENOSPC)
expect_errno("fast zero that must write", lambda: h.zero(65536, 0, nbd.CMD_FLAG_FAST_ZERO | nbd.CMD_FLAG_NO_HOLE), errno.ENOTSUP)
print("DONE")
`;
  const result = await nbdshScript(`${base}/vol1`, script);
  t.equal(result.code, 0, describeRun(result));
  t.match(result.stdout, /DONE/);
  t.equal(result.stdout.match(/ERRNO-OK/g)?.length, 3, 'EINVAL, ENOSPC and ENOTSUP seen');
  t.equal(devices.vol1?.stats.fuaWrites, 1);
  t.ok((devices.vol1?.stats.flushes ?? 0) >= 1);
});

t.test('nbdsh: read-only exports refuse writes with EPERM; alignment is enforced', { skip: nbdshSkip ?? false }, async (t) => {
  const { base } = await serve(t);
  const readOnly = await nbdshScript(
    `${base}/vol1@snap`,
    `assert h.is_read_only()\nexpect_errno("write", lambda: h.pwrite(bytes(512), 0), errno.EPERM)\nexpect_errno("trim", lambda: h.trim(512, 0), errno.EPERM)`,
  );
  t.equal(readOnly.code, 0, describeRun(readOnly));
  t.equal(readOnly.stdout.match(/ERRNO-OK/g)?.length, 2);
  const aligned = await nbdshScript(
    `${base}/aligned`,
    `assert h.get_block_size(nbd.SIZE_MINIMUM) == 512\nexpect_errno("unaligned read", lambda: h.pread(100, 0), errno.EINVAL)\nassert h.pread(512, 512) == bytes(512)`,
  );
  t.equal(aligned.code, 0, describeRun(aligned));
});

t.test('nbdinfo --map shows data and holes', { skip: nbdshSkip ?? false }, async (t) => {
  const { base } = await serve(t);
  const write = await nbdshScript(`${base}/vol2`, 'h.pwrite(b"x" * 131072, 2 * 1048576)');
  t.equal(write.code, 0, describeRun(write));
  const map = await runOk('nbdinfo', ['--map', `${base}/vol2`], { timeoutMs: TOOL_TIMEOUT_MS });
  const rows = map.stdout
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/));
  t.same(
    rows.map((row) => [Number(row[0]), Number(row[1]), row[3]]),
    [
      [0, 2 * MIB, 'hole,zero'],
      [2 * MIB, 131072, 'data'],
      [2 * MIB + 131072, SIZE - 2 * MIB - 131072, 'hole,zero'],
    ],
    map.stdout,
  );
});

const qemuSkip = missingToolsReason(['qemu-io']);

t.test('qemu-io writes and verifies patterns', { skip: qemuSkip ?? false }, async (t) => {
  const { base, provider } = await serve(t);
  const commands = [
    'write -P 0x5a 0 1M',
    'write -f -P 0xa5 4M 512k',
    'read -P 0x5a 0 1M',
    'read -P 0xa5 4M 512k',
    'write -z 256k 256k',
    'read -P 0 256k 256k',
    'discard 4M 512k',
    'flush',
  ];
  const args = ['-f', 'raw', ...commands.flatMap((command) => ['-c', command]), `${base}/vol1`];
  const result = await runOk('qemu-io', args, { timeoutMs: TOOL_TIMEOUT_MS });
  t.notMatch(result.stdout + result.stderr, /Pattern verification failed|error/i, describeRun(result));
  t.equal(result.stdout.match(/^read /gm)?.length, 3, 'three reads verified');
  t.equal(provider.outstandingHandles(), 0);
});

const nbdcopySkip = missingToolsReason(['nbdcopy']);

t.test('nbdcopy round trip keeps every byte', { skip: nbdcopySkip ?? false }, async (t) => {
  const { base } = await serve(t);
  const dir = await mkdtemp(join(tmpdir(), 'plinth-nbdcopy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const source = join(dir, 'source.bin');
  const back = join(dir, 'back.bin');
  // Random data with a zero gap in the middle, so sparse handling is exercised too.
  await writeFile(source, Buffer.concat([randomBytes(6 * MIB), Buffer.alloc(2 * MIB), randomBytes(4 * MIB)]));
  await runOk('nbdcopy', ['--flush', source, `${base}/vol2`], { timeoutMs: TOOL_TIMEOUT_MS });
  await runOk('nbdcopy', [`${base}/vol2`, back], { timeoutMs: TOOL_TIMEOUT_MS });
  const sha = async (path: string, lengthBytes: number): Promise<string> =>
    createHash('sha256').update((await readFile(path)).subarray(0, lengthBytes)).digest('hex');
  t.equal(await sha(back, 12 * MIB), await sha(source, 12 * MIB), 'sha256 of the copied region matches');
  t.same((await readFile(back)).subarray(12 * MIB), Buffer.alloc(SIZE - 12 * MIB), 'the rest reads as zeroes');
});
