// @ts-check
/**
 * Each dashboard action as the CLI command and the REST call that do the
 * same (issue 6: "each action shows its CLI and REST equivalent"). The page
 * sends exactly the RestCall shown, so what is displayed is what happens.
 * CLI forms follow api/cli/commands/volume.ts; REST forms docs/api.md.
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

/** One line such as `POST /v1/volumes {"name":"db","size":"1GiB"}`. @param {RestCall} rest */
export function describeRest(rest) {
  return rest.body === undefined ? `${rest.method} ${rest.path}` : `${rest.method} ${rest.path} ${JSON.stringify(rest.body)}`;
}
