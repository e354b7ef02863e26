import { PlinthError } from '../common/plinth-error.js';

/**
 * Recycled buffers for large READ replies and assembled WRITE payloads.
 *
 * Why: at 1 MiB x qd8 a fresh Buffer per request cost ~12 % of the loop in
 * garbage collection (external memory pressure triggers full GCs) plus page
 * faults on first touch of every fresh 1 MiB (`_copyActual` ~150 µs per MiB
 * when assembling a WRITE payload into new memory). A recycled buffer is
 * already mapped and never reaches the GC.
 *
 * Ownership rule (the one thing that keeps data): a buffer is released
 * exactly once, by whoever holds it last, after nothing reads or writes it
 * any more: a READ reply after the socket's write callback reported success,
 * a WRITE payload after the device write settled. Releasing twice throws;
 * buffers the pool did not lend (views of socket chunks, small or huge
 * allocations) are ignored by release(), so callers need not tell them apart.
 *
 * Bounded: buffers are pooled only between minPooledBytes and
 * maxBufferBytes, and at most maxIdleBytes sit idle in the pool; anything
 * beyond goes to the GC. Lent buffers are bounded by the connections'
 * in-flight byte limits, not here.
 */

export interface BufferPoolOptions {
  /** Smaller requests use plain allocations (cheap, and Node slab-allocates the smallest). */
  readonly minPooledBytes: number;
  /** Larger requests are rare and would pin too much memory. */
  readonly maxBufferBytes: number;
  /** Idle bytes the pool keeps for reuse. */
  readonly maxIdleBytes: number;
}

export const DEFAULT_BUFFER_POOL_OPTIONS: BufferPoolOptions = Object.freeze({
  minPooledBytes: 64 * 1024,
  maxBufferBytes: 8 * 1024 * 1024,
  maxIdleBytes: 32 * 1024 * 1024,
});

/**
 * Size classes are a power of two plus this headroom, so a 1 MiB READ reply
 * (1 MiB + 32 header bytes) fits the 1 MiB class instead of doubling.
 */
const CLASS_HEADROOM_BYTES = 64;

export class BufferPool {
  readonly #options: BufferPoolOptions;
  /** Idle backing stores by class exponent. */
  readonly #idle = new Map<number, ArrayBuffer[]>();
  /**
   * Lent backing stores and their class exponent. Weak, so a buffer that is
   * never released (its socket write failed, its connection died) is simply
   * collected: the pool never leaks and never recycles it.
   */
  readonly #lent = new WeakMap<ArrayBuffer, number>();
  /** Membership of #idle, to catch a double release. */
  readonly #idleSet = new Set<ArrayBuffer>();
  #idleBytes = 0;

  constructor(options: BufferPoolOptions = DEFAULT_BUFFER_POOL_OPTIONS) {
    this.#options = options;
  }

  /** A buffer of exactly `lengthBytes` (contents undefined, like Buffer.allocUnsafe). */
  acquire(lengthBytes: number): Buffer {
    if (lengthBytes < this.#options.minPooledBytes || lengthBytes > this.#options.maxBufferBytes) {
      return Buffer.allocUnsafe(lengthBytes);
    }
    const exponent = classExponent(lengthBytes);
    const recycled = this.#idle.get(exponent)?.pop();
    if (recycled !== undefined) {
      this.#idleBytes -= recycled.byteLength;
      this.#idleSet.delete(recycled);
    }
    const backing = recycled ?? new ArrayBuffer(classCapacity(exponent));
    if (this.#lent.has(backing)) {
      throw new PlinthError('INTERNAL', 'buffer pool handed out a buffer that is still lent');
    }
    this.#lent.set(backing, exponent);
    return Buffer.from(backing, 0, lengthBytes);
  }

  /** Give a buffer back once nothing uses it any more; buffers the pool did not lend are ignored. */
  release(buffer: Buffer): void {
    const backing = buffer.buffer;
    if (!(backing instanceof ArrayBuffer)) {
      return;
    }
    const exponent = this.#lent.get(backing);
    if (exponent === undefined) {
      if (this.#idleSet.has(backing)) {
        throw new PlinthError('INTERNAL', 'buffer released twice to the buffer pool');
      }
      return;
    }
    this.#lent.delete(backing);
    if (this.#idleBytes + backing.byteLength > this.#options.maxIdleBytes) {
      return; // over the idle bound: let the GC have it
    }
    let list = this.#idle.get(exponent);
    if (list === undefined) {
      list = [];
      this.#idle.set(exponent, list);
    }
    list.push(backing);
    this.#idleSet.add(backing);
    this.#idleBytes += backing.byteLength;
  }

  get idleBytes(): number {
    return this.#idleBytes;
  }

  /** True while `buffer` is lent by this pool and not yet released. */
  isLent(buffer: Buffer): boolean {
    return buffer.buffer instanceof ArrayBuffer && this.#lent.has(buffer.buffer);
  }
}

function classExponent(lengthBytes: number): number {
  return Math.max(0, Math.ceil(Math.log2(Math.max(1, lengthBytes - CLASS_HEADROOM_BYTES))));
}

function classCapacity(exponent: number): number {
  return 2 ** exponent + CLASS_HEADROOM_BYTES;
}
