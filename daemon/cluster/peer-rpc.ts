import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { PlinthError, toError } from '../../common/plinth-error.js';
import type { HostPort } from '../config/config-types.js';
import { dialPeer, errorFromJson, errorToJson, JsonLineSocket, type DialSocket } from './json-line-socket.js';
import { RPC_MAGIC } from './peer-listener.js';

/**
 * Requests a follower forwards to the leader over the peer port (REST
 * contract: "writes forwarded to the leader"; reads use the leader's
 * ReadIndex, Raft thesis §6.4). One connection per request: control-plane
 * rates are low and a fresh connection never carries stale state.
 *
 * Authenticated with the cluster secret: the body is MACed (HMAC-SHA256) and
 * carries a timestamp, refused when older than MAX_SKEW_MS, so only members
 * can propose. The answer is not MACed: in a TLS cluster the mutual-TLS
 * connection (`dial`, daemon/tls/peer-sockets.ts) authenticates it.
 */
export type RpcRequest =
  /** `requestId`: the control operation's id (docs/operations.md "Finding one operation in the logs"). */
  | { readonly op: 'propose'; readonly command: unknown; readonly requestId?: string }
  | { readonly op: 'read' }
  | { readonly op: 'remove-voter'; readonly nodeId: string }
  /** This node's part of a support bundle (daemon/support/), logs since `sinceMs`, at most `maxLogBytes` of them. */
  | { readonly op: 'support-node'; readonly sinceMs: number; readonly maxLogBytes: number }
  /**
   * Issue 8: take a snapshot of a volume attached to the called node, which
   * alone can pause its writes (daemon/snapshots/snapshot-coordinator.ts).
   * Answered with the committed SnapshotRecord.
   */
  | { readonly op: 'snapshot-create'; readonly volume: string; readonly snapshot: string; readonly groupId?: string }
  /**
   * Issue 8, group snapshots: the owner pauses the volume's writes (drained)
   * and resumes by itself after `holdMs` at the latest; answers
   * `{token}` (null: not served here), which `volume-resume` hands back.
   */
  | { readonly op: 'volume-pause'; readonly volume: string; readonly holdMs: number }
  | { readonly op: 'volume-resume'; readonly volume: string; readonly token: string };

export type RpcHandler = (request: RpcRequest) => Promise<unknown>;

const LABEL = 'plinth-peer-rpc-v1\0';
const MAX_SKEW_MS = 60_000;

function mac(secret: Buffer, body: string): Buffer {
  return createHmac('sha256', secret).update(LABEL).update(body).digest();
}

/** `maxAnswerBytes`: bound on the answer line (default DEFAULT_MAX_LINE_BYTES; a support bundle part is larger). */
export async function callPeer(
  address: HostPort,
  request: RpcRequest,
  options: { secret: Buffer; timeoutMs: number; nowMs?: number; maxAnswerBytes?: number; dial?: DialSocket },
): Promise<unknown> {
  const socket = await dialPeer(address, options.timeoutMs, options.dial);
  const lines = new JsonLineSocket(socket, options.maxAnswerBytes === undefined ? {} : { maxLineBytes: options.maxAnswerBytes });
  try {
    const body = JSON.stringify({ ...request, ts: options.nowMs ?? Date.now() });
    lines.send({ body, mac: mac(options.secret, body).toString('hex') }, RPC_MAGIC);
    const reply = await lines.receive(options.timeoutMs);
    if (typeof reply !== 'object' || reply === null) throw new PlinthError('PROTOCOL_ERROR', 'peer sent a malformed answer', { reason: 'bad-reply' });
    const record = reply as Record<string, unknown>;
    if (record['ok'] === true) return record['result'];
    throw errorFromJson(record['error']);
  } finally {
    lines.close();
  }
}

/** Serve one forwarded request on a socket routed here by the peer listener. */
export function serveRpcConnection(socket: Socket, secret: () => Buffer | null, handler: RpcHandler, logger: Logger): void {
  const lines = new JsonLineSocket(socket, { skipBytes: RPC_MAGIC.length });
  void (async () => {
    try {
      const request = authenticate(await lines.receive(10_000), secret());
      try {
        lines.send({ ok: true, result: await handler(request) });
      } catch (err) {
        lines.send({ ok: false, error: errorToJson(err) });
      }
    } catch (err) {
      logger.warn({ err: toError(err), remote: socket.remoteAddress }, 'peer rpc: request refused');
      lines.send({ ok: false, error: errorToJson(err) });
    } finally {
      lines.close();
    }
  })();
}

function authenticate(frame: unknown, secret: Buffer | null): RpcRequest {
  if (secret === null) throw new PlinthError('UNAUTHORIZED', 'this node has not joined a cluster yet');
  const record = typeof frame === 'object' && frame !== null ? (frame as Record<string, unknown>) : {};
  const body = record['body'];
  const proof = record['mac'];
  if (typeof body !== 'string' || typeof proof !== 'string') throw new PlinthError('PROTOCOL_ERROR', 'peer rpc needs {body, mac}', { reason: 'shape' });
  const given = Buffer.from(proof, 'hex');
  const expected = mac(secret, body);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new PlinthError('UNAUTHORIZED', 'peer rpc: bad cluster-secret proof');
  }
  const request = JSON.parse(body) as Record<string, unknown>;
  const ts = request['ts'];
  if (typeof ts !== 'number' || Math.abs(Date.now() - ts) > MAX_SKEW_MS) throw new PlinthError('UNAUTHORIZED', 'peer rpc: stale request');
  const op = request['op'];
  if (op === 'read') return { op };
  if (op === 'propose') {
    const requestId = request['requestId'];
    return typeof requestId === 'string' ? { op, command: request['command'], requestId } : { op, command: request['command'] };
  }
  if (op === 'support-node' && typeof request['sinceMs'] === 'number' && typeof request['maxLogBytes'] === 'number') {
    return { op, sinceMs: request['sinceMs'], maxLogBytes: request['maxLogBytes'] };
  }
  if (op === 'remove-voter' && typeof request['nodeId'] === 'string') return { op, nodeId: request['nodeId'] };
  if (op === 'volume-pause' && typeof request['volume'] === 'string' && typeof request['holdMs'] === 'number') return { op, volume: request['volume'], holdMs: request['holdMs'] };
  if (op === 'volume-resume' && typeof request['volume'] === 'string' && typeof request['token'] === 'string') return { op, volume: request['volume'], token: request['token'] };
  if (op === 'snapshot-create' && typeof request['volume'] === 'string' && typeof request['snapshot'] === 'string') {
    const groupId = request['groupId'];
    return typeof groupId === 'string' ? { op, volume: request['volume'], snapshot: request['snapshot'], groupId } : { op, volume: request['volume'], snapshot: request['snapshot'] };
  }
  throw new PlinthError('PROTOCOL_ERROR', `peer rpc: unknown op ${JSON.stringify(op)}`, { reason: 'op' });
}
