import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { makeTempDir, pickFreePorts, spawnDaemon, startDaemon, type DaemonProcess } from '../helpers/daemon-harness.js';

/** Every fatal start-up error: exit code 1 and exactly one clear line on stderr. */
async function refusalOf(daemon: DaemonProcess): Promise<{ code: number | null; lines: string[] }> {
  const status = await daemon.waitForExit();
  return { code: status.code, lines: daemon.stderr().split('\n').filter((line) => line.length > 0) };
}

t.test('an unknown key in the config file names the key and the file', async (t) => {
  const dir = await makeTempDir(t);
  const configFile = join(dir, 'plinth.yaml');
  await writeFile(configFile, 'log-level: info\nnbd-port: 10809\n');
  const daemon = await spawnDaemon(t, { dataDir: dir, args: ['--config', configFile] });
  t.match(await refusalOf(daemon), { code: 1, lines: { length: 1, 0: /^plinthd: config: .*plinth\.yaml: unknown key "nbd-port" \(known keys: .*\) \(CONFIG_INVALID\)$/ } });
  t.same(await readdir(dir), ['plinth.yaml'], 'nothing was created in the data dir');
});

t.test('a bad env value names the variable and the value', async (t) => {
  const daemon = await spawnDaemon(t, { addressFlags: false, env: { PLINTH_NBD: 'x:y' } });
  t.match(await refusalOf(daemon), { code: 1, lines: { length: 1, 0: /^plinthd: config: PLINTH_NBD="x:y": expected HOST:PORT/ } });
});

t.test('an unknown flag', async (t) => {
  const daemon = await spawnDaemon(t, { args: ['--nbd-port', '1'] });
  t.match(await refusalOf(daemon), { code: 1, lines: { length: 1, 0: /^plinthd: config: command line: Unknown option '--nbd-port'/ } });
});

t.test('--join to a member nobody answers for fails with one clear line', async (t) => {
  const [closedPort] = await pickFreePorts(1);
  const daemon = await spawnDaemon(t, { args: ['--join', `127.0.0.1:${closedPort}`] });
  t.match(await refusalOf(daemon), { code: 1, lines: { length: 1, 0: /^plinthd: cannot join the cluster through 127\.0\.0\.1:\d+: cannot reach peer.*\(IO_ERROR\)$/ } });
});

t.test('a data dir keeps its node id', async (t) => {
  const dataDir = await makeTempDir(t);
  const first = await startDaemon(t, { dataDir, args: ['--node-id', 'alpha'] });
  t.equal((await first.stop()).code, 0);
  const renamed = await spawnDaemon(t, { dataDir, args: ['--node-id', 'beta'] });
  t.match(await refusalOf(renamed), { code: 1, lines: { length: 1, 0: /^plinthd: config: --node-id="beta": data dir .* belongs to node "alpha"; a node id cannot change/ } });
  const again = await startDaemon(t, { dataDir });
  t.match((await again.api('GET', '/v1/cluster')).body, { leaderId: 'alpha' }, 'without the flag the stored id is used');
  t.equal((await again.stop()).code, 0);
});

t.test('settings from the config file and env, flags winning', async (t) => {
  const dataDir = await makeTempDir(t);
  const base = await startDaemon(t, { dataDir });
  const ports = base.ports;
  t.equal((await base.stop()).code, 0);
  const configFile = join(dataDir, 'plinth.yaml');
  await writeFile(configFile, [`data-dir: ${dataDir}`, `api: 127.0.0.1:${ports.api}`, 'nbd: 127.0.0.1:1', `disk: [${join(dataDir, 'disks', 'disk0.img')}]`, ''].join('\n'));
  const daemon = await startDaemon(t, {
    dataDir,
    ports,
    addressFlags: false,
    disks: null,
    env: { PLINTH_CONFIG: configFile, PLINTH_NBD: '127.0.0.1:2', PLINTH_LOG_LEVEL: 'debug' },
    args: ['--nbd', `127.0.0.1:${ports.nbd}`],
  });
  const ready = daemon.logRecords().find((record) => record['msg'] === 'plinthd ready');
  t.equal(ready?.['api'], `127.0.0.1:${ports.api}`, 'api from the file');
  t.equal(ready?.['nbd'], `127.0.0.1:${ports.nbd}`, 'nbd from the flag, over env and file');
  t.ok(daemon.logRecords().some((record) => record['level'] === 20), 'log level from the env (debug lines present)');
  t.equal((await daemon.stop()).code, 0);
});
