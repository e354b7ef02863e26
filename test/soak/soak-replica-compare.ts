/**
 * The soak's last check: with every daemon stopped (SIGTERM: drained,
 * flushed, pools closed), open each node's pool offline, exactly as plinthd
 * does (`<data-dir>/db` sublevel `pool`, the same disks), and read every
 * replica of every volume whole. Replicas of one volume must be byte
 * identical (ARCHITECTURE invariants 1 and 4, after convergence), and every
 * block must be one the model allows. Reading the stores directly avoids
 * moving the owner around and sees exactly what each node would serve from
 * its local replica.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import { openPool } from '../../blockdev/pool/open-pool.js';
import { openNodeDatabase } from '../../daemon/lifecycle/open-database.js';
import { decodeBlock, SOAK_BLOCK_BYTES } from './soak-block-format.js';
import type { BlockModel, Violation } from './soak-model.js';

/** The harness's default disk (test/helpers/daemon-harness.ts). */
const HARNESS_DISK = { relativePath: join('disks', 'disk0.img'), sizeBytes: 1024 ** 3 };
const READ_CHUNK_BYTES = 1024 * 1024;

export interface ReplicaLocation {
  readonly nodeId: string;
  readonly dataDir: string;
}

export interface VolumeReplicas {
  readonly name: string;
  readonly volumeId: string;
  readonly sizeBytes: number;
  readonly replicas: readonly ReplicaLocation[];
  readonly model: BlockModel;
}

export interface CompareResult {
  readonly volume: string;
  readonly replicasRead: number;
  readonly blocksCompared: number;
  /** Blocks whose bytes differ between replicas (first few): per node `vN` (a whole write) or `garbage <hash>`. */
  readonly differing: ReadonlyArray<{ readonly block: number; readonly byNode: Readonly<Record<string, string>> }>;
  readonly differingCount: number;
  readonly violations: readonly Violation[];
}

const MAX_LISTED_DIFFERENCES = 20;

/** Read each replica once per node (one pool open per node), then compare per volume. */
export async function compareReplicas(volumes: readonly VolumeReplicas[]): Promise<CompareResult[]> {
  const hashes = new Map<string, Map<string, string[]>>();
  const violations = new Map<string, Violation[]>();
  const dataDirs = new Map<string, string>();
  for (const volume of volumes) for (const replica of volume.replicas) dataDirs.set(replica.nodeId, replica.dataDir);
  for (const [nodeId, dataDir] of dataDirs) {
    const held = volumes.filter((volume) => volume.replicas.some((replica) => replica.nodeId === nodeId));
    const perVolume = await readNodeReplicas(nodeId, dataDir, held, (violation) => {
      violations.set(violation.volume, [...(violations.get(violation.volume) ?? []), violation]);
    });
    for (const [name, blockHashes] of perVolume) {
      const byNode = hashes.get(name) ?? new Map<string, string[]>();
      byNode.set(nodeId, blockHashes);
      hashes.set(name, byNode);
    }
  }
  return volumes.map((volume) => summarise(volume, hashes.get(volume.name) ?? new Map(), violations.get(volume.name) ?? []));
}

async function readNodeReplicas(
  nodeId: string,
  dataDir: string,
  volumes: readonly VolumeReplicas[],
  onViolation: (violation: Violation) => void,
): Promise<Map<string, string[]>> {
  const logger = pino({ level: 'silent' });
  const db = await openNodeDatabase(dataDir);
  const result = new Map<string, string[]>();
  try {
    const poolDb = db.sublevel<string, Buffer>('pool', { valueEncoding: 'buffer' });
    const pool = await openPool({ disks: [{ path: join(dataDir, HARNESS_DISK.relativePath), sizeBytes: HARNESS_DISK.sizeBytes }] }, { db: poolDb, logger });
    try {
      for (const volume of volumes) {
        const store = await pool.openVolume(volume.volumeId, volume.sizeBytes);
        const blockHashes: string[] = [];
        const chunk = Buffer.alloc(READ_CHUNK_BYTES);
        for (let offset = 0; offset < volume.model.blockCount * SOAK_BLOCK_BYTES; offset += READ_CHUNK_BYTES) {
          const length = Math.min(READ_CHUNK_BYTES, volume.model.blockCount * SOAK_BLOCK_BYTES - offset);
          const view = chunk.subarray(0, length);
          await store.read(offset, view);
          for (let at = 0; at < length; at += SOAK_BLOCK_BYTES) {
            const block = (offset + at) / SOAK_BLOCK_BYTES;
            const data = view.subarray(at, at + SOAK_BLOCK_BYTES);
            const reading = decodeBlock(data, block);
            // A whole stamp names its bytes exactly; anything else is named by a hash of them.
            blockHashes.push(reading.kind === 'version' ? `v${reading.version}` : `garbage ${createHash('sha256').update(data).digest('hex').slice(0, 16)}`);
            const violation = volume.model.check(block, reading, `replica on ${nodeId}`);
            if (violation !== undefined) onViolation(violation);
          }
        }
        result.set(volume.name, blockHashes);
      }
    } finally {
      await pool.close();
    }
  } finally {
    await db.close();
  }
  return result;
}

function summarise(volume: VolumeReplicas, byNode: Map<string, string[]>, violations: Violation[]): CompareResult {
  const differing: Array<{ block: number; byNode: Record<string, string> }> = [];
  let differingCount = 0;
  const nodes = [...byNode.keys()];
  for (let block = 0; block < volume.model.blockCount; block++) {
    const values = nodes.map((nodeId) => byNode.get(nodeId)?.[block] ?? 'missing');
    if (new Set(values).size <= 1) continue;
    differingCount += 1;
    if (differing.length < MAX_LISTED_DIFFERENCES) differing.push({ block, byNode: Object.fromEntries(nodes.map((nodeId, i) => [nodeId, values[i] ?? 'missing'])) });
  }
  return { volume: volume.name, replicasRead: byNode.size, blocksCompared: volume.model.blockCount, differing, differingCount, violations };
}
