import { targetNameOf } from './iscsi-constants.js';
import type { TextPair } from './text-keys.js';

/**
 * SendTargets (RFC 7143 §13.3, Appendix C): every node lists every volume
 * as a target reachable at this node's portal (ARCHITECTURE "iSCSI":
 * SendTargets discovery on every node).
 */

export interface Portal {
  readonly host: string;
  readonly port: number;
  readonly portalGroupTag: number;
}

/** §13.8 TargetAddress: domainname[:port][,tpgt]; IPv6 literals in brackets. */
export function formatTargetAddress(portal: Portal): string {
  const host = portal.host.includes(':') ? `[${portal.host}]` : portal.host;
  return `${host}:${portal.port},${portal.portalGroupTag}`;
}

/**
 * The answer to SendTargets=<value>. "All" lists every target (discovery
 * sessions; §13.3 allows it on normal sessions too); an iSCSI name lists
 * just that target when it is ours; an empty value on a normal session
 * means the session's own target.
 */
export function answerSendTargets(options: {
  readonly value: string;
  readonly volumeNames: readonly string[];
  readonly sessionTarget: string | undefined;
  readonly portal: Portal;
}): TextPair[] {
  const { value, volumeNames, sessionTarget, portal } = options;
  const address = formatTargetAddress(portal);
  const targets = volumeNames.map((name) => targetNameOf(name)).sort();
  let chosen: string[];
  if (value === 'All') {
    chosen = targets;
  } else if (value.length === 0) {
    chosen = sessionTarget === undefined ? [] : targets.filter((name) => name === sessionTarget);
  } else {
    chosen = targets.filter((name) => name.toLowerCase() === value.toLowerCase());
  }
  const pairs: TextPair[] = [];
  for (const name of chosen) {
    pairs.push({ key: 'TargetName', value: name });
    pairs.push({ key: 'TargetAddress', value: address });
  }
  return pairs;
}
