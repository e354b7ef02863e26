import type { DestinationStream } from 'pino';

/**
 * The daemon's own copy of its most recent log lines, for `plinth support
 * bundle` (docs/operations.md "Support bundle"): the daemon logs to stdout
 * (journald under systemd), which it cannot read back. A pino destination
 * fed alongside stdout. Bounded both ways (a limit on everything): the
 * oldest lines go once either `maxLines` or `maxBytes` would be exceeded,
 * and one line longer than `maxLineBytes` is cut.
 */
export interface LogRingOptions {
  readonly maxLines: number;
  readonly maxBytes: number;
  readonly maxLineBytes: number;
}

export const DEFAULT_LOG_RING_OPTIONS: LogRingOptions = {
  maxLines: 20_000,
  maxBytes: 16 * 1024 * 1024,
  maxLineBytes: 64 * 1024,
};

export interface LogRingSnapshot {
  /** Oldest first, each without its trailing newline. */
  readonly lines: readonly string[];
  /** Lines left out by `maxBytes` of the snapshot (the oldest ones). */
  readonly omittedLines: number;
  /** Lines the ring has dropped since start, to stay within its bounds. */
  readonly evictedLines: number;
}

interface RingEntry {
  readonly atMs: number;
  readonly line: string;
  /** Its UTF-8 length. */
  readonly sizeBytes: number;
}

const TRUNCATED_MARK = '…[truncated]';

export class LogRing implements DestinationStream {
  readonly #options: LogRingOptions;
  readonly #now: () => number;
  readonly #entries: (RingEntry | undefined)[];
  #head = 0;
  #count = 0;
  #totalBytes = 0;
  #evicted = 0;

  constructor(options: Partial<LogRingOptions> = {}, modules: { readonly now?: () => number } = {}) {
    this.#options = { ...DEFAULT_LOG_RING_OPTIONS, ...options };
    if (this.#options.maxLines < 1 || this.#options.maxBytes < 1 || this.#options.maxLineBytes < TRUNCATED_MARK.length + 1) {
      throw new RangeError('log ring bounds must be positive');
    }
    this.#now = modules.now ?? Date.now;
    this.#entries = new Array<RingEntry | undefined>(this.#options.maxLines);
  }

  get lineCount(): number {
    return this.#count;
  }

  get sizeBytes(): number {
    return this.#totalBytes;
  }

  /** pino destination: one or more newline-terminated lines per call. */
  write(chunk: string): void {
    for (const line of chunk.split('\n')) {
      if (line !== '') this.#push(line);
    }
  }

  /**
   * Lines written at or after `sinceMs`, newest kept when they exceed
   * `maxBytes` (the recent past matters most in a support case).
   */
  snapshot(options: { readonly sinceMs?: number; readonly maxBytes?: number } = {}): LogRingSnapshot {
    const sinceMs = options.sinceMs ?? 0;
    const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    const newestFirst: string[] = [];
    let bytes = 0;
    let omitted = 0;
    for (let back = 0; back < this.#count; back += 1) {
      const entry = this.#entries[(this.#head + this.#count - 1 - back) % this.#options.maxLines];
      if (entry === undefined || entry.atMs < sinceMs) break;
      if (bytes + entry.sizeBytes + 1 > maxBytes) {
        omitted += 1;
        continue;
      }
      bytes += entry.sizeBytes + 1;
      newestFirst.push(entry.line);
    }
    return { lines: newestFirst.reverse(), omittedLines: omitted, evictedLines: this.#evicted };
  }

  #push(rawLine: string): void {
    const { maxLines, maxBytes, maxLineBytes } = this.#options;
    const line = rawLine.length > maxLineBytes ? rawLine.slice(0, maxLineBytes - TRUNCATED_MARK.length) + TRUNCATED_MARK : rawLine;
    const sizeBytes = Math.min(Buffer.byteLength(line, 'utf8'), maxBytes);
    while (this.#count > 0 && (this.#count >= maxLines || this.#totalBytes + sizeBytes > maxBytes)) this.#dropOldest();
    this.#entries[(this.#head + this.#count) % maxLines] = { atMs: this.#now(), line, sizeBytes };
    this.#count += 1;
    this.#totalBytes += sizeBytes;
  }

  #dropOldest(): void {
    const oldest = this.#entries[this.#head];
    this.#entries[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#options.maxLines;
    this.#count -= 1;
    this.#totalBytes -= oldest?.sizeBytes ?? 0;
    this.#evicted += 1;
  }
}
