import { Registry } from 'prom-client';
import t from 'tap';
import type { BlockDevice, ExtentStatus } from '../../../blockdev/block-device.js';
import { PlinthError } from '../../../common/plinth-error.js';
import { MeteredDevice } from '../../../daemon/metrics/metered-device.js';
import { registerVolumeIoMetrics } from '../../../daemon/metrics/volume-io-metrics.js';
import { VolumeIoRecorder } from '../../../daemon/metrics/volume-io-stats.js';
import { MemoryBlockDevice } from '../../helpers/memory-block-device.js';

/** Reads one sample line's value out of the text format; NaN when absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

function setUp(existing: Set<string>): { registry: Registry; recorder: VolumeIoRecorder } {
  const registry = new Registry();
  const recorder = new VolumeIoRecorder();
  registerVolumeIoMetrics(registry, { recorder, volumeExists: (name) => existing.has(name) });
  return { registry, recorder };
}

/** A device with the synchronous fast paths (like the pool store's page-cache I/O). */
class InlineBufferDevice extends MemoryBlockDevice {
  readonly #bytes: Buffer;
  inlineCalls = 0;

  constructor(sizeBytes: number) {
    super({ sizeBytes });
    this.#bytes = Buffer.alloc(sizeBytes);
  }

  readInline(offset: number, target: Buffer): boolean {
    this.inlineCalls += 1;
    if (target.length > 4096) return false;
    this.#bytes.copy(target, 0, offset, offset + target.length);
    return true;
  }

