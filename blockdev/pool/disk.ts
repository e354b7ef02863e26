import fs from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { failpoints, hitFailpoint } from '../../common/failpoints/failpoints.js';
import { PlinthError } from '../../common/plinth-error.js';
import { CoalescedTask } from './coalesced-task.js';
import { toDiskError } from './disk-errors.js';
import { type DiskFileIo, type DiskLayer, directFileIo } from './disk-file-io.js';
import { closeFile, fstatBig, ftruncate, openFile } from './fs-callbacks.js';
import { DEFAULT_INLINE_IO_OPTIONS, type InlineIoOptions, InlineIoPolicy, type InlineIoStats } from './inline-io-policy.js';

/**
 * One pool disk: an open file descriptor on a raw block device or a plain
 * file, with full-length positional I/O, a dirty flag, and a coalesced
 * fdatasync (one in flight per disk; callers that arrive meanwhile share
 * the next one). Small reads and writes run inline on the event loop while
 * they are fast (inline-io-policy.ts); fdatasync always goes to the threadpool.
 *
 * All file I/O goes through a DiskFileIo (disk-file-io.ts): the fd itself,
 * or a test layer such as power-loss-disk.ts. Disk faults (issue 7) are
 * failpoints here, under every data path:
 *
 *   disk.read   subject: the disk extent index of the position (once identify() ran)
 *   disk.write  subject: likewise (write and writev); error(ENOSPC) = a full disk
 *   disk.sync   subject: the pool disk index; stall(MS) = a stalled disk
 *
 * Their errors are the pool's own codes (IO_ERROR, NO_SPACE). While any
 * failpoint is armed the inline fast paths step aside, so a stall sleeps
 * on the async path instead of freezing the event loop.
 */
export type DiskKind = 'file' | 'block';

export interface OpenDiskOptions {
  readonly path: string;
  /** Size for a new (or empty) file disk; checked against nothing for existing disks. */
  readonly sizeBytes?: number;
  /** False when the path is a recorded pool disk: a missing one must not be recreated empty. */
  readonly mayCreate: boolean;
  /** Inline I/O policy of this disk (default DEFAULT_INLINE_IO_OPTIONS). */
  readonly inlineIo?: InlineIoOptions;
  /** A test layer under the disk's I/O (default: none, straight on the fd). */
  readonly layer?: DiskLayer;
}

interface DiskFields {
  path: string;
  kind: DiskKind;
  sizeBytes: number;
  createdSparse: boolean;
  io: DiskFileIo;
  inlineIo: InlineIoOptions;
}

/** Who a disk is in the pool, for failpoint subjects; unknown until the pool matched it. */
export interface DiskIdentity {
  readonly diskIndex: number;
  readonly extentSizeBytes: number;
}

export class Disk {
  readonly path: string;
  readonly kind: DiskKind;
  readonly sizeBytes: number;
  /** True when this open created the file (or found it empty) and sized it sparse: every byte reads zero. */
  readonly createdSparse: boolean;
  /** Set when a write completes; cleared when a sync starts. */
  dirty = false;
  readonly #io: DiskFileIo;
  #identity: DiskIdentity | null = null;
  readonly #sync: CoalescedTask;
  readonly #inline: InlineIoPolicy;
  #closed = false;

  constructor(fields: DiskFields) {
    this.path = fields.path;
    this.kind = fields.kind;
    this.sizeBytes = fields.sizeBytes;
    this.createdSparse = fields.createdSparse;
    this.#io = fields.io;
    this.#sync = new CoalescedTask(() => this.#fdatasync());
    this.#inline = new InlineIoPolicy(fields.inlineIo, performance);
  }

  /** How many ops ran inline or on the threadpool, for metrics and tests. */
  inlineIoStats(): InlineIoStats {
    return this.#inline.stats();
  }

  /** The pool matched this disk: failpoint subjects can name its index and extents from now on. */
  identify(identity: DiskIdentity): void {
    this.#identity = identity;
  }

