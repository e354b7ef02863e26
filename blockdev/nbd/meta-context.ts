import { BASE_ALLOCATION_CONTEXT, BASE_NAMESPACE } from './constants.js';
import { ProtocolError } from './protocol-error.js';

/**
 * Query matching for NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT.
 * We know one context, `base:allocation` (proto.md "The base: metadata
 * namespace"): `base:` is a wildcard when listing and ignored when setting;
 * unknown leaf names and unknown namespaces are ignored, never errors.
 */

const KNOWN_BASE_LEAVES: readonly string[] = ['allocation'];

interface ParsedQuery {
  readonly namespace: string;
  readonly leaf: string;
}

function parseQuery(query: string): ParsedQuery | ProtocolError {
  const colon = query.indexOf(':');
  // proto.md: a query MUST start with a non-empty namespace and a colon.
  if (colon <= 0) {
    return new ProtocolError('BAD_STRING', `meta context query "${query}" has no namespace`);
  }
  return { namespace: query.slice(0, colon), leaf: query.slice(colon + 1) };
}

/** Contexts that NBD_OPT_LIST_META_CONTEXT reports for `queries` (none = all). */
export function listMetaContexts(queries: readonly string[]): string[] | ProtocolError {
  if (queries.length === 0) {
    return [BASE_ALLOCATION_CONTEXT];
  }
  const found = new Set<string>();
  for (const query of queries) {
    const parsed = parseQuery(query);
    if (parsed instanceof ProtocolError) {
      return parsed;
    }
    if (parsed.namespace !== BASE_NAMESPACE) {
      continue;
    }
    for (const leaf of KNOWN_BASE_LEAVES) {
      if (parsed.leaf === '' || parsed.leaf === leaf) {
        found.add(`${BASE_NAMESPACE}:${leaf}`);
      }
    }
  }
  return [...found];
}

/** Contexts that NBD_OPT_SET_META_CONTEXT selects for `queries` (none = none). */
export function selectMetaContexts(queries: readonly string[]): string[] | ProtocolError {
  const selected = new Set<string>();
  for (const query of queries) {
    const parsed = parseQuery(query);
    if (parsed instanceof ProtocolError) {
      return parsed;
    }
    if (parsed.namespace === BASE_NAMESPACE && KNOWN_BASE_LEAVES.includes(parsed.leaf)) {
      selected.add(query);
    }
  }
  return [...selected];
}
