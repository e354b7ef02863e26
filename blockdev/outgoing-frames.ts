/**
 * The frames a socket sends in one event-loop turn (replica links, NBD and
 * iSCSI replies), gathered in one buffer and handed to the socket with one
 * write when the turn's I/O callbacks are done (setImmediate by default).
 *
 * Why (perf round 4, 4k randwrite qd32 on 3 replicas): a socket.write per
 * frame under cork/uncork cost the owner a Buffer allocation (4 KiB + head,
 * outside Node's small-buffer pool, so a malloc) and a pass through the
 * Writable machinery per request per replica, and each replica the same per
 * reply. Here a turn's frames are encoded straight into a slab: one
 * allocation per `slabBytes` of frames and one socket write per turn.
 *
 * Ownership: bytes handed to the socket are not written again while the
 * socket may still read them (frames are appended after them, and a full
 * slab is replaced), so a socket that queues a write keeps valid data. Only
 * when a flush leaves the socket with nothing buffered (writableLength 0:
 * every byte ever handed to it is in the kernel) does the slab start over
 * from its first byte. Why (perf round 5): a fresh 64 KiB slab per 15
 * frames was external memory that V8 answers with major GCs (concurrent
 * marking and sweeping were ~10% of the owner's CPU in the 3-replica
 * bench); on loopback almost every flush completes at once, so one slab
 * per link now serves for good. A chunk appended as is (a large payload)
 * must stay unchanged until it was sent, as before.
 *
 * NBD replies use the same batching (perf round 2 of issues 4/5): copy()
 * takes a small reply into the slab (the caller may reuse its buffer at
 * once), append() with `afterWrite` queues a large READ reply as is and
 * reports when the socket wrote it, so its pooled buffer can be recycled.
 */

/** What this needs of a net.Socket. */
export interface FrameSink {
  write(chunk: Buffer, callback?: (error?: Error | null) => void): boolean;
  cork(): void;
  uncork(): void;
  /** Bytes written and not yet handed to the OS (net.Socket); without it the slab is never reused. */
  readonly writableLength?: number;
}

export interface OutgoingFramesOptions {
  /** Size of each slab; a larger frame gets a slab of its own size. */
  readonly slabBytes?: number;
  /** Runs the flush after this turn's I/O callbacks (default setImmediate). */
  readonly schedule?: (flush: () => void) => void;
}

/** 15 frames of a 4 KiB write per slab; a link that never sends allocates none. */
const DEFAULT_SLAB_BYTES = 64 * 1024;
const NO_SLAB = Buffer.alloc(0);

export class OutgoingFrames {
  readonly #sink: FrameSink;
  readonly #slabBytes: number;
  readonly #schedule: (flush: () => void) => void;
  #slab: Buffer;
  /** First byte of the slab not yet handed to the socket. */
  #start = 0;
  /** End of the reserved bytes in the slab. */
  #used = 0;
  /** Segments to send before the slab's [start, used): earlier slab pieces and appended chunks, in order. */
  #queued: Buffer[] = [];
  /** Callbacks of appended chunks (rare: large NBD READ replies), run once the socket wrote them. */
  #afterWrite: Map<Buffer, () => void> | undefined;
  /** The chunk appended last in this turn, until the flush hands it to the socket. */
  #lastAppended: Buffer | undefined;
  #scheduled = false;
  #discarded = false;
  /** Open beginBatch() calls; while above 0 nothing is scheduled, the last endBatch() flushes. */
  #batchDepth = 0;
  /** Bytes reserved or appended since the last flush: not yet handed to the socket. */
  #unsentBytes = 0;

  constructor(sink: FrameSink, options: OutgoingFramesOptions = {}) {
    this.#sink = sink;
    this.#slabBytes = options.slabBytes ?? DEFAULT_SLAB_BYTES;
    this.#schedule = options.schedule ?? ((flush) => setImmediate(flush));
    this.#slab = NO_SLAB;
  }

  /** The buffer that reserve() offsets point into (changes when a slab fills up). */
  get slab(): Buffer {
    return this.#slab;
  }

  /** True while frames of this turn wait for the flush. */
  get pending(): boolean {
    return this.#scheduled;
  }

