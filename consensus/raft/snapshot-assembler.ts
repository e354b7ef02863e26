/**
 * Follower side of chunked InstallSnapshot (§7, Figure 13): chunks must arrive
 * in offset order; a chunk of a different snapshot restarts the assembly.
 * The total size is bounded before anything is buffered.
 */
import type { Snapshot, SnapshotChunkRequest, SnapshotMetadata } from './types.js';

export type ChunkOutcome =
  | { readonly kind: 'progress'; readonly nextOffset: number }
  | { readonly kind: 'out-of-order'; readonly nextOffset: number }
  | { readonly kind: 'complete'; readonly snapshot: Snapshot }
  | { readonly kind: 'too-large' };

export class SnapshotAssembler {
  private metadata: SnapshotMetadata | null = null;
  private chunks: Buffer[] = [];
  private receivedBytes = 0;

  constructor(private readonly maxSnapshotBytes: number) {}

  accept(chunk: SnapshotChunkRequest): ChunkOutcome {
    if (chunk.totalBytes > this.maxSnapshotBytes || chunk.offset + chunk.data.length > chunk.totalBytes) {
      this.reset();
      return { kind: 'too-large' };
    }
    if (!this.isSameSnapshot(chunk.metadata)) {
      this.reset();
      this.metadata = chunk.metadata;
    }
    if (chunk.offset !== this.receivedBytes) {
      return { kind: 'out-of-order', nextOffset: this.receivedBytes };
    }
    this.chunks.push(chunk.data);
    this.receivedBytes += chunk.data.length;
    if (!chunk.done) return { kind: 'progress', nextOffset: this.receivedBytes };
    const snapshot: Snapshot = { metadata: chunk.metadata, data: Buffer.concat(this.chunks) };
    this.reset();
    return { kind: 'complete', snapshot };
  }

  reset(): void {
    this.metadata = null;
    this.chunks = [];
    this.receivedBytes = 0;
  }

  private isSameSnapshot(metadata: SnapshotMetadata): boolean {
    return this.metadata !== null && this.metadata.index === metadata.index && this.metadata.term === metadata.term;
  }
}
