// @ts-check
/**
 * The page's only way to the daemon: the /v1 REST API (docs/api.md) with
 * `Authorization: Bearer <token>`. Error answers are
 * `{"error": {"code", "message"}}` (api/http-errors.ts); they become an
 * ApiError whose message is the daemon's own.
 *
 * @typedef {import('../../../daemon/control-plane.js').ClusterView} ClusterView
 * @typedef {import('../../../daemon/control-plane.js').NodeView} NodeView
 * @typedef {import('../../../daemon/control-plane.js').VolumeView} VolumeView
 * @typedef {import('../../../daemon/control-plane.js').SnapshotView} SnapshotView
 * @typedef {{ everyMs: number, keep: number }} SnapshotSchedule
 * @typedef {{ method: string, path: string, body?: Record<string, unknown> }} RestCall
 */

/** Longest the page waits for one answer before saying the daemon is unreachable. */
const REQUEST_TIMEOUT_MS = 10_000;

export class ApiError extends Error {
  /**
   * @param {string} code stable PlinthError code, or UNREACHABLE when no answer came
   * @param {number} status HTTP status, 0 without an answer
   * @param {string} message
   */
  constructor(code, status, message) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
}

export class PlinthApi {
  /** @type {() => string | null} */
  #getToken;

  /** @param {() => string | null} getToken */
  constructor(getToken) {
    this.#getToken = getToken;
  }

  /**
   * @param {RestCall} call
   * @returns {Promise<unknown>} the parsed JSON answer (undefined for 204)
   */
  async send(call) {
    /** @type {Record<string, string>} */
    const headers = { accept: 'application/json' };
    const token = this.#getToken();
    if (token !== null) headers['authorization'] = `Bearer ${token}`;
    if (call.body !== undefined) headers['content-type'] = 'application/json';
    /** @type {Response} */
    let response;
    try {
      response = await fetch(call.path, {
        method: call.method,
        headers,
        cache: 'no-store',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
      });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new ApiError('UNREACHABLE', 0, `cannot reach plinthd: ${reason}`);
    }
    if (response.status === 204) return undefined;
    const text = await response.text();
    const parsed = parseJson(text);
    if (!response.ok) throw errorFromAnswer(response.status, parsed, text);
    return parsed;
  }

  /** @returns {Promise<ClusterView>} */
  async cluster() {
    return /** @type {ClusterView} */ (await this.send({ method: 'GET', path: '/v1/cluster' }));
  }

  /** @returns {Promise<NodeView[]>} */
  async nodes() {
    const answer = /** @type {{ nodes: NodeView[] }} */ (await this.send({ method: 'GET', path: '/v1/nodes' }));
    return answer.nodes;
  }

  /** @returns {Promise<VolumeView[]>} */
  async volumes() {
    const answer = /** @type {{ volumes: VolumeView[] }} */ (await this.send({ method: 'GET', path: '/v1/volumes' }));
    return answer.volumes;
  }

  /** A volume's snapshots, oldest first (issue 8). @param {string} volume @returns {Promise<SnapshotView[]>} */
  async snapshots(volume) {
    const answer = /** @type {{ snapshots: SnapshotView[] }} */ (await this.send({ method: 'GET', path: `/v1/volumes/${encodeURIComponent(volume)}/snapshots` }));
    return answer.snapshots;
  }

  /** The volume's retention schedule, null when it has none. @param {string} volume @returns {Promise<SnapshotSchedule | null>} */
  async snapshotSchedule(volume) {
    const answer = /** @type {{ schedule: SnapshotSchedule | null }} */ (await this.send({ method: 'GET', path: `/v1/volumes/${encodeURIComponent(volume)}/snapshot-schedule` }));
    return answer.schedule;
  }
}

/** @param {string} text @returns {unknown} */
function parseJson(text) {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    // Not JSON (a proxy's HTML page, say): errorFromAnswer quotes the text instead.
    return undefined;
  }
}

/** @param {number} status @param {unknown} parsed @param {string} text @returns {ApiError} */
function errorFromAnswer(status, parsed, text) {
  if (typeof parsed === 'object' && parsed !== null && 'error' in parsed) {
    const error = /** @type {{ error: { code?: unknown, message?: unknown } }} */ (parsed).error;
    if (typeof error.code === 'string' && typeof error.message === 'string') {
      return new ApiError(error.code, status, error.message);
    }
  }
  return new ApiError(`HTTP_${status}`, status, `plinthd answered ${status}: ${text.slice(0, 200)}`);
}
