import t from 'tap';
import { formatDurationMs, parseDurationMs } from '../../../common/durations.js';

t.test('durations parse from seconds or units and render back', async (t) => {
  t.equal(parseDurationMs(90), 90_000);
  t.equal(parseDurationMs('90'), 90_000);
  t.equal(parseDurationMs('90s'), 90_000);
  t.equal(parseDurationMs('10m'), 600_000);
  t.equal(parseDurationMs('1h30m'), 5_400_000);
  t.equal(parseDurationMs('250ms'), 250);
  t.equal(parseDurationMs(' 2d '), 172_800_000);
  t.equal(formatDurationMs(600_000), '10m');
  t.equal(formatDurationMs(5_400_250), '1h30m250ms');
  t.equal(formatDurationMs(0), '0s');
  for (const bad of ['', '1.5h', '10 m', '10x', 'm10', '-5s', '10mm']) {
    t.throws(() => parseDurationMs(bad), { code: 'INVALID_ARGUMENT' }, `refuses ${JSON.stringify(bad)}`);
  }
  t.throws(() => parseDurationMs(-1), { code: 'INVALID_ARGUMENT' });
  t.throws(() => parseDurationMs(1.5), { code: 'INVALID_ARGUMENT' });
});
