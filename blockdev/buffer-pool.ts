import { PlinthError } from '../common/plinth-error.js';

/**
 * Recycled buffers for READ replies and assembled WRITE payloads.
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
  /**
   * Smaller requests use plain allocations: Node cuts those under 4 KiB
   * from its own slab, but each larger one is an ArrayBuffer of its own,
   * which the GC chases at high request rates (iSCSI pools from 4 KiB up,
   * iscsi-server.ts).
   */
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
  /** Idle backing stores by class exponent (index). */
  readonly #idle: ArrayBuffer[][] = Array.from({ length: 32 }, () => []);
  /**
   * The state of every backing store the pool made: lent (its class
   * exponent, >= 0) or idle (-1 - exponent). Weak, so a buffer that is
   * never released (its socket write failed, its connection died) is simply
   * collected: the pool never leaks and never recycles it. One map, not a
   * lent map and an idle set: this runs twice per 4 KiB iSCSI READ.
   */
  readonly #state = new WeakMap<ArrayBuffer, number>();
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
    const recycled = this.#idle[exponent]?.pop();
    if (recycled !== undefined) {
      this.#idleBytes -= recycled.byteLength;
    }
    const backing = recycled ?? new ArrayBuffer(classCapacity(exponent));
    if ((this.#state.get(backing) ?? -1) >= 0) {
      throw new PlinthError('INTERNAL', 'buffer pool handed out a buffer that is still lent');
    }
    this.#state.set(backing, exponent);
    return Buffer.from(backing, 0, lengthBytes);
  }

  /** Give a buffer back once nothing uses it any more; buffers the pool did not lend are ignored. */
  release(buffer: Buffer): void {
    const backing = buffer.buffer;
    if (!(backing instanceof ArrayBuffer)) {
      return;
    }
    const exponent = this.#state.get(backing);
    if (exponent === undefined) {
      return;
    }
    if (exponent < 0) {
      throw new PlinthError('INTERNAL', 'buffer released twice to the buffer pool');
    }
    if (this.#idleBytes + backing.byteLength > this.#options.maxIdleBytes) {
      this.#state.delete(backing);
      return; // over the idle bound: let the GC have it
    }
    this.#idle[exponent]?.push(backing);
    this.#state.set(backing, -1 - exponent);
    this.#idleBytes += backing.byteLength;
  }

  get idleBytes(): number {
    return this.#idleBytes;
  }

  /** True while `buffer` is lent by this pool and not yet released. */
  isLent(buffer: Buffer): boolean {
    return buffer.buffer instanceof ArrayBuffer && (this.#state.get(buffer.buffer) ?? -1) >= 0;
  }
}

/** ceil(log2(lengthBytes - headroom)), at least 0; lengths are below 2^31 (maxBufferBytes). */
function classExponent(lengthBytes: number): number {
  return 32 - Math.clz32(Math.max(1, lengthBytes - CLASS_HEADROOM_BYTES) - 1);
}

function classCapacity(exponent: number): number {
  return 2 ** exponent + CLASS_HEADROOM_BYTES;
}
