import { PlinthError } from './plinth-error.js';

const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
  PiB: 1024 ** 5,
};

/** Largest size we accept: offsets must stay exact in a JS number. */
export const MAX_SIZE_BYTES = Number.MAX_SAFE_INTEGER;

/**
 * Parse "1073741824", "512MiB", "1GiB", "2TiB" (binary units only, per the
 * contract). Decimal units like "1GB" are refused so nobody gets 7% less disk
 * than they asked for.
 */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      throw new PlinthError('INVALID_SIZE', `size must be a non-negative integer number of bytes, got ${input}`, { input });
    }
    return input;
  }
  const match = /^\s*(\d+)(?:\.(\d+))?\s*([A-Za-z]*)\s*$/.exec(input);
  const unitKey = match?.[3] ?? '';
  const unit = UNITS[unitKey];
  if (!match || unit === undefined) {
    throw new PlinthError(
      'INVALID_SIZE',
      `invalid size "${input}": use bytes or a binary unit (KiB, MiB, GiB, TiB), e.g. 10GiB`,
      { input },
    );
  }
  const whole = BigInt(match[1] ?? '0');
  const fractionDigits = match[2] ?? '';
  const scale = 10n ** BigInt(fractionDigits.length);
  const bytesScaled = (whole * scale + BigInt(fractionDigits || '0')) * BigInt(unit);
  if (bytesScaled % scale !== 0n) {
    throw new PlinthError('INVALID_SIZE', `size "${input}" is not a whole number of bytes`, { input });
  }
  const bytes = bytesScaled / scale;
  if (bytes > BigInt(MAX_SIZE_BYTES)) {
    throw new PlinthError('INVALID_SIZE', `size "${input}" is too large`, { input });
  }
  return Number(bytes);
}

/** Render bytes with the largest binary unit that keeps one decimal of precision. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let index = 0;
  while (value >= 1024 && index < units.length - 1) {
    value /= 1024;
    index += 1;
  }
  const text = index === 0 || Number.isInteger(value) ? String(value) : value.toFixed(1);
  return `${text}${units[index]}`;
}
