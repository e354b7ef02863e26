import { RESERVED_TAG } from './iscsi-constants.js';
import type { DataOutPdu } from './pdu-decode.js';
import { IscsiProtocolError } from './protocol-error.js';

/**
 * Collects the data of one write command (RFC 7143 §4.2.5.2, §11.7-§11.8):
 * immediate data in the Command PDU, unsolicited Data-Out (TTT 0xffffffff)
 * up to FirstBurstLength when InitialR2T=No, then solicited Data-Out
 * answering our R2Ts, each burst at most MaxBurstLength, at most
 * MaxOutstandingR2T bursts open at once. We negotiate DataPDUInOrder and
 * DataSequenceInOrder = Yes, so every sequence arrives in offset order and
 * DataSN counts up from 0 within each sequence (§4.2.5.3). Pure.
 */

export interface DataOutLimits {
  readonly firstBurstLength: number;
  readonly maxBurstLength: number;
  readonly maxOutstandingR2T: number;
}

/** One R2T to send: the caller frames it (StatSN, window) and sends it. */
export interface R2TRequest {
  readonly targetTransferTag: number;
  readonly r2tSN: number;
  readonly bufferOffset: number;
  readonly desiredDataTransferLength: number;
}

interface Sequence {
  readonly targetTransferTag: number;
  readonly endOffset: number;
  nextOffset: number;
  nextDataSN: number;
}

export class DataOutCollector {
  readonly buffer: Buffer;
  private readonly limits: DataOutLimits;
  private readonly newTargetTransferTag: () => number;
  private unsolicited: Sequence | undefined;
  /** Open R2T bursts by TTT; created on the first R2T (most writes carry all their data immediately). */
  private solicitedBursts: Map<number, Sequence> | undefined;
  /** Where the next R2T starts; everything below it is received or asked for. */
  private nextR2TOffset: number;
  private nextR2TSN = 0;
  private receivedBytes: number;

  constructor(
    options: { expectedDataTransferLength: number; immediateData: Buffer; unsolicitedFollows: boolean; limits: DataOutLimits },
    modules: {
      newTargetTransferTag: () => number;
      /** Where a buffer to assemble the data comes from (a BufferPool's acquire); contents may be undefined. */
      allocate?: (lengthBytes: number) => Buffer;
    },
  ) {
    const length = options.expectedDataTransferLength;
    const immediate = Math.min(options.immediateData.length, length);
    // All the data came with the command (the common small write): use it as is, no copy.
    // The reader hands out its own buffers or views of socket chunks, which are never reused.
    // Otherwise no zero fill: the task runs only once every byte arrived (isComplete), in
    // disjoint, in-order bursts (DataPDUInOrder/DataSequenceInOrder = Yes), so each byte is written.
    this.buffer = immediate === length ? options.immediateData.subarray(0, length) : (modules.allocate ?? Buffer.allocUnsafe)(length);
    this.limits = options.limits;
    this.newTargetTransferTag = modules.newTargetTransferTag;
    if (immediate < length) {
      options.immediateData.copy(this.buffer, 0, 0, immediate);
    }
    this.receivedBytes = immediate;
    this.nextR2TOffset = immediate;
    const unsolicitedEnd = Math.min(options.limits.firstBurstLength, length);
    if (options.unsolicitedFollows && immediate < unsolicitedEnd) {
      this.unsolicited = { targetTransferTag: RESERVED_TAG, endOffset: unsolicitedEnd, nextOffset: immediate, nextDataSN: 0 };
    }
  }

  /** Immediate data beyond what the command can carry (§11.3.4 and FirstBurstLength, §13.14). */
  static validateImmediate(immediateBytes: number, expectedDataTransferLength: number, firstBurstLength: number): IscsiProtocolError | undefined {
    if (immediateBytes > expectedDataTransferLength) {
      return new IscsiProtocolError('BAD_FIELD', `${immediateBytes} bytes of immediate data for a transfer of ${expectedDataTransferLength}`);
    }
    if (immediateBytes > firstBurstLength) {
      return new IscsiProtocolError('BAD_FIELD', `${immediateBytes} bytes of immediate data exceed FirstBurstLength ${firstBurstLength}`);
    }
    return undefined;
  }

