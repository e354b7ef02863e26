import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PlinthError } from '../../common/plinth-error.js';
import { isValidNodeId } from '../config/setting-parsers.js';

export const NODE_ID_FILE = 'node-id';

export interface NodeIdInputs {
  /** --node-id / PLINTH_NODE_ID / config file, if any. */
  readonly configured: string | null;
  /** How the operator set it, e.g. `--node-id`, for the error message. */
  readonly configuredSource: string;
  /** Contents of `<data-dir>/node-id`, or null on first start. */
  readonly persisted: string | null;
  readonly hostname: string;
  readonly dataDir: string;
}

export interface NodeIdDecision {
  readonly nodeId: string;
  /** True on first start: the id must be written to the data dir. */
  readonly persist: boolean;
}

/**
 * A data dir belongs to one node for life: its replicas, generations and
 * cluster membership are keyed by the node id, so a later start under another
 * id would impersonate a different node. First start: configured id, else the
 * hostname. Later starts: the persisted id; a different configured id is refused.
 */
export function decideNodeId(inputs: NodeIdInputs): NodeIdDecision {
  const { configured, persisted } = inputs;
  if (persisted !== null) {
    if (!isValidNodeId(persisted)) {
      throw new PlinthError('CONFIG_INVALID', `config: ${join(inputs.dataDir, NODE_ID_FILE)} holds an invalid node id ${JSON.stringify(persisted)}`, {
        dataDir: inputs.dataDir,
      });
    }
    if (configured !== null && configured !== persisted) {
      throw new PlinthError(
        'CONFIG_INVALID',
        `config: ${inputs.configuredSource}=${JSON.stringify(configured)}: data dir ${inputs.dataDir} belongs to node ${JSON.stringify(persisted)}; ` +
          'a node id cannot change (drop the setting or use another data dir)',
        { configured, persisted, dataDir: inputs.dataDir },
      );
    }
    return { nodeId: persisted, persist: false };
  }
  if (configured !== null) return { nodeId: configured, persist: true };
  if (!isValidNodeId(inputs.hostname)) {
    throw new PlinthError(
      'CONFIG_INVALID',
      `config: the hostname ${JSON.stringify(inputs.hostname)} is not a valid node id; set --node-id`,
      { hostname: inputs.hostname },
    );
  }
  return { nodeId: inputs.hostname, persist: true };
}

/** Shell around decideNodeId: reads and (on first start) durably writes `<data-dir>/node-id`. */
export async function loadNodeId(options: Omit<NodeIdInputs, 'persisted'>): Promise<string> {
  const path = join(options.dataDir, NODE_ID_FILE);
  const persisted = await readOptionalFile(path);
  const decision = decideNodeId({ ...options, persisted: persisted === null ? null : persisted.trim() });
  if (decision.persist) {
    // Write-then-rename so a crash never leaves a half-written id behind.
    const temporaryPath = `${path}.tmp`;
    await writeFile(temporaryPath, `${decision.nodeId}\n`, { mode: 0o644, flush: true });
    await rename(temporaryPath, path);
  }
  return decision.nodeId;
}

export async function readOptionalFile(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return null;
    throw err;
  }
}
