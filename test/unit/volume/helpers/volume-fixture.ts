import pino from 'pino';
import { ReplicatedVolume, type ReplicatedVolumeOptions } from '../../../../blockdev/volume/replicated-volume.js';
import type { ReplicaSpec } from '../../../../blockdev/volume/replica-set.js';
import { ScriptedReplica } from './scripted-replica.js';

/**
 * Builds a ReplicatedVolume over scripted replicas with a scripted control
 * plane: failure reports and markInSync calls are recorded, and can be made
 * to reject (no quorum) or to wait until the test lets them commit.
 */

export const VOLUME_BYTES = 1024 * 1024;

export interface ControlScript {
  readonly reports: string[];
  readonly joins: string[];
  /** When set, reports reject with this error (Raft cannot commit). */
  rejectReports: Error | undefined;
  rejectJoins: Error | undefined;
  /** When set, reports wait for this promise before committing. */
  reportGate: Promise<void> | undefined;
}

export interface VolumeFixture {
  readonly volume: ReplicatedVolume;
  readonly replicas: ScriptedReplica[];
  readonly control: ControlScript;
}

export interface FixtureOptions {
  readonly replicaCount?: number;
  readonly localIndex?: number;
  readonly faultedIndexes?: readonly number[];
  readonly volume?: Partial<ReplicatedVolumeOptions>;
  readonly chunkBytes?: number;
}

export function makeVolume(options: FixtureOptions = {}): VolumeFixture {
  const count = options.replicaCount ?? 3;
  const replicas = Array.from(
    { length: count },
    () => new ScriptedReplica({ sizeBytes: VOLUME_BYTES, chunkBytes: options.chunkBytes ?? 4096 }),
  );
  const control: ControlScript = {
    reports: [],
    joins: [],
    rejectReports: undefined,
    rejectJoins: undefined,
    reportGate: undefined,
  };
  const specs: ReplicaSpec[] = replicas.map((device, index) => ({
    id: `r${index}`,
    nodeId: `n${index}`,
    device,
    local: index === (options.localIndex ?? 0),
    state: options.faultedIndexes?.includes(index) === true ? 'faulted' : 'in-sync',
  }));
  const volume = new ReplicatedVolume(
    { volumeId: 'vol-test', sizeBytes: VOLUME_BYTES, ...options.volume },
    {
      replicas: specs,
      logger: pino({ level: 'silent' }),
      reportReplicaFailure: async (replicaId) => {
        if (control.reportGate !== undefined) await control.reportGate;
        if (control.rejectReports !== undefined) throw control.rejectReports;
        control.reports.push(replicaId);
      },
      markInSync: async (replicaId) => {
        if (control.rejectJoins !== undefined) throw control.rejectJoins;
        control.joins.push(replicaId);
      },
    },
  );
  return { volume, replicas, control };
}

/** A buffer of `length` bytes all equal to `value`. */
export function filled(length: number, value: number): Buffer {
  return Buffer.alloc(length, value);
}

export async function readStore(replica: ScriptedReplica, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  await replica.store.read(offset, buffer);
  return buffer;
}

/** A promise with its resolve function, for gating a scripted step. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}
