/**
 * The one data-path interface. The pool's volume store, the replicated
 * device of later issues and test doubles implement it; NBD and iSCSI
 * translate wire requests into calls on it and know nothing below.
 *
 * Callers validate range and flags at the edge (the protocol servers); an
 * implementation asserts the same facts and throws PlinthError
 * OUT_OF_RANGE / INVALID_ARGUMENT rather than touching a disk on a bad request.
 *
 * Buffers: write() must not keep `data`, and read() must not keep `target`,
 * after its promise settles — the NBD server recycles both (buffer-pool.ts).
 *
 * Durability: a write is durable once it completed with `fua`, or once a
 * later flush() completed. flush() covers every write that completed before
 * it was called, from any caller of the same device (NBD CAN_MULTI_CONN).
 */
export interface BlockCapabilities {
  readonly readOnly: boolean;
  readonly fua: boolean;
  readonly trim: boolean;
  readonly writeZeroes: boolean;
  /** writeZeroes with fastZero fails fast (NOT_SUPPORTED) instead of writing zero bytes slowly. */
  readonly fastZero: boolean;
  readonly blockStatus: boolean;
  /** A flush from any connection covers writes completed on every connection. */
  readonly multiConn: boolean;
}

export interface WriteOptions {
  /** Force unit access: durable before the promise resolves. */
  readonly fua?: boolean;
}

export interface ZeroOptions {
  readonly fua?: boolean;
  /** Keep the range allocated (write zero bytes) instead of punching a hole. */
  readonly noHole?: boolean;
  /** Fail with NOT_SUPPORTED unless zeroing is faster than writing zeroes. */
  readonly fastZero?: boolean;
}

export interface TrimOptions {
  readonly fua?: boolean;
}

/** One run of a block-status answer (NBD base:allocation semantics). */
export interface ExtentStatus {
  readonly lengthBytes: number;
  /** Not allocated: no space is used for this run. */
  readonly hole: boolean;
  /** Reads as zeroes. */
  readonly zero: boolean;
}

export interface BlockSizeHints {
  readonly minimumBytes: number;
  readonly preferredBytes: number;
  readonly maximumBytes: number;
}

export interface BlockDevice {
  readonly sizeBytes: number;
  readonly capabilities: BlockCapabilities;
  readonly blockSize: BlockSizeHints;
  /** Fill `target` with the bytes at [offset, offset + target.length). */
  read(offset: number, target: Buffer): Promise<void>;
  write(offset: number, data: Buffer, options?: WriteOptions): Promise<void>;
  flush(): Promise<void>;
  trim(offset: number, lengthBytes: number, options?: TrimOptions): Promise<void>;
  writeZeroes(offset: number, lengthBytes: number, options?: ZeroOptions): Promise<void>;
  /**
   * Allocation status from `offset`: runs covering at least the first byte
   * and at most `lengthBytes`, in order, contiguous, each lengthBytes > 0.
   */
  blockStatus(offset: number, lengthBytes: number): Promise<ExtentStatus[]>;
  /**
   * Optional fast paths; callers use them when present and fall back to
   * read()/write() otherwise (same contracts, same validation).
   *
   * readInline/writeInline complete the I/O synchronously and return true
   * when they can (e.g. small page-cache I/O, pool inline-io-policy.ts), or
   * return false having done nothing; errors throw. They save the promise
   * layers per request on the qd1 path. writeInline has no options: FUA
   * writes go through write().
   */
  readInline?(offset: number, target: Buffer): boolean;
  writeInline?(offset: number, data: Buffer): boolean;
  /**
   * write() of the concatenation of `chunks` (kept as the socket delivered
   * them, so nothing is assembled in memory). Same buffer rule as write():
   * the chunks are not kept after the promise settles. Callers keep the
   * chunk count small (NBD: at most MAX_WRITE_PAYLOAD_CHUNKS).
   */
  writev?(offset: number, chunks: readonly Buffer[], options?: WriteOptions): Promise<void>;
}

