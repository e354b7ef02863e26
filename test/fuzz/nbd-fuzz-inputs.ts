import {
  encodeClientFlags,
  encodeInfoRequestData,
  encodeMetaContextData,
  encodeOption,
  encodeRequest,
} from '../../blockdev/nbd/client-codec.js';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_NAME,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
} from '../../blockdev/nbd/constants.js';

/**
 * Seeded inputs for the NBD fuzzers: valid client messages, mutations of
 * them, and plain noise. One seed reproduces a whole run (print it, replay
 * with NBD_FUZZ_SEED=...).
 */

/** mulberry32: small, fast, good enough to drive a fuzzer deterministically. */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let value = this.state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, bound). */
  below(bound: number): number {
    return Math.floor(this.next() * bound);
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.below(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  bytes(count: number): Buffer {
    const buffer = Buffer.alloc(count);
    for (let index = 0; index < count; index += 1) buffer[index] = this.below(256);
    return buffer;
  }
}

export function fuzzSeed(): number {
  const fromEnv = process.env['NBD_FUZZ_SEED'];
  return fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
}

const NAMES = ['vol1', '', 'vol1@snap', 'missing', 'ünï', 'x'.repeat(300)];
const QUERIES = ['base:allocation', 'base:', 'qemu:dirty-bitmap:a', 'nocolon', ':', 'x-a:b'];

/** One well-formed option (any kind, including ones the server refuses). */
export function validOption(prng: Prng): Buffer {
  const name = prng.pick(NAMES);
  const queries = Array.from({ length: prng.below(4) }, () => prng.pick(QUERIES));
  const infos = Array.from({ length: prng.below(4) }, () =>
    prng.pick([NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE, 9]),
  );
  switch (prng.below(10)) {
    case 0:
      return encodeOption(NBD_OPT_LIST);
    case 1:
      return encodeOption(NBD_OPT_STRUCTURED_REPLY);
    case 2:
      return encodeOption(NBD_OPT_INFO, encodeInfoRequestData(name, infos));
    case 3:
      return encodeOption(NBD_OPT_GO, encodeInfoRequestData(name, infos));
    case 4:
      return encodeOption(NBD_OPT_SET_META_CONTEXT, encodeMetaContextData(name, queries));
    case 5:
      return encodeOption(NBD_OPT_LIST_META_CONTEXT, encodeMetaContextData(name, queries));
    case 6:
      return encodeOption(NBD_OPT_STARTTLS);
    case 7:
      return encodeOption(NBD_OPT_EXPORT_NAME, Buffer.from(name));
    case 8:
      return encodeOption(NBD_OPT_ABORT);
    default:
      return encodeOption(prng.below(64), prng.bytes(prng.below(32)));
  }
}

/** One well-formed request (WRITE carries its payload), inside or near a device of `sizeBytes`. */
export function validRequest(prng: Prng, sizeBytes: number): Buffer {
  const type = prng.pick([NBD_CMD_READ, NBD_CMD_WRITE, NBD_CMD_FLUSH, NBD_CMD_TRIM, NBD_CMD_CACHE, NBD_CMD_WRITE_ZEROES, NBD_CMD_BLOCK_STATUS, 9]);
  const lengthBytes = type === NBD_CMD_FLUSH ? 0 : prng.pick([0, 1, 512, 4096, 65536, prng.below(70_000)]);
  const offset = type === NBD_CMD_FLUSH ? 0 : prng.pick([0, 512, sizeBytes - 512, sizeBytes, prng.below(sizeBytes)]);
  const flags = prng.below(4) === 0 ? prng.below(1 << 16) : prng.below(32);
  const header = { type, flags, offset: Math.max(0, offset), lengthBytes, handle: BigInt(prng.below(1 << 30)) };
  return encodeRequest(header, type === NBD_CMD_WRITE ? prng.bytes(lengthBytes) : undefined);
}

/** Damage a message the way a broken or hostile client would. */
export function mutate(prng: Prng, message: Buffer): Buffer {
  const bytes = Buffer.from(message);
  switch (prng.below(6)) {
    case 0: {
      // flip a few bytes anywhere (magic, lengths, flags, data)
      for (let flips = 1 + prng.below(3); flips > 0 && bytes.length > 0; flips -= 1) {
        bytes[prng.below(bytes.length)] = prng.below(256);
      }
      return bytes;
    }
    case 1:
      return bytes.subarray(0, prng.below(bytes.length + 1));
    case 2:
      return Buffer.concat([bytes, prng.bytes(prng.below(64))]);
    case 3: {
      // rewrite a 32-bit length-looking field with an extreme value
      if (bytes.length >= 16) bytes.writeUInt32BE(prng.pick([0, 1, 0xffffffff, 0x7fffffff, 65537]), 12);
      return bytes;
    }
    case 4:
      return Buffer.concat([bytes, bytes]);
    default:
      return prng.bytes(prng.below(100));
  }
}

export function clientFlags(prng: Prng): Buffer {
  return encodeClientFlags(prng.below(8) === 0 ? prng.below(1 << 16) : prng.below(4));
}

/** Cut a byte stream into random chunks, as TCP might deliver it. */
export function randomChunks(prng: Prng, stream: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  let start = 0;
  while (start < stream.length) {
    const size = 1 + prng.below(prng.below(2) === 0 ? 8 : 512);
    chunks.push(stream.subarray(start, start + size));
    start += size;
  }
  return chunks;
}