  writeInline(offset: number, data: Buffer): boolean {
    this.inlineCalls += 1;
    if (offset + data.length > this.sizeBytes) throw new PlinthError('OUT_OF_RANGE', 'past the end');
    data.copy(this.#bytes, offset);
    return true;
  }
}

t.test('every operation is counted with its bytes and latency, per volume and protocol', async (t) => {
  const { registry, recorder } = setUp(new Set(['db']));
  const inner = new MemoryBlockDevice({ sizeBytes: 1 << 20 });
  const device: BlockDevice = new MeteredDevice(inner, recorder.statsFor('db', 'nbd'));
  await device.write(0, Buffer.alloc(8192, 1));
  await device.write(8192, Buffer.alloc(4096, 2), { fua: true });
  const target = Buffer.alloc(4096);
  await device.read(4096, target);
  t.equal(target[0], 1, 'the read went through to the inner device');
  await device.flush();
  await device.trim(0, 4096);
  await device.writeZeroes(4096, 4096);
  const extents: ExtentStatus[] = await device.blockStatus(0, 4096);
  t.ok(extents.length > 0, 'block status passes through');
  t.equal(inner.stats.writes, 2);

  const text = await registry.metrics();
  const labels = 'volume="db",protocol="nbd"';
  t.equal(sample(text, `plinth_volume_io_operations_total{${labels},op="write"}`), 2);
  t.equal(sample(text, `plinth_volume_io_operations_total{${labels},op="read"}`), 1);
  t.equal(sample(text, `plinth_volume_io_operations_total{${labels},op="flush"}`), 1);
  t.equal(sample(text, `plinth_volume_io_operations_total{${labels},op="trim"}`), 1);
  t.equal(sample(text, `plinth_volume_io_operations_total{${labels},op="zero"}`), 1);
  t.equal(sample(text, `plinth_volume_written_bytes_total{${labels}}`), 12288);
  t.equal(sample(text, `plinth_volume_read_bytes_total{${labels}}`), 4096);
  t.equal(sample(text, `plinth_volume_io_in_flight{${labels}}`), 0);
  t.equal(sample(text, `plinth_volume_io_duration_seconds_count{${labels},op="write"}`), 2);
  t.equal(sample(text, `plinth_volume_io_duration_seconds_bucket{${labels},op="write",le="+Inf"}`), 2);
  t.equal(sample(text, `plinth_volume_io_duration_seconds_bucket{${labels},op="write",le="10"}`), 2, 'buckets are cumulative');
  t.ok(sample(text, `plinth_volume_io_duration_seconds_sum{${labels},op="write"}`) >= 0);
  t.match(text, /# TYPE plinth_volume_io_duration_seconds histogram/);
  t.match(text, /le="0\.00005"/, 'the smallest bucket is 50 µs');
});

t.test('in-flight depth rises while requests run, errors are counted and passed on', async (t) => {
  const { registry, recorder } = setUp(new Set(['db']));
  const inner = new MemoryBlockDevice({ sizeBytes: 1 << 20 });
  const device = new MeteredDevice(inner, recorder.statsFor('db', 'iscsi'));
  const pending = [device.write(0, Buffer.alloc(512)), device.write(512, Buffer.alloc(512)), device.read(0, Buffer.alloc(512))];
  t.equal(sample(await registry.metrics(), 'plinth_volume_io_in_flight{volume="db",protocol="iscsi"}'), 3, 'three requests in flight');
  await Promise.all(pending);
  t.equal(sample(await registry.metrics(), 'plinth_volume_io_in_flight{volume="db",protocol="iscsi"}'), 0);

  inner.failNext('write', new PlinthError('IO_ERROR', 'disk gone'));
  await t.rejects(device.write(0, Buffer.alloc(512)), { code: 'IO_ERROR' }, 'the error reaches the caller unchanged');
  const text = await registry.metrics();
  t.equal(sample(text, 'plinth_volume_io_errors_total{volume="db",protocol="iscsi",op="write"}'), 1);
  t.equal(sample(text, 'plinth_volume_io_operations_total{volume="db",protocol="iscsi",op="write"}'), 2, 'a failed write is not a completed one');
  t.equal(sample(text, 'plinth_volume_written_bytes_total{volume="db",protocol="iscsi"}'), 1024, 'nor are its bytes written');
  t.equal(sample(text, 'plinth_volume_io_in_flight{volume="db",protocol="iscsi"}'), 0);
});

t.test('the inline fast paths stay synchronous and are counted only when they did the I/O', async (t) => {
  const { registry, recorder } = setUp(new Set(['fast']));
  const inner = new InlineBufferDevice(1 << 16);
  const device: BlockDevice = new MeteredDevice(inner, recorder.statsFor('fast', 'nbd'));
  t.type(device.readInline, 'function');
  t.type(device.writeInline, 'function');
  t.equal(device.writeInline?.(0, Buffer.alloc(4096, 7)), true);
  const target = Buffer.alloc(4096);
  t.equal(device.readInline?.(0, target), true);
  t.equal(target[4095], 7);
  t.equal(device.readInline?.(0, Buffer.alloc(8192)), false, 'a declined inline read is passed back');
  t.throws(() => device.writeInline?.(1 << 16, Buffer.alloc(512)), { code: 'OUT_OF_RANGE' });
  t.equal(inner.inlineCalls, 4);
  const text = await registry.metrics();
  t.equal(sample(text, 'plinth_volume_io_operations_total{volume="fast",protocol="nbd",op="read"}'), 1, 'the declined read is not counted');
  t.equal(sample(text, 'plinth_volume_io_operations_total{volume="fast",protocol="nbd",op="write"}'), 1);
  t.equal(sample(text, 'plinth_volume_io_errors_total{volume="fast",protocol="nbd",op="write"}'), 1);
  t.equal(sample(text, 'plinth_volume_read_bytes_total{volume="fast",protocol="nbd"}'), 4096);

  const plain = new MeteredDevice(new MemoryBlockDevice({ sizeBytes: 4096 }), recorder.statsFor('fast', 'nbd'));
  t.equal(plain.readInline, undefined, 'no fast path appears on a device without one');
  t.equal(plain.writeInline, undefined);
  t.equal(plain.writev, undefined);
});

t.test('series of deleted volumes disappear; connections of one volume share series', async (t) => {
  const existing = new Set(['a', 'b']);
  const { registry, recorder } = setUp(existing);
  const first = new MeteredDevice(new MemoryBlockDevice({ sizeBytes: 4096 }), recorder.statsFor('a', 'nbd'));
  const second = new MeteredDevice(new MemoryBlockDevice({ sizeBytes: 4096 }), recorder.statsFor('a', 'nbd'));
  const other = new MeteredDevice(new MemoryBlockDevice({ sizeBytes: 4096 }), recorder.statsFor('b', 'iscsi'));
  await Promise.all([first.flush(), second.flush(), other.flush()]);
  const before = await registry.metrics();
  t.equal(sample(before, 'plinth_volume_io_operations_total{volume="a",protocol="nbd",op="flush"}'), 2, 'two connections, one series');
  t.match(before, 'volume="b"');

  existing.delete('b');
  const after = await registry.metrics();
  t.notMatch(after, 'volume="b"', 'no series of the deleted volume in any family');
  t.match(after, 'volume="a"');
  t.equal(recorder.size, 1);
});

t.test('the number of series is bounded', async (t) => {
  const recorder = new VolumeIoRecorder({ maxSeries: 2 });
  recorder.statsFor('v1', 'nbd');
  recorder.statsFor('v2', 'nbd');
  const overflow = recorder.statsFor('v3', 'nbd');
  t.equal(overflow.volume, '_overflow');
  t.equal(recorder.statsFor('v4', 'nbd'), overflow, 'later volumes share the overflow entry');
  t.equal(recorder.size, 3);
});
