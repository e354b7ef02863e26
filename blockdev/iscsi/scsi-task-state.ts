import type { DataOutCollector } from './data-out-collector.js';
import type { ScsiCommandPdu } from './pdu-decode.js';
import { Asc, encodeFixedSense, SenseKey } from './scsi/scsi-sense.js';
import type { ScsiDataDirection } from './scsi/scsi-task.js';

/**
 * One SCSI command between its Command PDU and its last response PDU.
 * It runs once both the CmdSN window released it (ordering, RFC 7143
 * §4.2.2.1) and all its data-out arrived; an aborted task is never
 * answered (§4.2.3.3).
 */
export interface TaskState {
  readonly command: ScsiCommandPdu;
  readonly direction: ScsiDataDirection;
  readonly collector: DataOutCollector | undefined;
  /** Bytes of write data this task holds against the connection's budget. */
  readonly bufferedBytes: number;
  /** Bytes of read data this task may bring: held against IscsiLimits.maxReadBytesInFlight while released. */
  readonly readBytes: number;
  released: boolean;
  started: boolean;
  aborted: boolean;
  r2tCount: number;
  /** Answered or refused: its bookkeeping (window, budget, buffers) is done. */
  ended: boolean;
  /** Settles when execution ended; undefined until it starts, and for a command answered at once. */
  finished: Promise<void> | undefined;
  /** Set when the transport answers the command itself (too large, over the connection's budget). */
  refusal: { readonly status: number; readonly sense: Buffer | undefined } | undefined;
}

export function directionOf(command: ScsiCommandPdu): ScsiDataDirection {
  if (command.read && command.write) return 'bidirectional';
  if (command.write) return 'write';
  if (command.read) return 'read';
  return 'none';
}

/**
 * Fixed-format sense (SPC-4 §4.5.3) for the one refusal the transport makes
 * itself: ILLEGAL REQUEST / INVALID FIELD IN CDB for a transfer longer than
 * this target buffers (the SCSI layer's block limits VPD advertises less).
 */
export function invalidFieldInCdbSense(): Buffer {
  return encodeFixedSense({ senseKey: SenseKey.ILLEGAL_REQUEST, asc: Asc.INVALID_FIELD_IN_CDB });
}

/**
 * ABORTED COMMAND sense for a write whose Data-Out broke the sequence rules
 * (SPC-4 Annex D: 4B/00 DATA PHASE ERROR, 4B/01 INVALID TARGET PORT TRANSFER
 * TAG RECEIVED, 4B/02 TOO MUCH WRITE DATA, 4B/05 DATA OFFSET ERROR).
 */
export function dataPhaseErrorSense(field: unknown): Buffer {
  const sense = Buffer.alloc(18);
  sense[0] = 0x70;
  sense[2] = 0x0b;
  sense[7] = 10;
  sense[12] = 0x4b;
  sense[13] = field === 'TTT' ? 0x01 : field === 'DataSegmentLength' ? 0x02 : field === 'BufferOffset' ? 0x05 : 0x00;
  return sense;
}
