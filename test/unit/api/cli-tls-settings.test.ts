import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { resolveApiUrl, resolveCa } from '../../../api/cli/connection-settings.js';
import { parseCommandLine } from '../../../api/cli/parse-args.js';

/** How the CLI finds the cluster CA (docs/security.md "API"): --ca, PLINTH_CA, <data-dir>/tls/ca.crt. */

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

t.test('--ca, PLINTH_CA and the data dir, in that order; none in a plain data dir', async (t) => {
  const cwd = await mkdtemp(join(tmpdir(), 'plinth-cli-ca-'));
  t.teardown(() => rm(cwd, { recursive: true, force: true }));
  await mkdir(join(cwd, 'node', 'tls'), { recursive: true });
  await writeFile(join(cwd, 'node', 'tls', 'ca.crt'), PEM);
  await writeFile(join(cwd, 'other.pem'), PEM.replace('MIIB', 'MIIC'));
  await mkdir(join(cwd, 'plain'));

  const global = (argv: string[]) => parseCommandLine([...argv, 'cluster', 'status']).global;
  t.equal(await resolveCa(global(['--data-dir', 'node']), {}, cwd), PEM);
  t.match(await resolveCa(global(['--data-dir', 'node', '--ca', 'other.pem']), {}, cwd), /MIIC/, '--ca wins');
  t.match(await resolveCa(global(['--data-dir', 'node']), { PLINTH_CA: 'other.pem' }, cwd), /MIIC/, 'then PLINTH_CA');
  t.equal(await resolveCa(global(['--data-dir', 'plain']), {}, cwd), undefined, 'a plain cluster has no CA');
  t.equal(await resolveCa(global(['--token', 'x']), {}, cwd), undefined, '--token alone does not look in ./data');
  await t.rejects(resolveCa(global(['--ca', 'missing.pem']), {}, cwd), { message: /cannot read the CA file .*missing\.pem/ });
  await writeFile(join(cwd, 'junk.pem'), 'not a certificate');
  await t.rejects(resolveCa(global(['--ca', 'junk.pem']), {}, cwd), { message: /does not hold a PEM CA certificate/ });
});

t.test('with a CA known, a scheme-less or default API address means https; an explicit http:// stays', async (t) => {
  const global = parseCommandLine(['cluster', 'status']).global;
  t.equal(resolveApiUrl(global, {}, true), 'https://127.0.0.1:9700');
  t.equal(resolveApiUrl({ ...global, api: '10.0.0.1:9700' }, {}, true), 'https://10.0.0.1:9700');
  t.equal(resolveApiUrl({ ...global, api: 'http://10.0.0.1:9700' }, {}, true), 'http://10.0.0.1:9700');
  t.equal(resolveApiUrl(global, {}), 'http://127.0.0.1:9700', 'no CA: unchanged');
});