  /**
   * True when `bytes` or more wait to reach the kernel, counting this
   * turn's frames. Those are handed to the socket first, so a true answer
   * is about the socket's own buffer, and its 'drain' event follows (when
   * `bytes` is at least the socket's writableHighWaterMark). Why: a reader
   * that paces itself by `writableLength` alone let a turn's replies pile up
   * unseen (100 x 1 MiB NBD READs in one segment were all served to a
   * client that read none of them).
   */
  hasBacklogOf(bytes: number): boolean {
    const socketBytes = this.#sink.writableLength ?? 0;
    if (this.#unsentBytes + socketBytes < bytes) return false;
    if (this.#unsentBytes > 0) this.flush();
    return (this.#sink.writableLength ?? 0) >= bytes;
  }

  /** Room for `bytes` of frame in this turn's batch: encode into `slab` at the returned offset, now. */
  reserve(bytes: number): number {
    if (this.#used + bytes > this.#slab.length) this.#replaceSlab(bytes);
    const at = this.#used;
    this.#used += bytes;
    this.#unsentBytes += bytes;
    this.#arm();
    return at;
  }

  /** Copy `bytes` into this turn's batch: the caller may reuse its buffer as soon as this returns. */
  copy(bytes: Buffer): void {
    const at = this.reserve(bytes.length);
    this.#slab.set(bytes, at); // TypedArray set: a plain memmove, without Buffer#copy's checks
  }

  /**
   * Send `chunk` as is after everything reserved so far (a large payload,
   * not copied). `afterWrite` runs once the socket wrote it, not if the
   * write failed (a dying handle may still use the bytes) or was discarded.
   */
  append(chunk: Buffer, afterWrite?: () => void): void {
    this.#cut();
    this.#queued.push(chunk);
    this.#unsentBytes += chunk.length;
    if (afterWrite !== undefined) (this.#afterWrite ??= new Map()).set(chunk, afterWrite);
    this.#lastAppended = chunk;
    this.#arm();
  }

  /**
   * Run `callback` once every chunk appended in this turn was written (the
   * socket writes in order), or now when none was: copied bytes are free at
   * once. Not at all if a write fails or the frames are discarded. For a
   * buffer whose views were appended (iSCSI Data-In of a large READ).
   */
  afterQueued(callback: () => void): void {
    const last = this.#lastAppended;
    if (last === undefined) {
      callback();
      return;
    }
    const afterWrite = (this.#afterWrite ??= new Map());
    const earlier = afterWrite.get(last);
    afterWrite.set(
      last,
      earlier === undefined
        ? callback
        : () => {
            earlier();
            callback();
          },
    );
  }

  /**
   * Frames sent until the matching endBatch() go out at its end, in one
   * write, instead of on the scheduled flush: a socket data callback's
   * replies leave before it returns. Why (perf, iSCSI 4k randread qd1): a
   * read answered from the page cache otherwise waited for the next tick,
   * one more trip through Node's tick queue per request.
   */
  beginBatch(): void {
    this.#batchDepth += 1;
  }

  endBatch(): void {
    this.#batchDepth -= 1;
    if (this.#batchDepth === 0) this.flush(); // a no-op when nothing is waiting
  }

  /** Hand this turn's frames to the socket now. */
  readonly flush = (): void => {
    this.#scheduled = false;
    if (this.#discarded) return;
    this.#lastAppended = undefined;
    this.#unsentBytes = 0;
    if (this.#queued.length === 0) {
      // The usual turn, only copied frames: one piece of the slab, no list.
      if (this.#used === this.#start) return;
      const piece = this.#slab.subarray(this.#start, this.#used);
      this.#start = this.#used;
      this.#sink.write(piece);
    } else {
      this.#writeQueued();
    }
    // All of it reached the kernel (the usual case): the slab's bytes are free again.
    if (this.#sink.writableLength === 0) {
      this.#start = 0;
      this.#used = 0;
    }
  };

  #writeQueued(): void {
    this.#cut();
    const chunks = this.#queued;
    this.#queued = [];
    const only = chunks.length === 1 ? chunks[0] : undefined;
    if (only !== undefined) {
      this.#write(only);
    } else {
      this.#sink.cork();
      for (const chunk of chunks) this.#write(chunk);
      this.#sink.uncork();
    }
  }

  /** The socket is gone: drop what was not sent and send nothing more. */
  discard(): void {
    this.#discarded = true;
    this.#queued = [];
    this.#afterWrite = undefined;
    this.#lastAppended = undefined;
    this.#unsentBytes = 0;
    this.#start = this.#used;
  }

  #write(chunk: Buffer): void {
    const afterWrite = this.#afterWrite?.get(chunk);
    if (afterWrite === undefined) {
      this.#sink.write(chunk);
      return;
    }
    this.#afterWrite?.delete(chunk);
    this.#sink.write(chunk, (error) => {
      if (error === null || error === undefined) afterWrite();
    });
  }

  #arm(): void {
    // Inside a batch, endBatch() sends it (with whatever a scheduled flush was waiting for).
    if (this.#scheduled || this.#discarded || this.#batchDepth > 0) return;
    this.#scheduled = true;
    this.#schedule(this.flush);
  }

  /** Queue the slab's unsent bytes as one segment. */
  #cut(): void {
    if (this.#used === this.#start) return;
    this.#queued.push(this.#slab.subarray(this.#start, this.#used));
    this.#start = this.#used;
  }

  #replaceSlab(minBytes: number): void {
    this.#cut();
    this.#slab = Buffer.allocUnsafe(Math.max(this.#slabBytes, minBytes));
    this.#start = 0;
    this.#used = 0;
  }
}