  isComplete(): boolean {
    return this.receivedBytes >= this.buffer.length;
  }

  /** File one Data-Out PDU; an error means the PDU broke the sequence rules. */
  accept(pdu: DataOutPdu): IscsiProtocolError | undefined {
    const sequence = pdu.targetTransferTag === RESERVED_TAG ? this.unsolicited : this.solicitedBursts?.get(pdu.targetTransferTag);
    if (sequence === undefined) {
      const what = pdu.targetTransferTag === RESERVED_TAG ? 'unsolicited data' : `TTT 0x${pdu.targetTransferTag.toString(16)}`;
      return new IscsiProtocolError('BAD_FIELD', `Data-Out with ${what} that this task did not ask for`, { field: 'TTT' });
    }
    if (pdu.dataSN !== sequence.nextDataSN) {
      return new IscsiProtocolError('BAD_FIELD', `Data-Out DataSN ${pdu.dataSN}, expected ${sequence.nextDataSN}`, { field: 'DataSN' });
    }
    if (pdu.bufferOffset !== sequence.nextOffset) {
      return new IscsiProtocolError('BAD_FIELD', `Data-Out BufferOffset ${pdu.bufferOffset}, expected ${sequence.nextOffset}`, { field: 'BufferOffset' });
    }
    if (pdu.bufferOffset + pdu.data.length > sequence.endOffset) {
      return new IscsiProtocolError('BAD_FIELD', `Data-Out runs past the end of its burst at ${sequence.endOffset}`, { field: 'DataSegmentLength' });
    }
    pdu.data.copy(this.buffer, pdu.bufferOffset);
    sequence.nextOffset += pdu.data.length;
    sequence.nextDataSN += 1;
    this.receivedBytes += pdu.data.length;
    const ended = pdu.final || sequence.nextOffset === sequence.endOffset;
    if (!ended) {
      return undefined;
    }
    if (sequence === this.unsolicited) {
      // §4.2.5.2: the unsolicited burst may end early (F); R2Ts ask for the rest.
      this.unsolicited = undefined;
      this.nextR2TOffset = sequence.nextOffset;
    } else if (sequence.nextOffset !== sequence.endOffset) {
      return new IscsiProtocolError('BAD_FIELD', `Data-Out burst ended at ${sequence.nextOffset} before ${sequence.endOffset}`, { field: 'F' });
    } else {
      this.solicitedBursts?.delete(sequence.targetTransferTag);
    }
    return undefined;
  }

  /** The R2Ts to send now: none while unsolicited data is still due. */
  nextR2Ts(): R2TRequest[] {
    const requests: R2TRequest[] = [];
    if (this.unsolicited !== undefined) {
      return requests;
    }
    if (this.nextR2TOffset >= this.buffer.length) {
      return requests;
    }
    const solicited = (this.solicitedBursts ??= new Map<number, Sequence>());
    while (solicited.size < this.limits.maxOutstandingR2T && this.nextR2TOffset < this.buffer.length) {
      const length = Math.min(this.limits.maxBurstLength, this.buffer.length - this.nextR2TOffset);
      const targetTransferTag = this.newTargetTransferTag();
      const request: R2TRequest = { targetTransferTag, r2tSN: this.nextR2TSN, bufferOffset: this.nextR2TOffset, desiredDataTransferLength: length };
      solicited.set(targetTransferTag, { targetTransferTag, endOffset: this.nextR2TOffset + length, nextOffset: this.nextR2TOffset, nextDataSN: 0 });
      this.nextR2TSN += 1;
      this.nextR2TOffset += length;
      requests.push(request);
    }
    return requests;
  }
}
