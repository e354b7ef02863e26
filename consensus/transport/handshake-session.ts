/**
 * Runs the HMAC handshake of handshake.ts over a FramedSocket, for either
 * side. A wrong secret, a malformed handshake frame or a timeout fails the
 * returned promise and closes the connection (logged by FramedSocket.fail).
 */
import { PlinthError } from '../../common/plinth-error.js';
import { ChallengeType, HelloType, ProofType } from '../proto/wire-schema.js';
import { decodeWire, encodeWire, wireBytes, wireString } from '../proto/wire-fields.js';
import type { FrameHandler, FramedSocket } from './framed-socket.js';
import { computeProof, HANDSHAKE_NONCE_BYTES, isValidNonce, verifyProof } from './handshake.js';

export interface HandshakeModules {
  readonly randomBytes: (size: number) => Buffer;
  readonly setTimeout: (callback: () => void, delayMs: number) => NodeJS.Timeout;
  readonly clearTimeout: (timer: NodeJS.Timeout) => void;
}

export interface HandshakeParams {
  readonly secret: Buffer;
  readonly nodeId: string;
  readonly timeoutMs: number;
}

/** Dialer side; resolves once both sides are proven. `expectedPeerId` must answer. */
export function dialHandshake(
  framed: FramedSocket,
  params: HandshakeParams & { readonly expectedPeerId: string },
  modules: HandshakeModules,
): Promise<void> {
  return runWithTimeout(framed, params.timeoutMs, modules, (succeed, fail) => {
    const dialerNonce = modules.randomBytes(HANDSHAKE_NONCE_BYTES);
    framed.setHandler((frame) => {
      const challenge = decodeWire(ChallengeType, frame);
      const acceptorNodeId = wireString(challenge, 'node_id');
      const acceptorNonce = wireBytes(challenge, 'nonce');
      if (acceptorNodeId !== params.expectedPeerId) {
        return fail(`dialed ${params.expectedPeerId} but ${acceptorNodeId} answered`);
      }
      const base = { secret: params.secret, dialerNodeId: params.nodeId, acceptorNodeId, dialerNonce, acceptorNonce };
      if (!isValidNonce(acceptorNonce) || !verifyProof({ ...base, role: 'acceptor' }, wireBytes(challenge, 'proof'))) {
        return fail(`peer ${acceptorNodeId} failed the cluster-secret challenge`);
      }
      framed.write(encodeWire(ProofType, { proof: computeProof({ ...base, role: 'dialer' }) }));
      succeed(acceptorNodeId);
    });
    framed.write(encodeWire(HelloType, { node_id: params.nodeId, nonce: dialerNonce }));
  }).then(() => undefined);
}

/**
 * Acceptor side; resolves with the proven peer id. `dataHandler` takes over
 * synchronously on success, because the dialer's first data frame may arrive
 * in the same chunk as its proof.
 */
export function acceptHandshake(
  framed: FramedSocket,
  params: HandshakeParams,
  modules: HandshakeModules,
  dataHandler: (peerId: string) => FrameHandler,
): Promise<string> {
  return runWithTimeout(framed, params.timeoutMs, modules, (succeed, fail) => {
    framed.setHandler((helloFrame) => {
      const hello = decodeWire(HelloType, helloFrame);
      const dialerNodeId = wireString(hello, 'node_id');
      const dialerNonce = wireBytes(hello, 'nonce');
      if (!isValidNonce(dialerNonce) || dialerNodeId.length === 0) return fail('malformed hello');
      const acceptorNonce = modules.randomBytes(HANDSHAKE_NONCE_BYTES);
      const base = { secret: params.secret, dialerNodeId, acceptorNodeId: params.nodeId, dialerNonce, acceptorNonce };
      framed.setHandler((proofFrame) => {
        const proof = wireBytes(decodeWire(ProofType, proofFrame), 'proof');
        if (!verifyProof({ ...base, role: 'dialer' }, proof)) {
          return fail(`peer claiming to be ${dialerNodeId} failed the cluster-secret challenge`);
        }
        framed.setHandler(dataHandler(dialerNodeId));
        succeed(dialerNodeId);
      });
      framed.write(
        encodeWire(ChallengeType, { node_id: params.nodeId, nonce: acceptorNonce, proof: computeProof({ ...base, role: 'acceptor' }) }),
      );
    });
  });
}

type Step = (succeed: (peerId: string) => void, fail: (reason: string) => void) => void;

function runWithTimeout(framed: FramedSocket, timeoutMs: number, modules: HandshakeModules, step: Step): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      modules.clearTimeout(timer);
      framed.socket.off('close', onClose);
      return true;
    };
    const fail = (reason: string): void => {
      if (!settle()) return;
      framed.fail(`handshake: ${reason}`);
      reject(new PlinthError('UNAUTHORIZED', `raft handshake failed: ${reason}`));
    };
    const onClose = (): void => {
      if (settle()) reject(new PlinthError('UNAUTHORIZED', 'raft handshake failed: connection closed'));
    };
    const timer = modules.setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    framed.socket.on('close', onClose);
    step((peerId) => {
      if (settle()) resolve(peerId);
    }, fail);
  });
}
