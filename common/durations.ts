import { PlinthError } from './plinth-error.js';

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parse a duration such as "90s", "10m", "1h30m", "2d" or a whole number of
 * seconds (REST and CLI give durations the way they give sizes: a number or
 * a string with units). Units: ms, s, m, h, d.
 */
export function parseDurationMs(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) throw invalid(input, 'a whole number of seconds must be 0 or more');
    return input * 1000;
  }
  const text = input.trim();
  if (/^\d+$/.test(text)) return parseDurationMs(Number(text));
  const parts = [...text.matchAll(/(\d+)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== text) {
    throw invalid(input, 'use a number of seconds or units ms, s, m, h, d, e.g. 90s, 10m, 1h30m');
  }
  let totalMs = 0;
  for (const [, amount = '0', unit = 's'] of parts) totalMs += Number(amount) * (UNIT_MS[unit] ?? 0);
  if (!Number.isSafeInteger(totalMs)) throw invalid(input, 'too long');
  return totalMs;
}

/** "10m", "1h30m", "45s", "250ms": the largest units that render the value exactly. */
export function formatDurationMs(durationMs: number): string {
  if (durationMs === 0) return '0s';
  let rest = durationMs;
  const pieces: string[] = [];
  for (const unit of ['d', 'h', 'm', 's', 'ms'] as const) {
    const size = UNIT_MS[unit] ?? 1;
    const count = Math.floor(rest / size);
    if (count > 0) pieces.push(`${count}${unit}`);
    rest -= count * size;
  }
  return pieces.join('');
}

function invalid(input: string | number, why: string): PlinthError {
  return new PlinthError('INVALID_ARGUMENT', `invalid duration ${JSON.stringify(input)}: ${why}`, { input });
}
