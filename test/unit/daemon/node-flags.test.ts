import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { missingNodeFlags, PLINTHD_NODE_FLAGS } from '../../../daemon/bin/node-flags.js';

const run = promisify(execFile);
// dist/test/unit/daemon/ → the repository root and the built daemon.
const ROOT = new URL('../../../../', import.meta.url);
const BUILT_PLINTHD = fileURLToPath(new URL('../../../daemon/bin/plinthd.js', import.meta.url));

t.test('every way plinthd starts carries its V8 flags', async (t) => {
  const shebang = (await readFile(new URL('daemon/bin/plinthd.ts', ROOT), 'utf8')).split('\n')[0] ?? '';
  t.equal(shebang, `#!/usr/bin/env -S node ${PLINTHD_NODE_FLAGS.join(' ')}`, 'the source shebang');
  const built = (await readFile(BUILT_PLINTHD, 'utf8')).split('\n')[0] ?? '';
  t.equal(built, shebang, 'tsc keeps the shebang in dist');
  const pkg = JSON.parse(await readFile(new URL('package.json', ROOT), 'utf8')) as { scripts: Record<string, string> };
  t.equal(pkg.scripts['start'], `node ${PLINTHD_NODE_FLAGS.join(' ')} dist/daemon/bin/plinthd.js`, 'npm start');
});

t.test('the shebang works: the executable runs with the flags', async (t) => {
  const { stdout } = await run(BUILT_PLINTHD, ['--version'], { timeout: 20_000 });
  t.match(stdout, /^plinthd \S+\n$/);
});

t.test('missingNodeFlags names what node was started without', async (t) => {
  t.same(missingNodeFlags([]), [...PLINTHD_NODE_FLAGS]);
  t.same(missingNodeFlags(['--cpu-prof', ...PLINTHD_NODE_FLAGS]), []);
});
