import type { SchedulerNode } from './placement-types.js';

/**
 * Failure domains from labels. A node without a zone (or rack) label is its
 * own domain: nothing says it shares power or a switch with anyone, so it
 * neither counts as spread against labelled nodes nor collides with them.
 */

export function zoneKey(node: SchedulerNode): string {
  return node.labels.zone === undefined ? `node:${node.id}` : `zone:${node.labels.zone}`;
}

export function rackKey(node: SchedulerNode): string {
  return node.labels.rack === undefined ? `node:${node.id}` : `${zoneKey(node)}/rack:${node.labels.rack}`;
}

/**
 * How far a node is from the owner: 0 same node, 1 same rack, 2 same zone,
 * 3 another zone, 4 down (a replica there serves nobody).
 */
export function distanceFrom(owner: SchedulerNode | undefined, node: SchedulerNode): number {
  if (!node.up) return 4;
  if (owner === undefined) return 3;
  if (owner.id === node.id) return 0;
  if (owner.labels.rack !== undefined && rackKey(owner) === rackKey(node)) return 1;
  if (owner.labels.zone !== undefined && zoneKey(owner) === zoneKey(node)) return 2;
  return 3;
}

export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
