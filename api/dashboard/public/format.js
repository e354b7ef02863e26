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
