import type { ExtentStatus } from '../block-device.js';
import { NBD_STATE_HOLE, NBD_STATE_ZERO } from './constants.js';
import type { BlockStatusDescriptor } from './transmission-codec.js';

/**
 * Turn a BlockDevice's allocation runs into base:allocation descriptors
 * (proto.md NBD_CMD_BLOCK_STATUS and "base:allocation metadata context").
 * Pure. Neighbouring runs with equal flags are merged (proto.md: the server
 * SHOULD use different status values between consecutive descriptors) and
 * the total is clipped to the request, so REQ_ONE's "MUST NOT exceed the
 * length of the request" holds and every length fits in 32 bits.
 */
export function toBlockStatusDescriptors(
  runs: readonly ExtentStatus[],
  requestBytes: number,
  requestOne: boolean,
  maxDescriptors: number,
): BlockStatusDescriptor[] | undefined {
  const descriptors: { lengthBytes: number; flags: number }[] = [];
  let coveredBytes = 0;
  for (const run of runs) {
    if (!Number.isSafeInteger(run.lengthBytes) || run.lengthBytes <= 0) {
      return undefined;
    }
    if (coveredBytes >= requestBytes) {
      break;
    }
    const lengthBytes = Math.min(run.lengthBytes, requestBytes - coveredBytes);
    const flags = (run.hole ? NBD_STATE_HOLE : 0) | (run.zero ? NBD_STATE_ZERO : 0);
    const previous = descriptors[descriptors.length - 1];
    if (previous !== undefined && previous.flags === flags) {
      previous.lengthBytes += lengthBytes;
    } else {
      const limit = requestOne ? 1 : maxDescriptors;
      if (descriptors.length === limit) {
        break;
      }
      descriptors.push({ lengthBytes, flags });
    }
    coveredBytes += lengthBytes;
  }
  // The device contract: at least one run covering the first byte.
  return descriptors.length === 0 ? undefined : descriptors;
}

/** proto.md: a server MAY always report status 0 (allocated, contents unknown). */
export function unknownStatusDescriptor(requestBytes: number): BlockStatusDescriptor[] {
  return [{ lengthBytes: requestBytes, flags: 0 }];
}
