/**
 * The daemon's NBD face as libnbd's nbdinfo sees it (ARCHITECTURE "NBD" row:
 * export name = volume name; connecting attaches the volume to that node),
 * with volumes created through both the REST API and the `plinth` CLI.
 */
import t from 'tap';
import { apiRequest, createVolume } from '../setup/e2e-api.js';
import { E2E_NODE_ID, PLINTH_CLI_PATH } from '../setup/e2e-daemon.js';
import { makeWorkDir, startDaemon } from '../setup/e2e-fixture.js';
import { nbdinfoExport, nbdinfoList, nbdinfoRaw, nbdsh } from '../setup/e2e-nbd.js';
import { describeRun, missingToolsReason, run } from '../setup/e2e-process.js';

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

const skip = missingToolsReason(['nbdinfo', 'nbdsh']);

t.test('nbdinfo sees volumes created by REST and CLI', { skip: skip ?? false }, async (t) => {
  const workDir = await makeWorkDir(t, 'nbdinfo');
  const daemon = await startDaemon(t, workDir, ['d0.img:2GiB']);

  await createVolume(daemon.apiUrl, daemon.token, 'vol-rest', '1GiB');
  const cli = await run(
    process.execPath,
    [PLINTH_CLI_PATH, '--api', daemon.apiUrl, '--data-dir', daemon.dataDir, '--json', 'volume', 'create', 'vol-cli', '--size', '512MiB'],
    { timeoutMs: 30_000 },
  );
  t.equal(cli.code, 0, `plinth volume create exits 0: ${describeRun(cli)}`);

  await t.test('nbdinfo --json shows the size and capabilities', async (t) => {
    const rest = await nbdinfoExport(daemon.nbdUri('vol-rest'));
    t.equal(rest.name, 'vol-rest');
    t.equal(rest.sizeBytes, 1 * GIB, 'REST volume is 1 GiB');
    t.equal(rest.readOnly, false, 'writable');
    // proto.md "NBD_OPT_INFO": the information MUST match what NBD_OPT_GO
    // would give, so nbdinfo (which only asks INFO) must see the volume's
    // real capabilities.
    t.ok(rest.canFlush && rest.canFua, 'flush and FUA advertised');
    t.ok(rest.canTrim && rest.canZero, 'trim and write-zeroes advertised');
    t.ok(rest.canMultiConn, 'multi-conn advertised');
    const viaCli = await nbdinfoExport(daemon.nbdUri('vol-cli'));
    t.equal(viaCli.sizeBytes, 512 * MIB, 'CLI volume is 512 MiB');
  });

  await t.test('a client that connects (NBD_OPT_GO) attaches the volume here', async (t) => {
    // nbdinfo only asks NBD_OPT_INFO, which describes without attaching; a
    // client that goes into transmission attaches the volume to this node.
    const probe = await nbdsh(
      daemon.nbdUri('vol-rest'),
      "print('CAPS', h.get_size(), h.can_flush(), h.can_fua(), h.can_trim(), h.can_zero(), h.can_multi_conn())",
    );
    t.equal(probe.code, 0, describeRun(probe));
    t.match(probe.stdout, `CAPS ${GIB} True True True True True`, 'GO reports size, flush, FUA, trim, zero, multi-conn');
    const response = await apiRequest(daemon.apiUrl, { method: 'GET', path: '/v1/volumes/vol-rest', token: daemon.token });
    t.equal(response.status, 200, response.text);
    const body = response.body as { attachedTo?: unknown; generation?: unknown };
    t.equal(body.attachedTo, E2E_NODE_ID, 'attachedTo is the node id');
    t.ok(typeof body.generation === 'number' && body.generation >= 1, 'attach committed a generation');
  });

  await t.test('nbdinfo --list shows every volume', async (t) => {
    const listed = await nbdinfoList(daemon.nbdUri(''));
    const sizes = new Map(listed.map((entry) => [entry.name, entry.sizeBytes]));
    t.equal(sizes.get('vol-rest'), 1 * GIB, 'vol-rest listed with its size');
    t.equal(sizes.get('vol-cli'), 512 * MIB, 'vol-cli listed with its size');
    t.equal(listed.length, 2, `exactly the two volumes: ${[...sizes.keys()].join(', ')}`);
  });

  await t.test('an unknown export is refused, the default export too', async (t) => {
    for (const name of ['no-such-volume', '']) {
      const result = await nbdinfoRaw(daemon.nbdUri(name));
      t.not(result.code, 0, `nbdinfo of "${name}" fails: ${describeRun(result)}`);
      t.match(result.stderr, /export|not available|unknown|No such/i, 'with a message about the export');
    }
    const stillThere = await nbdinfoExport(daemon.nbdUri('vol-cli'));
    t.equal(stillThere.sizeBytes, 512 * MIB, 'the server still serves after refusals');
  });

  await t.test('the CLI lists both volumes as JSON', async (t) => {
    const ls = await run(
      process.execPath,
      [PLINTH_CLI_PATH, '--api', daemon.apiUrl, '--data-dir', daemon.dataDir, '--json', 'volume', 'ls'],
      { timeoutMs: 30_000 },
    );
    t.equal(ls.code, 0, describeRun(ls));
    const parsed = JSON.parse(ls.stdout) as unknown;
    const volumes = Array.isArray(parsed) ? parsed : (parsed as { volumes?: unknown }).volumes;
    t.ok(Array.isArray(volumes), `volume ls --json gives a list: ${ls.stdout.slice(0, 300)}`);
    const names = (Array.isArray(volumes) ? volumes : []).map((volume: unknown) => (volume as { name?: unknown }).name);
    t.same(names.sort(), ['vol-cli', 'vol-rest']);
  });
});
