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

/** The real thing: positional I/O straight on the fd. */
export function directFileIo(fd: number): DiskFileIo {
  return {
    read: (target, targetOffset, lengthBytes, position) => readFully(fd, target, targetOffset, lengthBytes, position),
    readSync: (target, targetOffset, lengthBytes, position) => readFullySync(fd, target, targetOffset, lengthBytes, position),
    write: (source, sourceOffset, lengthBytes, position) => writeFully(fd, source, sourceOffset, lengthBytes, position),
    writeSync: (source, sourceOffset, lengthBytes, position) => writeFullySync(fd, source, sourceOffset, lengthBytes, position),
    writev: (chunks, lengthBytes, position) => writevFully(fd, chunks, lengthBytes, position),
    writevSync: (chunks, lengthBytes, position) => writevFullySync(fd, chunks, lengthBytes, position),
    fdatasync: () => fdatasync(fd),
    close: () => closeFile(fd),
  };
}
