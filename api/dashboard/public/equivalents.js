// @ts-check
/**
 * Each dashboard action as the CLI command and the REST call that do the
 * same (issue 6: "each action shows its CLI and REST equivalent"). The page
 * sends exactly the RestCall shown, so what is displayed is what happens.
 * CLI forms follow api/cli/commands/volume.ts; REST forms docs/api.md.
 * Snapshot forms follow docs/snapshots.md.
 * Pure functions: test/unit/api/dashboard-equivalents.test.ts runs every
 * CLI line through the real CLI parser.
 *
 * @typedef {import('./api-client.js').RestCall} RestCall
 * @typedef {{ cli: string, rest: RestCall }} Equivalent
 */

/** Quotes a word for a POSIX shell unless it is plainly safe. @param {string} word */
export function shellWord(word) {
  if (word.length === 0) return "''";
  return /^[A-Za-z0-9._:@%+=,/-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

/** @param {string} name */
function volumePath(name) {
  return `/v1/volumes/${encodeURIComponent(name)}`;
}

/**
 * @param {{ name: string, size: string, replicas?: number }} request
 * @returns {Equivalent}
 */
export function createEquivalent({ name, size, replicas }) {
  const replicasFlag = replicas === undefined ? '' : ` --replicas ${replicas}`;
  return {
    cli: `plinth volume create ${shellWord(name)} --size ${shellWord(size)}${replicasFlag}`,
    rest: { method: 'POST', path: '/v1/volumes', body: { name, size, ...(replicas === undefined ? {} : { replicas }) } },
  };
}

/** `volume resize` (alias `volume grow`): PATCH with the new size; shrinking is refused. @param {string} name @param {string} size @returns {Equivalent} */
export function resizeEquivalent(name, size) {
  return {
    cli: `plinth volume resize ${shellWord(name)} --size ${shellWord(size)}`,
    rest: { method: 'PATCH', path: volumePath(name), body: { size } },
  };
}

/** @param {string} name @param {string} nodeId @returns {Equivalent} */
export function attachEquivalent(name, nodeId) {
  return {
    cli: `plinth volume attach ${shellWord(name)} --node ${shellWord(nodeId)}`,
    rest: { method: 'POST', path: `${volumePath(name)}/attach`, body: { node: nodeId } },
  };
}

/** @param {string} name @returns {Equivalent} */
export function detachEquivalent(name) {
  return {
    cli: `plinth volume detach ${shellWord(name)}`,
    rest: { method: 'POST', path: `${volumePath(name)}/detach`, body: {} },
  };
}

/** @param {string} name @returns {Equivalent} */
export function deleteEquivalent(name) {
  return {
    cli: `plinth volume rm ${shellWord(name)}`,
    rest: { method: 'DELETE', path: volumePath(name) },
  };
}

/** @param {string} volume @param {string} snapshot */
function snapshotPath(volume, snapshot) {
  return `${volumePath(volume)}/snapshots/${encodeURIComponent(snapshot)}`;
}

// Snapshots (issue 8; docs/snapshots.md). CLI forms follow
// api/cli/commands/snapshot-commands.ts and snapshot-schedule.ts.

/** @param {string} volume @returns {Equivalent} */
export function listSnapshotsEquivalent(volume) {
  return {
    cli: `plinth snapshot ls ${shellWord(volume)}`,
    rest: { method: 'GET', path: `${volumePath(volume)}/snapshots` },
  };
}

/** @param {string} volume @param {string} snapshot @returns {Equivalent} */
export function createSnapshotEquivalent(volume, snapshot) {
  return {
    cli: `plinth snapshot create ${shellWord(volume)} ${shellWord(snapshot)}`,
    rest: { method: 'POST', path: `${volumePath(volume)}/snapshots`, body: { name: snapshot } },
  };
}

/** @param {string} volume @param {string} snapshot @returns {Equivalent} */
export function deleteSnapshotEquivalent(volume, snapshot) {
  return {
    cli: `plinth snapshot rm ${shellWord(volume)} ${shellWord(snapshot)}`,
    rest: { method: 'DELETE', path: snapshotPath(volume, snapshot) },
  };
}

/** The CLI names the source as one word, SOURCE@SNAPSHOT. @param {string} volume @param {string} snapshot @param {string} cloneName @returns {Equivalent} */
export function cloneEquivalent(volume, snapshot, cloneName) {
  return {
    cli: `plinth volume clone ${shellWord(`${volume}@${snapshot}`)} ${shellWord(cloneName)}`,
    rest: { method: 'POST', path: `${snapshotPath(volume, snapshot)}/clone`, body: { name: cloneName } },
  };
}

/** Refused with VOLUME_ATTACHED unless the volume is detached. @param {string} volume @param {string} snapshot @returns {Equivalent} */
export function revertEquivalent(volume, snapshot) {
  return {
    cli: `plinth volume revert ${shellWord(volume)} ${shellWord(snapshot)}`,
    rest: { method: 'POST', path: `${snapshotPath(volume, snapshot)}/revert` },
  };
}

/**
 * One snapshot across volumes; the CLI takes them comma-separated.
 * @param {string} snapshot @param {string[]} volumes @returns {Equivalent}
 */
export function groupSnapshotEquivalent(snapshot, volumes) {
  return {
    cli: `plinth snapshot create-group ${shellWord(snapshot)} ${shellWord(volumes.join(',') || 'VOLUME,VOLUME')}`,
    rest: { method: 'POST', path: '/v1/snapshot-groups', body: { name: snapshot, volumes } },
  };
}

/**
 * The CLI takes the interval as a duration ("1h"); REST takes milliseconds,
 * which the caller has parsed with durationMs (format.js).
 * @param {string} volume @param {{ every: string, everyMs: number, keep: number }} schedule @returns {Equivalent}
 */
export function scheduleEquivalent(volume, { every, everyMs, keep }) {
  return {
    cli: `plinth snapshot schedule ${shellWord(volume)} --every ${shellWord(every)} --keep ${keep}`,
    rest: { method: 'PUT', path: `${volumePath(volume)}/snapshot-schedule`, body: { everyMs, keep } },
  };
}

/** Existing auto snapshots stay. @param {string} volume @returns {Equivalent} */
export function clearScheduleEquivalent(volume) {
  return {
    cli: `plinth snapshot schedule ${shellWord(volume)} --off`,
    rest: { method: 'DELETE', path: `${volumePath(volume)}/snapshot-schedule` },
  };
}

/** One line such as `POST /v1/volumes {"name":"db","size":"1GiB"}`. @param {RestCall} rest */
export function describeRest(rest) {
  return rest.body === undefined ? `${rest.method} ${rest.path}` : `${rest.method} ${rest.path} ${JSON.stringify(rest.body)}`;
}