  /** Read exactly `lengthBytes` at `position` into `target[targetOffset..]`. */
  read(target: Buffer, targetOffset: number, lengthBytes: number, position: number): Promise<void> {
    try {
      if (this.tryReadInline(target, targetOffset, lengthBytes, position)) {
        return Promise.resolve();
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#readOnThreadpool(target, targetOffset, lengthBytes, position);
  }

  /**
   * The synchronous fast path of read(): true when the policy allowed inline
   * I/O and the read completed (errors throw); false when nothing was done
   * and the caller must use read()'s threadpool path (via read()).
   */
  tryReadInline(target: Buffer, targetOffset: number, lengthBytes: number, position: number): boolean {
    if (failpoints.armed || !this.#inline.tryInline(lengthBytes)) {
      return false;
    }
    let bytesRead: number;
    try {
      bytesRead = this.#readInline(target, targetOffset, lengthBytes, position);
    } catch (err) {
      throw toDiskError(err, { path: this.path, operation: 'read', position, lengthBytes });
    }
    this.#checkFullRead(bytesRead, lengthBytes, position);
    return true;
  }

  async #readOnThreadpool(target: Buffer, targetOffset: number, lengthBytes: number, position: number): Promise<void> {
    this.#inline.noteThreadpoolOp();
    let bytesRead: number;
    try {
      if (failpoints.armed) await hitFailpoint('disk.read', this.#extentSubject(position));
      bytesRead = await this.#io.read(target, targetOffset, lengthBytes, position);
    } catch (err) {
      throw toDiskError(err, { path: this.path, operation: 'read', position, lengthBytes });
    }
    this.#checkFullRead(bytesRead, lengthBytes, position);
  }

  #checkFullRead(bytesRead: number, lengthBytes: number, position: number): void {
    if (bytesRead !== lengthBytes) {
      throw new PlinthError('IO_ERROR', `disk ${this.path}: short read at ${position} (${bytesRead} of ${lengthBytes} bytes)`, {
        path: this.path,
        position,
        lengthBytes,
        bytesRead,
      });
    }
  }

  write(source: Buffer, sourceOffset: number, lengthBytes: number, position: number): Promise<void> {
    try {
      if (this.tryWriteInline(source, sourceOffset, lengthBytes, position)) {
        return Promise.resolve();
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#writeOnThreadpool(() => this.#io.write(source, sourceOffset, lengthBytes, position), lengthBytes, position);
  }

  /** The synchronous fast path of write(), like tryReadInline. */
  tryWriteInline(source: Buffer, sourceOffset: number, lengthBytes: number, position: number): boolean {
    if (failpoints.armed || !this.#inline.tryInline(lengthBytes)) {
      return false;
    }
    const startedMs = this.#inline.startInline();
    try {
      this.#io.writeSync(source, sourceOffset, lengthBytes, position);
    } catch (err) {
      throw toDiskError(err, { path: this.path, operation: 'write', position, lengthBytes });
    } finally {
      this.#inline.finishInline(startedMs);
    }
    this.dirty = true;
    return true;
  }

  /**
   * Write `chunks` (lengthBytes in all, fewer than IOV_MAX) back to back at
   * `position` with one pwritev: a WRITE payload kept as its socket chunks
   * reaches the page cache without being assembled in memory first.
   */
  writev(chunks: readonly Buffer[], lengthBytes: number, position: number): Promise<void> {
    if (failpoints.armed || !this.#inline.tryInline(lengthBytes)) {
      return this.#writeOnThreadpool(() => this.#io.writev(chunks, lengthBytes, position), lengthBytes, position);
    }
    const startedMs = this.#inline.startInline();
    try {
      this.#io.writevSync(chunks, lengthBytes, position);
    } catch (err) {
      return Promise.reject(toDiskError(err, { path: this.path, operation: 'write', position, lengthBytes }));
    } finally {
      this.#inline.finishInline(startedMs);
    }
    this.dirty = true;
    return Promise.resolve();
  }

  async #writeOnThreadpool(issue: () => Promise<void>, lengthBytes: number, position: number): Promise<void> {
    this.#inline.noteThreadpoolOp();
    try {
      if (failpoints.armed) await hitFailpoint('disk.write', this.#extentSubject(position));
      await issue();
    } catch (err) {
      throw toDiskError(err, { path: this.path, operation: 'write', position, lengthBytes });
    }
    this.dirty = true;
  }

  /** Make every write completed before this call durable. */
  sync(): Promise<void> {
    return this.#sync.run();
  }

  async close(): Promise<void> {
    if (this.#closed) {
      return;
    }
    this.#closed = true;
    try {
      await this.#io.close();
    } catch (err) {
      throw toDiskError(err, { path: this.path, operation: 'close' });
    }
  }

  #readInline(target: Buffer, targetOffset: number, lengthBytes: number, position: number): number {
    const startedMs = this.#inline.startInline();
    try {
      return this.#io.readSync(target, targetOffset, lengthBytes, position);
    } finally {
      this.#inline.finishInline(startedMs);
    }
  }

  async #fdatasync(): Promise<void> {
    // Clear before syncing: a write completing during the sync sets it again
    // and is picked up by the next flush (it was not covered by this one).
    this.dirty = false;
    try {
      if (failpoints.armed) await hitFailpoint('disk.sync', this.#identity === null ? undefined : String(this.#identity.diskIndex));
      await this.#io.fdatasync();
    } catch (err) {
      this.dirty = true;
      throw toDiskError(err, { path: this.path, operation: 'fdatasync' });
    }
  }

  /** The failpoint subject of a read or write: the extent index of `position` on this disk. */
  #extentSubject(position: number): string | undefined {
    return this.#identity === null ? undefined : String(Math.floor(position / this.#identity.extentSizeBytes));
  }
}

/** Open (or create sparse) the disk at `options.path` and learn its size. */
export async function openDisk(options: OpenDiskOptions, logger: Logger): Promise<Disk> {
  const { path } = options;
  let fd: number;
  let created = false;
  try {
    // O_EXCL without O_CREAT claims a block device exclusively (EBUSY if
    // mounted or in use, open(2)); Linux ignores it for regular files.
    fd = await openFile(path, fs.constants.O_RDWR | fs.constants.O_EXCL);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw toDiskError(err, { path, operation: 'open' });
    }
    if (!options.mayCreate) {
      throw new PlinthError('DISK_MISSING', `pool disk ${path} is recorded in the pool but does not exist`, { path });
    }
    if (options.sizeBytes === undefined) {
      throw new PlinthError('INVALID_ARGUMENT', `disk ${path} does not exist; give a size (--disk ${path}:SIZE) to create it`, { path });
    }
    fd = await createFile(path);
    created = true;
  }
  try {
    return await describeOpenDisk(fd, options, created, logger);
  } catch (err) {
    await closeFile(fd).catch((closeErr: unknown) => logger.warn({ err: closeErr, path }, 'closing disk after a failed open failed'));
    throw err;
  }
}

