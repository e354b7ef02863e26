import type { ExportClient } from '../../blockdev/export-provider.js';

/**
 * Plain-number I/O statistics of the volumes served on this node, kept by
 * metered-device.ts on the data path and turned into Prometheus series only
 * at scrape time (volume-io-metrics.ts). Why not prom-client's own
 * counters: each labelled inc()/observe() hashes its label set, which would
 * cost more per request than the qd1 inline path can afford (issue 6
 * "the data-path instrumentation must cost almost nothing").
 */

/** The operations a BlockDevice serves (block-device.ts), one series each. */
export const VOLUME_IO_OPS = ['read', 'write', 'flush', 'trim', 'zero'] as const;
export type VolumeIoOp = (typeof VOLUME_IO_OPS)[number];
/** The protocol servers that open exports (export-provider.ts). */
export type VolumeIoProtocol = ExportClient['protocol'];

export const OP_READ = 0;
export const OP_WRITE = 1;
export const OP_FLUSH = 2;
export const OP_TRIM = 3;
export const OP_ZERO = 4;

/**
 * Latency bucket upper bounds in seconds: 50 µs (a page-cache hit) to 10 s
 * (a write stuck behind a failing replica), roughly 1-2.5-5 per decade.
 */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
const BUCKET_BOUNDS_MS = LATENCY_BUCKETS_SECONDS.map((seconds) => seconds * 1000);
const BUCKET_SLOTS = BUCKET_BOUNDS_MS.length + 1;

/** Series kept at most (volumes × protocols); beyond it new ones share an overflow entry. */
export const DEFAULT_MAX_VOLUME_SERIES = 4096;

/** One volume served over one protocol: every connection of that pair shares it. */
export class VolumeIoStats {
  readonly volume: string;
  readonly protocol: VolumeIoProtocol;
  readonly operations = new Float64Array(VOLUME_IO_OPS.length);
  readonly errors = new Float64Array(VOLUME_IO_OPS.length);
  /** Per op: non-cumulative counts per bucket, the last slot is +Inf. */
  readonly latencyBuckets: Float64Array[] = VOLUME_IO_OPS.map(() => new Float64Array(BUCKET_SLOTS));
  readonly latencySumMs = new Float64Array(VOLUME_IO_OPS.length);
  readBytes = 0;
  writtenBytes = 0;
  inFlight = 0;

  constructor(volume: string, protocol: VolumeIoProtocol) {
    this.volume = volume;
    this.protocol = protocol;
  }

  /** One completed request: count it and file its latency (milliseconds, performance.now()). */
  complete(op: number, elapsedMs: number): void {
    this.operations[op] = (this.operations[op] ?? 0) + 1;
    this.latencySumMs[op] = (this.latencySumMs[op] ?? 0) + elapsedMs;
    let slot = 0;
    while (slot < BUCKET_BOUNDS_MS.length && elapsedMs > (BUCKET_BOUNDS_MS[slot] ?? Infinity)) slot++;
    const buckets = this.latencyBuckets[op];
    if (buckets !== undefined) buckets[slot] = (buckets[slot] ?? 0) + 1;
  }

  fail(op: number): void {
    this.errors[op] = (this.errors[op] ?? 0) + 1;
  }

  /** Cumulative bucket counts as Prometheus wants them (le="..."), last one = count. */
  cumulativeBuckets(op: number): number[] {
    const buckets = this.latencyBuckets[op] ?? new Float64Array(BUCKET_SLOTS);
    const cumulative: number[] = [];
    let running = 0;
    for (const count of buckets) {
      running += count;
      cumulative.push(running);
    }
    return cumulative;
  }
}

/**
 * The table of VolumeIoStats, keyed by volume and protocol. Volumes come and
 * go: prune() drops the entries of volumes that no longer exist, so a
 * deleted volume's series disappear at the next scrape (bounded cardinality).
 */
export class VolumeIoRecorder {
  readonly #entries = new Map<string, VolumeIoStats>();
  readonly #maxSeries: number;

  constructor(options: { readonly maxSeries?: number } = {}) {
    this.#maxSeries = options.maxSeries ?? DEFAULT_MAX_VOLUME_SERIES;
  }

  /** The shared stats of `volume` over `protocol`, created on first use. */
  statsFor(volume: string, protocol: VolumeIoProtocol): VolumeIoStats {
    const key = `${protocol}\u0000${volume}`;
    let stats = this.#entries.get(key);
    if (stats === undefined) {
      // A limit on everything: past the bound, count under one overflow series instead of growing.
      const name = this.#entries.size >= this.#maxSeries ? '_overflow' : volume;
      stats = this.#entries.get(`${protocol}\u0000${name}`) ?? new VolumeIoStats(name, protocol);
      this.#entries.set(`${protocol}\u0000${name}`, stats);
    }
    return stats;
  }

  entries(): IterableIterator<VolumeIoStats> {
    return this.#entries.values();
  }

  /** Keep only the volumes `exists` accepts (and the overflow entry). */
  prune(exists: (volume: string) => boolean): void {
    for (const [key, stats] of this.#entries) {
      if (stats.volume !== '_overflow' && !exists(stats.volume)) this.#entries.delete(key);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}
