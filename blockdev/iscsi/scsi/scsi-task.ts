import type { BlockDevice } from '../../block-device.js';
import type { ExportDescription } from '../../export-provider.js';

/**
 * The seam between the iSCSI transport (blockdev/iscsi/*) and the SCSI
 * device server (blockdev/iscsi/scsi/*). The transport turns PDUs into
 * ScsiTasks and ScsiResponses back into PDUs; the SCSI layer knows nothing of
 * PDUs, sequence numbers or digests, and the transport knows nothing of CDBs
 * beyond what RFC 7143 puts in the SCSI Command PDU.
 */

/**
 * An I_T nexus's initiator side (SPC-4 §4.3.4; RFC 7143 §4.2.7.1 builds the
 * iSCSI initiator port name from InitiatorName and ISID). Persistent
 * reservations and unit attentions are kept per nexus.
 */
export interface InitiatorPort {
  /** The InitiatorName key from login, e.g. iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test. */
  readonly initiatorName: string;
  /** The 6-byte ISID from the Login PDU as 12 lowercase hex digits. */
  readonly isid: string;
  /** The target portal group tag this session logged in through. */
  readonly targetPortalGroupTag: number;
}

export type ScsiDataDirection = 'none' | 'read' | 'write' | 'bidirectional';

/** SAM-5 task attributes (RFC 7143 §11.3.1 ATTR field). */
export type ScsiTaskAttribute = 'untagged' | 'simple' | 'ordered' | 'head-of-queue' | 'aca';

export interface ScsiTask {
  /** The CDB: the 16 bytes of the Command PDU, extended by an Extended CDB AHS if any (RFC 7143 §11.3.5). */
  readonly cdb: Buffer;
  readonly lun: number;
  readonly nexus: InitiatorPort;
  readonly attribute: ScsiTaskAttribute;
  /** From the R and W bits of the Command PDU. */
  readonly direction: ScsiDataDirection;
  /** Expected Data Transfer Length from the Command PDU (RFC 7143 §11.3.4). */
  readonly expectedDataTransferLength: number;
  /**
   * For 'write' and 'bidirectional': every data-out byte the initiator sent
   * (immediate, unsolicited and solicited by R2T), collected in offset order;
   * its length is the expected data transfer length. undefined otherwise.
   */
  readonly dataOut: Buffer | undefined;
  /**
   * Memory for a READ's data-in, lent by the transport, which takes it
   * back once the reply is on the socket; undefined: a fresh buffer.
   */
  readonly allocateDataIn: ((lengthBytes: number) => Buffer) | undefined;
}

/** SAM-5 §5.3 status codes the device server returns. */
export const ScsiStatus = {
  GOOD: 0x00,
  CHECK_CONDITION: 0x02,
  CONDITION_MET: 0x04,
  BUSY: 0x08,
  RESERVATION_CONFLICT: 0x18,
  TASK_SET_FULL: 0x28,
  ACA_ACTIVE: 0x30,
  TASK_ABORTED: 0x40,
} as const;
export type ScsiStatusCode = (typeof ScsiStatus)[keyof typeof ScsiStatus];

/**
 * A command's response, or its promise when the command had to wait (device
 * I/O off the event loop, a lock, a Raft commit). Why not always a promise
 * (perf, 4k randread qd1): a read served inline from the page cache went
 * through five async layers, each a promise and a microtask turn, and its
 * reply waited for the next tick; answered at once, the reply goes out in
 * the same socket callback that brought the command.
 */
export type ScsiOutcome = ScsiResponse | Promise<ScsiResponse>;

export interface ScsiResponse {
  readonly status: ScsiStatusCode;
  /**
   * For reads: the data the command returns, already cut to the CDB's
   * allocation/transfer length. The transport cuts it to the expected data
   * transfer length and reports the difference as a residual.
   */
  readonly dataIn?: Buffer;
  /**
   * The number of bytes the command as decoded from its CDB moves (for a
   * WRITE(10) of 8 blocks of 512: 4096). The transport sets the residual
   * from it against the expected data transfer length (RFC 7143 §11.4.5:
   * overflow when larger, underflow when smaller). Absent: the length of
   * dataIn, or 0 when there is none — the right answer for commands with an
   * allocation length (INQUIRY, MODE SENSE ...): data cut by the allocation
   * length is not an overflow (libiscsi ModeSense6.Residuals).
   */
  readonly transferBytes?: number;
  /** Fixed-format sense data (SPC-4 §4.5.3) with CHECK CONDITION. */
  readonly sense?: Buffer;
}

/** Task management functions the transport forwards (RFC 7143 §11.5.1). */
export type TaskManagementFunction =
  | 'abort-task-set'
  | 'clear-task-set'
  | 'clear-aca'
  | 'lun-reset'
  | 'target-warm-reset'
  | 'target-cold-reset';

export type TaskManagementResult = 'complete' | 'not-supported' | 'rejected';

/**
 * One session's view of one logical unit. The transport creates one per
 * session and LUN (LUN 0 only: one target per volume, ARCHITECTURE "iSCSI")
 * from the node-wide ScsiTargetRegistry, so reservations and unit attentions
 * are shared by every session on the same volume.
 */
export interface ScsiLogicalUnitSession {
  /**
   * Run one command. Never throws or rejects for a SCSI-level error: those
   * are a CHECK CONDITION response with sense data. Throws or rejects only
   * when the device is gone (the transport drops the connection).
   */
  execute(task: ScsiTask): ScsiOutcome;
  /**
   * Task management for this session's nexus. The transport has already
   * stopped answering the aborted tasks (RFC 7143 §4.2.3.3); this resets
   * device-server state: reservations per SPC-4 §5.9.10, unit attentions
   * for the other nexuses (SAM-5 §6.3).
   */
  taskManagement(fn: TaskManagementFunction): Promise<TaskManagementResult>;
  /** The session ended (I_T nexus loss, SAM-5 §6.3.4). Idempotent. */
  close(): void;
}

/**
 * Node-wide SCSI state per volume (persistent reservations, unit attention
 * queues per nexus, the COMPARE AND WRITE lock), shared by every session.
 */
export interface ScsiTargetRegistry {
  /**
   * Open the logical unit view for one session. `device` is the session's
   * export handle's device; `description.id` gives the stable identifiers
   * (VPD 0x80 unit serial, 0x83 NAA designator).
   */
  openLogicalUnit(description: ExportDescription, device: BlockDevice, nexus: InitiatorPort): ScsiLogicalUnitSession;
}
