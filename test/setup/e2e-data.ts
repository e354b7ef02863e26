/**
 * Test data for e2e round trips: files of seeded pseudo-random bytes (so a
 * failure can be reproduced from the seed printed in the test name) and
 * streaming sha256.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';

const CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * A deterministic byte stream from a seed: AES-256-CTR over zeroes with the
 * key derived from the seed. Fast (GB/s) and incompressible, unlike a pattern
 * a thin pool could accidentally treat as zero.
 */
export function seededBytes(seed: string, sizeBytes: number): Generator<Buffer> {
  const key = createHash('sha256').update(`plinth-e2e:${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeroes = Buffer.alloc(CHUNK_BYTES);
  return (function* generate(): Generator<Buffer> {
    for (let written = 0; written < sizeBytes; written += CHUNK_BYTES) {
      yield cipher.update(zeroes.subarray(0, Math.min(CHUNK_BYTES, sizeBytes - written)));
    }
  })();
}

export async function writeSeededFile(path: string, sizeBytes: number, seed: string): Promise<void> {
  const handle = await open(path, 'w');
  try {
    for (const chunk of seededBytes(seed, sizeBytes)) await handle.write(chunk);
  } finally {
    await handle.close();
  }
}

export async function sha256File(path: string, limitBytes?: number): Promise<string> {
  const hash = createHash('sha256');
  const stream = createReadStream(path, limitBytes === undefined ? {} : { start: 0, end: limitBytes - 1 });
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Make an empty sparse file of the given size (for pool disks). */
export async function createSparseFile(path: string, sizeBytes: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.truncate(sizeBytes);
  } finally {
    await handle.close();
  }
}
