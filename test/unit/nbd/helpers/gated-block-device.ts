import type {
  BlockCapabilities,
  BlockDevice,
  BlockSizeHints,
  ExtentStatus,
  TrimOptions,
  WriteOptions,
  ZeroOptions,
} from '../../../../blockdev/block-device.js';

/**
 * A BlockDevice wrapper that holds every call until the test opens the gate,
 * and counts how many calls are in progress at once. Tests use it to pin
 * requests "in flight" and observe backpressure, ordering and shutdown.
 */
export class GatedBlockDevice implements BlockDevice {
  readonly sizeBytes: number;
  readonly capabilities: BlockCapabilities;
  readonly blockSize: BlockSizeHints;
  /** Calls waiting at the gate or running. */
  inProgress = 0;
  maxInProgress = 0;
  started = 0;
  private readonly inner: BlockDevice;
  private open = false;
  private waiters: (() => void)[] = [];

  constructor(inner: BlockDevice) {
    this.inner = inner;
    this.sizeBytes = inner.sizeBytes;
    this.capabilities = inner.capabilities;
    this.blockSize = inner.blockSize;
  }

  /** Let every held call and all future ones through. */
  release(): void {
    this.open = true;
    this.releaseSome(this.waiters.length);
  }

  /** Let the `count` oldest held calls through; the gate stays closed. */
  releaseSome(count: number): void {
    for (const wake of this.waiters.splice(0, count)) {
      wake();
    }
  }

  /** Let through only the held call at `index` (0 = oldest), to complete calls out of order. */
  releaseAt(index: number): void {
    this.waiters.splice(index, 1)[0]?.();
  }

  /** Close the gate again for future calls. */
  hold(): void {
    this.open = false;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  read(offset: number, target: Buffer): Promise<void> {
    return this.gated(() => this.inner.read(offset, target));
  }

  write(offset: number, data: Buffer, options?: WriteOptions): Promise<void> {
    return this.gated(() => this.inner.write(offset, data, options));
  }

  flush(): Promise<void> {
    return this.gated(() => this.inner.flush());
  }

  trim(offset: number, lengthBytes: number, options?: TrimOptions): Promise<void> {
    return this.gated(() => this.inner.trim(offset, lengthBytes, options));
  }

  writeZeroes(offset: number, lengthBytes: number, options?: ZeroOptions): Promise<void> {
    return this.gated(() => this.inner.writeZeroes(offset, lengthBytes, options));
  }

  blockStatus(offset: number, lengthBytes: number): Promise<ExtentStatus[]> {
    return this.gated(() => this.inner.blockStatus(offset, lengthBytes));
  }

  private async gated<T>(operation: () => Promise<T>): Promise<T> {
    this.started += 1;
    this.inProgress += 1;
    this.maxInProgress = Math.max(this.maxInProgress, this.inProgress);
    try {
      if (!this.open) {
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
      return await operation();
    } finally {
      this.inProgress -= 1;
    }
  }
}
