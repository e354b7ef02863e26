/** `npm run soak` flags (test/soak/soak-args.ts). */
import t from 'tap';
import { DEFAULT_KINDS, parseSoakArgs, replayCommand } from '../../soak/soak-args.js';

t.test('defaults and a full command line', async (t) => {
  const defaults = parseSoakArgs([], 42);
  t.match(defaults, { minutes: 1, seed: 42, nodes: 3, volumes: 2, logDir: '/tmp/plinth-soak-logs-42', daemonLogLevel: 'info' });
  t.same(defaults.kinds, DEFAULT_KINDS);
  const full = parseSoakArgs(['--minutes', '10', '--seed', '7', '--nodes', '5', '--faults', 'kill,stop', '--volumes', '3', '--log-dir', '/tmp/x'], 1);
  t.match(full, { minutes: 10, seed: 7, nodes: 5, volumes: 3, logDir: '/tmp/x' });
  t.same(full.kinds, ['kill', 'stop']);
  t.equal(replayCommand(full), 'npm run soak -- --minutes 10 --seed 7 --nodes 5 --faults kill,stop --volumes 3');
});

t.test('bad flags are usage errors', async (t) => {
  for (const argv of [['--minutes', '0'], ['--minutes', 'x'], ['--seed', '-1'], ['--seed', '1.5'], ['--nodes', '4'], ['--faults', 'kill,flood'], ['--faults', ','], ['--volumes', '9'], ['--bogus', '1'], ['--minutes']]) {
    t.throws(() => parseSoakArgs(argv, 1), { code: 'INVALID_ARGUMENT' }, argv.join(' '));
  }
});
