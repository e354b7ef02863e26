import { PlinthError } from '../common/plinth-error.js';

/** Shared range check: the edge validates with it, lower layers assert with it. */
export function assertInRange(offset: number, lengthBytes: number, sizeBytes: number): void {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(lengthBytes) ||
    offset < 0 ||
    lengthBytes < 0 ||
    offset + lengthBytes > sizeBytes
  ) {
    throw new PlinthError(
      'OUT_OF_RANGE',
      `request [${offset}, +${lengthBytes}) is outside the device of ${sizeBytes} bytes`,
      { offset, lengthBytes, sizeBytes },
    );
  }
}
