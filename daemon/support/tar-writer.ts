import { PlinthError } from '../../common/plinth-error.js';

/**
 * A tar archive in the POSIX ustar format (POSIX.1-1988, pax(1) "ustar
 * Interchange Format"): per file a 512-byte header, the data padded to 512
 * bytes; two zero blocks end the archive. Regular files and directories
 * only, which is all a support bundle needs. Pure: entries in, bytes out.
 */
export interface TarEntry {
  /** Relative path with '/' separators; a trailing '/' makes a directory. */
  readonly path: string;
  readonly data?: Buffer;
  /** Unix permission bits; default 0644 for files, 0755 for directories. */
  readonly mode?: number;
  readonly mtimeMs?: number;
}

const BLOCK_BYTES = 512;
const NAME_BYTES = 100;
const PREFIX_BYTES = 155;
/** Largest size the 11 octal digits of the size field hold (8 GiB - 1). */
const MAX_FILE_BYTES = 8 ** 11 - 1;

export function tarArchive(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const data = entry.data ?? Buffer.alloc(0);
    const isDirectory = entry.path.endsWith('/');
    if (isDirectory && data.length > 0) throw invalid(entry.path, 'a directory has no data');
    parts.push(tarHeader(entry, isDirectory ? 0 : data.length, isDirectory));
    if (!isDirectory) {
      parts.push(data);
      const padding = (BLOCK_BYTES - (data.length % BLOCK_BYTES)) % BLOCK_BYTES;
      if (padding > 0) parts.push(Buffer.alloc(padding));
    }
  }
  parts.push(Buffer.alloc(2 * BLOCK_BYTES));
  return Buffer.concat(parts);
}

function tarHeader(entry: TarEntry, sizeBytes: number, isDirectory: boolean): Buffer {
  if (sizeBytes > MAX_FILE_BYTES) throw invalid(entry.path, `larger than ${MAX_FILE_BYTES} bytes`);
  const { name, prefix } = splitPath(entry.path);
  const header = Buffer.alloc(BLOCK_BYTES);
  header.write(name, 0, NAME_BYTES, 'utf8');
  writeOctal(header, 100, 8, entry.mode ?? (isDirectory ? 0o755 : 0o644));
  writeOctal(header, 108, 8, 0); // uid
  writeOctal(header, 116, 8, 0); // gid
  writeOctal(header, 124, 12, sizeBytes);
  writeOctal(header, 136, 12, Math.floor((entry.mtimeMs ?? Date.now()) / 1000));
  header.write('        ', 148, 8, 'latin1'); // checksum field counts as spaces while summing
  header.write(isDirectory ? '5' : '0', 156, 1, 'latin1');
  header.write('ustar\u000000', 257, 8, 'latin1'); // magic "ustar\0", version "00"
  header.write('root', 265, 32, 'latin1'); // uname
  header.write('root', 297, 32, 'latin1'); // gname
  header.write(prefix, 345, PREFIX_BYTES, 'utf8');
  let checksum = 0;
  for (const byte of header) checksum += byte;
  // Six octal digits, NUL, space: the traditional layout every reader accepts.
  header.write(`${checksum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1');
  return header;
}

/** ustar stores paths over 100 bytes as prefix + '/' + name, split at a '/'. */
function splitPath(path: string): { name: string; prefix: string } {
  if (path === '' || path.startsWith('/') || path.split('/').includes('..')) throw invalid(path, 'must be relative and stay inside the archive');
  if (Buffer.byteLength(path) <= NAME_BYTES) return { name: path, prefix: '' };
  const body = path.endsWith('/') ? path.slice(0, -1) : path;
  for (let cut = body.indexOf('/'); cut !== -1; cut = body.indexOf('/', cut + 1)) {
    const prefix = body.slice(0, cut);
    const name = path.slice(cut + 1);
    if (Buffer.byteLength(prefix) <= PREFIX_BYTES && Buffer.byteLength(name) <= NAME_BYTES) return { name, prefix };
  }
  throw invalid(path, `too long for ustar (${NAME_BYTES}-byte name, ${PREFIX_BYTES}-byte prefix)`);
}

function writeOctal(header: Buffer, offset: number, width: number, value: number): void {
  header.write(`${value.toString(8).padStart(width - 1, '0')}\u0000`, offset, width, 'latin1');
}

function invalid(path: string, why: string): PlinthError {
  return new PlinthError('INVALID_ARGUMENT', `tar entry ${JSON.stringify(path)}: ${why}`, { path });
}
