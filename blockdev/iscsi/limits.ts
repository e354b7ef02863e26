/**
 * Every bound of the iSCSI target in one place (STYLE "A limit on
 * everything"). Negotiated values never exceed these.
 */
export interface IscsiLimits {
  /** Concurrent TCP connections the listener accepts. */
  readonly maxConnections: number;
  /** CmdSN window: commands in flight per session (MaxCmdSN - ExpCmdSN + 1 at most). */
  readonly commandWindowDepth: number;
  /** Our declared MaxRecvDataSegmentLength (RFC 7143 §13.12). */
  readonly maxRecvDataSegmentLength: number;
  readonly maxBurstLength: number;
  readonly firstBurstLength: number;
  readonly maxOutstandingR2T: number;
  /** Largest expected data transfer length of one write we buffer. */
  readonly maxTaskDataBytes: number;
  /** Write data buffered per connection across its tasks; beyond it new writes get TASK SET FULL. */
  readonly maxConnectionDataBytes: number;
  /** Login and Text key=value text, across continuation PDUs. */
  readonly maxTextBytes: number;
  /** Replies queued on the socket before we stop reading from it. */
  readonly maxQueuedReplyBytes: number;
  /**
   * Read data of the connection's commands from their turn in CmdSN order
   * to their answer (the expected data transfer lengths); at the bound we
   * stop reading the socket until reads end. Without it a window of 8 MiB
   * READs is 1 GiB.
   */
  readonly maxReadBytesInFlight: number;
  /** Idle time before we ping the initiator with a NOP-In (RFC 7143 §11.19). */
  readonly nopIntervalMs: number;
  /** A ping unanswered this long drops the connection. */
  readonly nopTimeoutMs: number;
  /** A connection still logging in after this long is dropped. */
  readonly loginTimeoutMs: number;
}

export const DEFAULT_ISCSI_LIMITS: IscsiLimits = {
  maxConnections: 256,
  commandWindowDepth: 128,
  maxRecvDataSegmentLength: 256 * 1024,
  maxBurstLength: 1024 * 1024,
  firstBurstLength: 256 * 1024,
  maxOutstandingR2T: 8,
  maxTaskDataBytes: 32 * 1024 * 1024,
  maxConnectionDataBytes: 256 * 1024 * 1024,
  maxTextBytes: 64 * 1024,
  maxQueuedReplyBytes: 16 * 1024 * 1024,
  maxReadBytesInFlight: 64 * 1024 * 1024,
  nopIntervalMs: 30_000,
  nopTimeoutMs: 30_000,
  loginTimeoutMs: 30_000,
};

export function resolveIscsiLimits(overrides: Partial<IscsiLimits> | undefined): IscsiLimits {
  return { ...DEFAULT_ISCSI_LIMITS, ...overrides };
}
