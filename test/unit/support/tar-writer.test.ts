import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { tarArchive, type TarEntry } from '../../../daemon/support/tar-writer.js';

const longDir = `${'d'.repeat(60)}/${'e'.repeat(60)}`;
const entries: TarEntry[] = [
  { path: 'manifest.json', data: Buffer.from('{"a":1}\n') },
  { path: 'n1/', mtimeMs: Date.UTC(2026, 0, 1) },
  { path: 'n1/logs.jsonl', data: Buffer.from('line ünïcode\n'.repeat(1000)) },
  { path: 'n1/empty.json', data: Buffer.alloc(0) },
  { path: 'n1/exact-block', data: Buffer.alloc(512, 7) },
  { path: `${longDir}/`, mode: 0o700 },
  { path: `${longDir}/file-with-a-long-path.txt`, data: Buffer.from('deep') },
];

t.test('tar -tzf lists it and tar -xzf extracts every file identically', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plinth-tar-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const archivePath = join(dir, 'bundle.tar.gz');
  writeFileSync(archivePath, gzipSync(tarArchive(entries)));
  const listed = execFileSync('tar', ['-tzf', archivePath], { encoding: 'utf8' }).trim().split('\n');
  t.same(listed, entries.map((entry) => entry.path));
  const out = join(dir, 'out');
  execFileSync('mkdir', [out]);
  // A bad checksum or header makes GNU tar fail here (exit 2).
  execFileSync('tar', ['-xzf', archivePath, '-C', out]);
  for (const entry of entries) {
    if (entry.path.endsWith('/')) {
      t.ok(statSync(join(out, entry.path)).isDirectory(), entry.path);
      continue;
    }
    t.same(readFileSync(join(out, entry.path)), entry.data, entry.path);
  }
  t.equal(statSync(join(out, `${longDir}/`)).mode & 0o777, 0o700);
});

t.test('the archive is whole 512-byte blocks ending in two zero blocks', async (t) => {
  const archive = tarArchive([{ path: 'a', data: Buffer.from('x') }]);
  t.equal(archive.length, 512 * 4);
  t.ok(archive.subarray(1024).equals(Buffer.alloc(1024)));
  t.equal(archive.subarray(257, 263).toString('latin1'), 'ustar\0');
});

t.test('unsafe or impossible paths are refused', async (t) => {
  for (const path of ['', '/etc/passwd', '../up', 'a/../../b', 'x'.repeat(101), `${'p'.repeat(156)}/name`]) {
    t.throws(() => tarArchive([{ path, data: Buffer.from('x') }]), { code: 'INVALID_ARGUMENT' }, JSON.stringify(path.slice(0, 20)));
  }
  t.throws(() => tarArchive([{ path: 'dir/', data: Buffer.from('x') }]), { code: 'INVALID_ARGUMENT' });
});
