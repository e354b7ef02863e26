// @ts-check
/** Human sizes in binary units, as the CLI prints them (common/sizes.ts formatSize). */
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** @param {number} bytes @returns {string} */
export function formatBytes(bytes) {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || Number.isInteger(value) ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit] ?? 'B'}`;
}

/** @param {number} part @param {number} total @returns {number} whole percent, 0 when total is 0 */
export function percentOf(part, total) {
  return total <= 0 ? 0 : Math.min(100, Math.floor((part * 100) / total));
}

const DURATION_UNIT_MS = /** @type {const} */ ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 });

/**
 * "90s", "10m", "1h30m", "2d" or whole seconds, as the CLI's --every reads
 * them (common/durations.ts parseDurationMs); null when not a duration.
 * @param {string} text @returns {number | null}
 */
export function durationMs(text) {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const parts = [...trimmed.matchAll(/(\d+)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== trimmed) return null;
  let totalMs = 0;
  for (const [, amount = '0', unit = 's'] of parts) totalMs += Number(amount) * DURATION_UNIT_MS[/** @type {keyof typeof DURATION_UNIT_MS} */ (unit)];
  return Number.isSafeInteger(totalMs) ? totalMs : null;
}

/** "1h30m": the largest units that render the value exactly (common/durations.ts formatDurationMs). @param {number} ms */
export function formatDuration(ms) {
  if (ms === 0) return '0s';
  let rest = ms;
  const pieces = [];
  for (const unit of /** @type {const} */ (['d', 'h', 'm', 's', 'ms'])) {
    const count = Math.floor(rest / DURATION_UNIT_MS[unit]);
    if (count > 0) pieces.push(`${count}${unit}`);
    rest -= count * DURATION_UNIT_MS[unit];
  }
  return pieces.join('');
}
