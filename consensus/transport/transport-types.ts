/**
 * What the node runner sees of a Raft transport. Delivery is best effort:
 * Raft tolerates loss, duplication and reordering (§5.1 "RPCs are retried"),
 * so sends never block or fail; they are queued (bounded) or counted as drops.
 */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

export interface MessageCodec<M> {
  encode(message: M): Uint8Array;
  /** Throws BAD_FRAME on garbage. */
  decode(payload: Buffer): M;
}

export type InboundHandler<M> = (from: string, message: M) => void;

export interface PeerStats {
  readonly queued: number;
  readonly sent: number;
  /** Dropped because the queue was full. */
  readonly droppedQueueFull: number;
  /** Dropped by the fault hook. */
  readonly droppedByFault: number;
  readonly connected: boolean;
  readonly connectAttempts: number;
}

export interface Transport<M> {
  send(to: string, message: M): void;
  onMessage(handler: InboundHandler<M>): void;
  setPeer(id: string, address: PeerAddress): void;
  removePeer(id: string): void;
  /** Whether a message from `id` can be sent now (an authenticated connection exists). */
  isConnected(id: string): boolean;
  close(): Promise<void>;
}
