import t from 'tap';
import { formatSize, parseSize } from '../../../common/sizes.js';

t.test('parseSize accepts bytes and binary units', async (t) => {
  t.equal(parseSize('1073741824'), 1073741824);
  t.equal(parseSize('512MiB'), 512 * 1024 ** 2);
  t.equal(parseSize('1GiB'), 1024 ** 3);
  t.equal(parseSize('2TiB'), 2 * 1024 ** 4);
  t.equal(parseSize('1.5GiB'), 1.5 * 1024 ** 3);
  t.equal(parseSize(4096), 4096);
});

t.test('parseSize refuses decimal units, garbage and fractions of a byte', async (t) => {
  for (const bad of ['1GB', '10 gigs', '', '-1', 'GiB', '0.3B', '1e9', '99999999999PiB']) {
    t.throws(() => parseSize(bad), { code: 'INVALID_SIZE' }, bad);
  }
  t.throws(() => parseSize(-5));
  t.throws(() => parseSize(1.5));
});

t.test('formatSize', async (t) => {
  t.equal(formatSize(0), '0B');
  t.equal(formatSize(1024 ** 3), '1GiB');
  t.equal(formatSize(1536 * 1024 ** 2), '1.5GiB');
});