async function createFile(path: string): Promise<number> {
  try {
    return await openFile(path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  } catch (err) {
    throw toDiskError(err, { path, operation: 'create' });
  }
}

async function describeOpenDisk(fd: number, options: OpenDiskOptions, created: boolean, logger: Logger): Promise<Disk> {
  const { path } = options;
  const inlineIo = options.inlineIo ?? DEFAULT_INLINE_IO_OPTIONS;
  const stats = await fstatBig(fd).catch((err: unknown) => {
    throw toDiskError(err, { path, operation: 'fstat' });
  });
  if (stats.isBlockDevice()) {
    const sizeBytes = await blockDeviceSizeBytes(stats.rdev, path);
    if (options.sizeBytes !== undefined && options.sizeBytes !== sizeBytes) {
      logger.warn({ path, givenSizeBytes: options.sizeBytes, sizeBytes }, 'size given for a block device is ignored; using the device size');
    }
    return new Disk({ path, kind: 'block', sizeBytes, createdSparse: false, io: wrapFd(fd, options), inlineIo });
  }
  if (!stats.isFile()) {
    throw new PlinthError('INVALID_ARGUMENT', `disk ${path} is neither a block device nor a regular file`, { path });
  }
  const currentSizeBytes = Number(stats.size);
  if ((created || currentSizeBytes === 0) && options.sizeBytes !== undefined) {
    // A file we just created (or found empty) is sized sparse: it reads as
    // zeroes everywhere, which lets the allocator skip zeroing fresh extents.
    await ftruncate(fd, options.sizeBytes).catch((err: unknown) => {
      throw toDiskError(err, { path, operation: 'ftruncate' });
    });
    return new Disk({ path, kind: 'file', sizeBytes: options.sizeBytes, createdSparse: true, io: wrapFd(fd, options), inlineIo });
  }
  if (options.sizeBytes !== undefined && options.sizeBytes !== currentSizeBytes) {
    logger.warn({ path, givenSizeBytes: options.sizeBytes, sizeBytes: currentSizeBytes }, 'existing file disk is used at its current size');
  }
  return new Disk({ path, kind: 'file', sizeBytes: currentSizeBytes, createdSparse: false, io: wrapFd(fd, options), inlineIo });
}

function wrapFd(fd: number, options: OpenDiskOptions): DiskFileIo {
  return options.layer === undefined ? directFileIo(fd) : options.layer.wrap(fd, options.path);
}

/**
 * Size of a block device: Linux exposes it in 512-byte sectors at
 * /sys/dev/block/MAJOR:MINOR/size, whatever the logical block size.
 * dev_t split per glibc's gnu_dev_major/gnu_dev_minor.
 */
export async function blockDeviceSizeBytes(rdev: bigint, path: string): Promise<number> {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  const sysPath = `/sys/dev/block/${major}:${minor}/size`;
  let text: string;
  try {
    text = await readFile(sysPath, 'utf8');
  } catch (err) {
    throw toDiskError(err, { path, operation: `read ${sysPath}` });
  }
  const sectors = Number.parseInt(text.trim(), 10);
  if (!Number.isSafeInteger(sectors) || sectors < 0) {
    throw new PlinthError('IO_ERROR', `disk ${path}: unreadable size "${text.trim()}" in ${sysPath}`, { path, sysPath });
  }
  return sectors * 512;
}
