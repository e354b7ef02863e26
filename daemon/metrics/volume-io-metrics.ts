import { Counter, Gauge, Histogram, type MetricObjectWithValues, type MetricValueWithName, type Registry } from 'prom-client';
import { LATENCY_BUCKETS_SECONDS, VOLUME_IO_OPS, type VolumeIoRecorder, type VolumeIoStats } from './volume-io-stats.js';

export interface VolumeIoMetricsModules {
  readonly recorder: VolumeIoRecorder;
  /** Whether a volume still exists (committed state); the others' series are dropped at scrape. */
  readonly volumeExists: (name: string) => boolean;
}

type IoLabel = 'volume' | 'protocol' | 'op';
type LatencyLabel = IoLabel | 'le';

const LATENCY_METRIC = 'plinth_volume_io_duration_seconds';

/**
 * Per-volume data-path series (issue 6 "per volume read/write operations,
 * bytes and latency histograms, in-flight depth"), built at scrape time from
 * the plain counters metered-device.ts keeps. Labels: volume, protocol
 * (nbd/iscsi) and op (read/write/flush/trim/zero).
 */
export function registerVolumeIoMetrics(registry: Registry, modules: VolumeIoMetricsModules): void {
  const { recorder } = modules;
  // Every collect() prunes first, so the first family scraped drops deleted volumes for all.
  const live = (): IterableIterator<VolumeIoStats> => {
    recorder.prune(modules.volumeExists);
    return recorder.entries();
  };
  new Counter({
    name: 'plinth_volume_io_operations_total',
    help: 'Completed block requests per volume, protocol and operation',
    labelNames: ['volume', 'protocol', 'op'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const stats of live()) {
        VOLUME_IO_OPS.forEach((op, index) => this.inc({ volume: stats.volume, protocol: stats.protocol, op }, stats.operations[index] ?? 0));
      }
    },
  });
  new Counter({
    name: 'plinth_volume_io_errors_total',
    help: 'Block requests that failed, per volume, protocol and operation',
    labelNames: ['volume', 'protocol', 'op'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const stats of live()) {
        VOLUME_IO_OPS.forEach((op, index) => this.inc({ volume: stats.volume, protocol: stats.protocol, op }, stats.errors[index] ?? 0));
      }
    },
  });
  const bytesCounter = (name: string, help: string, pick: (stats: VolumeIoStats) => number): void => {
    new Counter({
      name,
      help,
      labelNames: ['volume', 'protocol'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const stats of live()) this.inc({ volume: stats.volume, protocol: stats.protocol }, pick(stats));
      },
    });
  };
  bytesCounter('plinth_volume_read_bytes_total', 'Bytes read by clients per volume and protocol', (stats) => stats.readBytes);
  bytesCounter('plinth_volume_written_bytes_total', 'Bytes written by clients per volume and protocol (trim and zero not included)', (stats) => stats.writtenBytes);
  new Gauge({
    name: 'plinth_volume_io_in_flight',
    help: 'Block requests in flight (queue depth) per volume and protocol',
    labelNames: ['volume', 'protocol'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const stats of live()) this.set({ volume: stats.volume, protocol: stats.protocol }, stats.inFlight);
    },
  });
  registry.registerMetric(new VolumeLatencyHistogram(live));
}

/**
 * A Histogram whose buckets live in VolumeIoStats (filled without label
 * hashing on the data path) and are read here at scrape time. It overrides
 * only the export side of prom-client's Histogram; observe() is never used.
 */
class VolumeLatencyHistogram extends Histogram<LatencyLabel> {
  readonly #live: () => IterableIterator<VolumeIoStats>;
  /** Never observed: supplies the export header (name, help, type, aggregator) prom-client expects. */
  readonly #header: Histogram<LatencyLabel>;

  constructor(live: () => IterableIterator<VolumeIoStats>) {
    const configuration = {
      name: LATENCY_METRIC,
      help: 'Latency of completed block requests per volume, protocol and operation, as the protocol servers see it',
      labelNames: ['volume', 'protocol', 'op'] as LatencyLabel[],
      buckets: [...LATENCY_BUCKETS_SECONDS],
      registers: [],
    };
    super(configuration);
    this.#header = new Histogram(configuration);
    this.#live = live;
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<LatencyLabel>>> {
    return { ...(await this.#header.get()), values: this.#values() };
  }

  /** prom-client's Registry prefers this (untyped) method over get() for the text format (registry.js). */
  async getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<LatencyLabel>>> {
    return this.get();
  }

  #values(): MetricValueWithName<LatencyLabel>[] {
    const values: MetricValueWithName<LatencyLabel>[] = [];
    for (const stats of this.#live()) {
      VOLUME_IO_OPS.forEach((op, index) => {
        const labels = { volume: stats.volume, protocol: stats.protocol, op };
        const cumulative = stats.cumulativeBuckets(index);
        LATENCY_BUCKETS_SECONDS.forEach((bound, slot) => values.push({ metricName: `${LATENCY_METRIC}_bucket`, labels: { ...labels, le: bound }, value: cumulative[slot] ?? 0 }));
        const count = cumulative[cumulative.length - 1] ?? 0;
        values.push({ metricName: `${LATENCY_METRIC}_bucket`, labels: { ...labels, le: '+Inf' }, value: count });
        values.push({ metricName: `${LATENCY_METRIC}_sum`, labels, value: (stats.latencySumMs[index] ?? 0) / 1000 });
        values.push({ metricName: `${LATENCY_METRIC}_count`, labels, value: count });
      });
    }
    return values;
  }
}
