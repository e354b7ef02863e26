import { toError } from '../../common/plinth-error.js';
import {
  closeFile,
  fdatasync,
  readFully,
  readFullySync,
  writeFully,
  writeFullySync,
  writevFully,
  writevFullySync,
} from './fs-callbacks.js';

/**
 * The file-descriptor I/O under a pool Disk (disk.ts): every read, write,
 * writev and fdatasync of the data path — inline and threadpool alike —
 * goes through one of these. The real one is the open fd itself; a test
 * disk layer (power-loss-disk.ts) replaces it to keep un-synced writes in
 * memory and lose some of them at a simulated power cut (issue 7).
 *
 * Same contracts as fs-callbacks.ts: reads resolve with the bytes read
 * (short only at end of file), writes complete every byte, errors are the
 * OS's NodeJS.ErrnoException (disk.ts maps them to PlinthError).
 */
export interface DiskFileIo {
  read(target: Buffer, targetOffset: number, lengthBytes: number, position: number): Promise<number>;
  readSync(target: Buffer, targetOffset: number, lengthBytes: number, position: number): number;
  write(source: Buffer, sourceOffset: number, lengthBytes: number, position: number): Promise<void>;
  writeSync(source: Buffer, sourceOffset: number, lengthBytes: number, position: number): void;
  writev(chunks: readonly Buffer[], lengthBytes: number, position: number): Promise<void>;
  writevSync(chunks: readonly Buffer[], lengthBytes: number, position: number): void;
  /** Make every write completed before this call durable. */
  fdatasync(): Promise<void>;
  close(): Promise<void>;
}

/** How the pool opens the I/O of a disk it has just opened: the identity by default, a test layer otherwise. */
export interface DiskLayer {
  /** Short name for logs, e.g. `power-loss`. */
  readonly name: string;
  wrap(fd: number, path: string): DiskFileIo;
}

/**
 * The real thing: positional I/O straight on the fd. A large write into
 * file regions that no large write of this fd touched before is cut into
 * folio-sized pieces (MAX_WRITE_PIECE_BYTES says why); later large writes
 * there overwrite folios that already exist and go out whole.
 */
export function directFileIo(fd: number): DiskFileIo {
  const written = new WrittenRegions();
  const split = (lengthBytes: number, position: number): boolean => lengthBytes > MAX_WRITE_PIECE_BYTES && written.markFirst(position, lengthBytes);
  return {
    read: (target, targetOffset, lengthBytes, position) => readFully(fd, target, targetOffset, lengthBytes, position),
    readSync: (target, targetOffset, lengthBytes, position) => readFullySync(fd, target, targetOffset, lengthBytes, position),
    write: (source, sourceOffset, lengthBytes, position) => {
      if (!split(lengthBytes, position)) return writeFully(fd, source, sourceOffset, lengthBytes, position);
      return allPieces(writePieces(position, lengthBytes).map(([at, pieceBytes]) => writeFully(fd, source, sourceOffset + at - position, pieceBytes, at)));
    },
    writeSync: (source, sourceOffset, lengthBytes, position) => {
      if (!split(lengthBytes, position)) return writeFullySync(fd, source, sourceOffset, lengthBytes, position);
      for (const [at, pieceBytes] of writePieces(position, lengthBytes)) writeFullySync(fd, source, sourceOffset + at - position, pieceBytes, at);
    },
    writev: (chunks, lengthBytes, position) => {
      if (!split(lengthBytes, position)) return writevFully(fd, chunks, lengthBytes, position);
      return allPieces(writePieces(position, lengthBytes).map(([at, pieceBytes]) => writevFully(fd, chunkViews(chunks, at - position, pieceBytes), pieceBytes, at)));
    },
    writevSync: (chunks, lengthBytes, position) => {
      if (!split(lengthBytes, position)) return writevFullySync(fd, chunks, lengthBytes, position);
      for (const [at, pieceBytes] of writePieces(position, lengthBytes)) writevFullySync(fd, chunkViews(chunks, at - position, pieceBytes), pieceBytes, at);
    },
    fdatasync: () => fdatasync(fd),
    close: () => closeFile(fd),
  };
}

