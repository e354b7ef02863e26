import { RESERVED_TAG } from './iscsi-constants.js';
import type { TextRequestPdu } from './pdu-decode.js';
import { IscsiProtocolError } from './protocol-error.js';
import { decodeTextPairs, encodeTextPairs, TextAccumulator, type TextPair } from './text-keys.js';

/**
 * Text Request/Response exchanges in the full feature phase (RFC 7143
 * §11.10-§11.11, §6.2): requests continued with C are gathered; answers
 * longer than the initiator's MaxRecvDataSegmentLength go out in parts,
 * each with C=1 and a Target Transfer Tag the initiator echoes in an empty
 * request to fetch the next part. Pure apart from the answer callback.
 */

export type TextStep =
  | { readonly kind: 'respond'; readonly final: boolean; readonly continue: boolean; readonly targetTransferTag: number; readonly data: Buffer }
  | { readonly kind: 'error'; readonly error: IscsiProtocolError };

export class TextExchange {
  private readonly request: TextAccumulator;
  private pendingAnswer: { itt: number; ttt: number; data: Buffer; offset: number } | undefined;
  private nextTag = 1;

  constructor(options: { maxTextBytes: number }) {
    this.request = new TextAccumulator(options.maxTextBytes);
  }

  async step(pdu: TextRequestPdu, maxSegmentBytes: number, answer: (pairs: TextPair[]) => Promise<TextPair[]>): Promise<TextStep> {
    if (pdu.targetTransferTag !== RESERVED_TAG) {
      const pending = this.pendingAnswer;
      if (pending === undefined || pending.ttt !== pdu.targetTransferTag || pending.itt !== pdu.initiatorTaskTag) {
        return { kind: 'error', error: new IscsiProtocolError('BAD_FIELD', 'Text Request continues no answer of ours', { field: 'TTT' }) };
      }
      return this.nextPart(maxSegmentBytes);
    }
    this.pendingAnswer = undefined;
    const overflow = this.request.append(pdu.data);
    if (overflow !== undefined) return { kind: 'error', error: overflow };
    if (pdu.continue) {
      // §11.10.2: acknowledge each part with an empty response until the last.
      return { kind: 'respond', final: false, continue: false, targetTransferTag: this.newTag(), data: Buffer.alloc(0) };
    }
    const pairs = decodeTextPairs(this.request.take());
    if (pairs instanceof IscsiProtocolError) return { kind: 'error', error: pairs };
    const data = encodeTextPairs(await answer(pairs));
    this.pendingAnswer = { itt: pdu.initiatorTaskTag, ttt: RESERVED_TAG, data, offset: 0 };
    return this.nextPart(maxSegmentBytes);
  }

  private nextPart(maxSegmentBytes: number): TextStep {
    const pending = this.pendingAnswer;
    if (pending === undefined) {
      return { kind: 'error', error: new IscsiProtocolError('BAD_FIELD', 'no text answer pending') };
    }
    const end = Math.min(pending.data.length, pending.offset + maxSegmentBytes);
    const data = pending.data.subarray(pending.offset, end);
    pending.offset = end;
    if (end >= pending.data.length) {
      this.pendingAnswer = undefined;
      return { kind: 'respond', final: true, continue: false, targetTransferTag: RESERVED_TAG, data };
    }
    pending.ttt = this.newTag();
    return { kind: 'respond', final: false, continue: true, targetTransferTag: pending.ttt, data };
  }

  private newTag(): number {
    const tag = this.nextTag;
    this.nextTag = this.nextTag >= 0x7fffffff ? 1 : this.nextTag + 1;
    return tag;
  }
}
