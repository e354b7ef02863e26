import t from 'tap';
import { CliUsageError } from '../../../api/cli/cli-usage-error.js';
import { resolveApiUrl } from '../../../api/cli/connection-settings.js';
import { parseCommandLine, parseReplicaCount } from '../../../api/cli/parse-args.js';
import { renderKeyValues, renderTable } from '../../../api/cli/table.js';

t.test('global and command options may appear anywhere', async (t) => {
  const parsed = parseCommandLine(['volume', '--json', 'create', 'db1', '--size', '1GiB', '--api', 'http://h:1', '--force']);
  t.same(parsed.positionals, ['volume', 'create', 'db1']);
  t.same(parsed.global, { api: 'http://h:1', json: true, help: false, version: false });
  t.same(parsed.options, { size: '1GiB', force: true, wait: false, clear: false });
  t.same(parsed.givenOptions, ['size', 'force']);
});

t.test('unknown options, missing values and --token with --data-dir are usage errors', async (t) => {
  t.throws(() => parseCommandLine(['--nope']), CliUsageError);
  t.throws(() => parseCommandLine(['volume', 'create', 'x', '--size']), CliUsageError);
  t.throws(() => parseCommandLine(['--token', 't', '--data-dir', 'd']), CliUsageError);
  t.throws(() => parseCommandLine(Array.from({ length: 17 }, () => 'x')), CliUsageError);
  t.equal(parseReplicaCount('3'), 3);
  for (const bad of ['', '-1', '2.5', 'three', '1e3', '9999']) t.throws(() => parseReplicaCount(bad), CliUsageError, bad);
});

t.test('API URL: flag, then PLINTH_API, then the default; host:port means http', async (t) => {
  const global = { json: false, help: false, version: false };
  t.equal(resolveApiUrl(global, {}), 'http://127.0.0.1:9700');
  t.equal(resolveApiUrl(global, { PLINTH_API: 'http://10.0.0.1:9700/' }), 'http://10.0.0.1:9700');
  t.equal(resolveApiUrl({ ...global, api: '127.0.0.1:9800' }, { PLINTH_API: 'http://x:1' }), 'http://127.0.0.1:9800');
  t.equal(resolveApiUrl({ ...global, api: 'https://plinth.example/api/' }, {}), 'https://plinth.example/api');
  t.throws(() => resolveApiUrl({ ...global, api: 'ftp://x' }, {}), CliUsageError);
  t.throws(() => resolveApiUrl({ ...global, api: 'http://' }, {}), CliUsageError);
});

t.test('tables align columns and carry no trailing spaces', async (t) => {
  t.equal(
    renderTable(['NAME', 'SIZE', 'ATTACHED'], [['a', '10GiB', '-'], ['longer-name', '1B', '']]),
    'NAME          SIZE    ATTACHED\na             10GiB   -\nlonger-name   1B\n',
  );
  t.equal(renderTable(['NAME', 'SIZE'], []), 'NAME   SIZE\n', 'an empty list still prints the header');
  t.equal(renderKeyValues([['name', 'db1'], ['generation', '3']]), 'name:       db1\ngeneration: 3\n');
});