/** Granularity of WrittenRegions. */
export const WRITTEN_REGION_BYTES = 1024 * 1024;
/** Regions per bitmap page: 4 KiB of bits, 32 GiB of file; pages exist only where large writes went. */
const REGIONS_PER_PAGE = 32 * 1024;

/**
 * One bit per 1 MiB of file: has a large write of this fd been there? A
 * first large write creates the page cache's folios (cut into pieces, they
 * stay small); overwriting folios that exist creates none, and cutting it
 * would only add threadpool round trips (measured: ~+30% CPU per 1 MiB
 * overwrite on a replica). A region evicted from the cache since gets large
 * folios again, as before this record existed. Bounded: 4 KiB per 32 GiB.
 */
export class WrittenRegions {
  readonly #pages = new Map<number, Uint8Array>();

  /** Record [position, +lengthBytes) as written; true when part of it was not recorded before. */
  markFirst(position: number, lengthBytes: number): boolean {
    let fresh = false;
    const last = Math.floor((position + lengthBytes - 1) / WRITTEN_REGION_BYTES);
    for (let region = Math.floor(position / WRITTEN_REGION_BYTES); region <= last; region += 1) {
      const pageIndex = Math.floor(region / REGIONS_PER_PAGE);
      let page = this.#pages.get(pageIndex);
      if (page === undefined) {
        page = new Uint8Array(REGIONS_PER_PAGE / 8);
        this.#pages.set(pageIndex, page);
      }
      const bit = region % REGIONS_PER_PAGE;
      const mask = 1 << (bit & 7);
      const byte = page[bit >> 3] ?? 0;
      if ((byte & mask) === 0) {
        page[bit >> 3] = byte | mask;
        fresh = true;
      }
    }
    return fresh;
  }
}

/**
 * Largest piece of a first large write (directFileIo). Why (perf round 5, Linux
 * 6.18, ext4): the page cache sizes a new folio after the write that creates
 * it, so a 1 MiB pwrite leaves 1 MiB folios, and every later 4 KiB write
 * into one walks all 256 of its block buffers (ext4_block_write_begin,
 * block_commit_write). Measured on the 2-core bench VM: 4 KiB writes over a
 * file filled by 1 MiB writes cost 10-19 µs of CPU each, over one filled by
 * 64 KiB writes ~5 µs; and filling 1 MiB took ~2.2 ms of CPU as one write,
 * ~0.5-0.8 ms as 16 concurrent 64 KiB writes (first writes; see
 * WrittenRegions for overwrites). In the 3-replica 4k randwrite
 * bench every node paid it: ext4_block_write_begin was ~40% of the daemons' CPU.
 */
export const MAX_WRITE_PIECE_BYTES = 64 * 1024;

/** [position, bytes] of each piece of a write, cut at multiples of MAX_WRITE_PIECE_BYTES so folios stay aligned. */
export function writePieces(position: number, lengthBytes: number): [number, number][] {
  const pieces: [number, number][] = [];
  const end = position + lengthBytes;
  let at = position;
  while (at < end) {
    const next = Math.min(end, (Math.floor(at / MAX_WRITE_PIECE_BYTES) + 1) * MAX_WRITE_PIECE_BYTES);
    pieces.push([at, next - at]);
    at = next;
  }
  return pieces;
}

/** Views of `lengthBytes` of `chunks` starting `skipBytes` in (no copy). */
export function chunkViews(chunks: readonly Buffer[], skipBytes: number, lengthBytes: number): Buffer[] {
  const views: Buffer[] = [];
  let skip = skipBytes;
  let left = lengthBytes;
  for (const chunk of chunks) {
    if (left === 0) break;
    if (skip >= chunk.length) {
      skip -= chunk.length;
      continue;
    }
    const view = chunk.subarray(skip, Math.min(chunk.length, skip + left));
    views.push(view);
    left -= view.length;
    skip = 0;
  }
  return views;
}

/**
 * Every piece settled, then the first failure if any: the caller may reuse
 * its buffer once this settles, so no piece may still be in flight then.
 */
async function allPieces(pieces: readonly Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(pieces);
  for (const result of results) {
    if (result.status === 'rejected') throw toError(result.reason);
  }
}
