import { PlinthError } from './plinth-error.js';

/**
 * Volume names are DNS labels: 1-63 of a-z, 0-9 and '-', starting and ending
 * with a letter or digit. A name is then safe as an NBD export name, a URL
 * path segment and the tail of the IQN `iqn.2026-11.io.plinth:<volume>`
 * (RFC 3720 §3.2.6.2), and '@' stays free for `volume@snapshot` exports.
 * One rule for every edge: the API schema and the state machine use this.
 */
export const VOLUME_NAME_PATTERN_SOURCE = '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$';
export const VOLUME_NAME_MAX_LENGTH = 63;
export const VOLUME_NAME_RULE = '1-63 characters of a-z, 0-9 and "-", starting and ending with a letter or digit';

const VOLUME_NAME_PATTERN = new RegExp(VOLUME_NAME_PATTERN_SOURCE);

export function isValidVolumeName(name: string): boolean {
  return VOLUME_NAME_PATTERN.test(name);
}

export function assertVolumeName(name: string): void {
  if (!isValidVolumeName(name)) {
    throw new PlinthError('INVALID_NAME', `invalid volume name ${JSON.stringify(name)}: use ${VOLUME_NAME_RULE}`, { name });
  }
}
