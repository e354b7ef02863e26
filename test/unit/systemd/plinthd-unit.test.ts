import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';

const run = promisify(execFile);
// dist/test/unit/systemd/ → the repository root.
const UNIT_URL = new URL('../../../../systemd/plinthd.service', import.meta.url);
const available = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;
const skip = available ? false : 'systemd-analyze is not installed here (Debian package systemd); the unit is not verified';
/** `systemd-analyze security` rates 0 (locked down) to 10 (exposed); the unit scores 1.7 today. */
const MAX_EXPOSURE = 2.5;

interface VerifyResult {
  readonly code: number;
  /** Lines about the unit under test, not about units it merely references. */
  readonly findings: string[];
}

/**
 * `systemd-analyze verify` on a copy in a fresh directory, so its findings
 * name a unique path. It exits 0 on unknown keys and bad values, printing a
 * warning instead, so any line about the copy is a failure here. The
 * ExecStart binary must exist (/usr/bin/env does; plinthd itself is found on
 * PATH at start, systemd/README.md "Install").
 */
async function verify(unitText: string): Promise<VerifyResult> {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-unit-'));
  try {
    const path = join(dir, 'plinthd.service');
    await writeFile(path, unitText);
    const result = await run('systemd-analyze', ['verify', path], { timeout: 20_000 }).then(
      ({ stdout, stderr }) => ({ code: 0, output: `${stdout}${stderr}` }),
      (err: { code?: unknown; stdout?: unknown; stderr?: unknown }) => ({ code: typeof err.code === 'number' ? err.code : 1, output: `${String(err.stdout)}${String(err.stderr)}` }),
    );
    return { code: result.code, findings: result.output.split('\n').filter((line) => line.includes(dir) || line.includes('plinthd.service')) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

t.test('systemd-analyze verify passes on systemd/plinthd.service with no warning', { skip }, async (t) => {
  const result = await verify(await readFile(UNIT_URL, 'utf8'));
  t.same(result.findings, [], 'no warning about the unit');
  t.equal(result.code, 0);
});

t.test('the check bites: a misspelt key or a bad value is reported', { skip }, async (t) => {
  const unit = await readFile(UNIT_URL, 'utf8');
  const typo = await verify(unit.replace('ProtectSystem=strict', 'ProtectSysem=strict'));
  t.match(typo.findings.join('\n'), /Unknown key 'ProtectSysem'/);
  const badValue = await verify(unit.replace('LimitNOFILE=65536', 'LimitNOFILE=lots'));
  t.ok(badValue.findings.length > 0, `a bad value is reported: ${badValue.findings.join(' | ')}`);
});

t.test('the hardening scores as locked down and still lets plinthd reach its disks and ports', { skip }, async (t) => {
  const unit = await readFile(UNIT_URL, 'utf8');
  const { stdout } = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', UNIT_URL.pathname], { timeout: 20_000 });
  const exposure = /Overall exposure level for plinthd\.service: ([0-9.]+)/.exec(stdout);
  t.ok(exposure, 'systemd-analyze security rated the unit');
  t.ok(Number(exposure?.[1]) <= MAX_EXPOSURE, `exposure ${exposure?.[1]} <= ${MAX_EXPOSURE}`);
  // What the daemon needs (systemd/README.md "Hardening"): a writable state dir, raw block devices, TCP.
  t.match(unit, /^StateDirectory=plinth$/m);
  t.match(unit, /^ReadWritePaths=\/var\/lib\/plinth$/m);
  t.notMatch(unit, /^PrivateDevices=yes/m, 'PrivateDevices would hide /dev/sdX and /dev/nvme*');
  t.match(unit, /^DeviceAllow=block-blkext rw$/m, 'NVMe namespaces (block-blkext) stay reachable');
  t.match(unit, /^DeviceAllow=block-sd rw$/m);
  t.match(unit, /^SupplementaryGroups=disk$/m, 'raw disks are group "disk"');
  t.match(unit, /^RestrictAddressFamilies=.*AF_INET .*AF_INET6/m, 'TCP listeners for API, peer, NBD and iSCSI');
  t.notMatch(unit, /^MemoryDenyWriteExecute=yes/m, "V8's JIT needs W+X pages");
  t.match(unit, /^Restart=on-failure$/m);
  t.match(unit, /^LimitNOFILE=\d+$/m);
  t.match(unit, /^NoNewPrivileges=yes$/m);
  t.match(unit, /^ProtectSystem=strict$/m);
});
