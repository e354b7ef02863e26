import type { Socket } from 'node:net';
import type pino from 'pino';
import { isPlinthError, toError } from '../../common/plinth-error.js';
import type { ExportHandle, ExportProvider } from '../export-provider.js';
import { type FrameSink, OutgoingFrames } from '../outgoing-frames.js';
import type { BufferPool } from '../buffer-pool.js';
import type { ChapSecretProvider } from './chap.js';
import type { ReplyPart } from './data-in-writer.js';
import type { Portal } from './discovery.js';
import { FullFeaturePhase } from './full-feature-phase.js';
import { LoginStatus, RejectReason, RESERVED_TAG } from './iscsi-constants.js';
import { IscsiSession, type SessionTable } from './iscsi-session.js';
import type { IscsiLimits } from './limits.js';
import { LoginNegotiator, type LoginReply } from './login-negotiator.js';
import { decodeInitiatorPdu, type LoginRequestPdu } from './pdu-decode.js';
import { encodeLoginResponse, encodeNopIn, encodeReject, type SequenceFields } from './pdu-encode.js';
import { type DigestSettings, framePdu, NO_DIGESTS } from './pdu-frame.js';
import { PduReader } from './pdu-reader.js';
import { IscsiProtocolError } from './protocol-error.js';
import type { ScsiTargetRegistry } from './scsi/scsi-task.js';
import { encodeTextPairs } from './text-keys.js';

/**
 * One initiator connection: the socket shell around the pure pieces. It
 * reads PDUs with a PduReader, runs login through a LoginNegotiator, then
 * hands PDUs to the FullFeaturePhase; it frames and sends every reply with
 * the connection's StatSN, pings an idle initiator (NOP-In) and drops one
 * that stops answering. Any failure ends only this connection (invariant 7).
 */

export interface IscsiTimers {
  now(): number;
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export const REAL_TIMERS: IscsiTimers = {
  now: () => Date.now(),
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
};

export interface IscsiConnectionModules {
  readonly socket: Socket;
  readonly exports: ExportProvider;
  readonly registry: ScsiTargetRegistry;
  readonly sessions: SessionTable<IscsiConnection>;
  readonly chapSecrets: ChapSecretProvider;
  readonly randomBytes: (count: number) => Buffer;
  readonly timers: IscsiTimers;
  readonly logger: pino.Logger;
  /** The server's recycled buffers for write data (full-feature-phase.ts). */
  readonly dataBuffers?: BufferPool;
}

type Phase = 'login' | 'full-feature' | 'closing';

/**
 * Reply frames up to this size are copied into the connection's batch slab
 * (outgoing-frames.ts); larger data segments go to the socket as they are.
 * Why (perf, 4k randread qd1): joining a turn's frames with Buffer.concat
 * made one ArrayBuffer per reply, and that external memory drove V8 into a
 * major GC every ~150 ms (~10 % of the target's time at 7k IOPS). Not more
 * than a 4 KiB block: an initiator with a small MaxRecvDataSegmentLength
 * gets a large READ in many small segments, and copying those would copy
 * the whole read.
 */
const COPIED_FRAME_MAX_BYTES = 4096;

export class IscsiConnection {
  readonly connectionId: string;
  /** Settles once the socket is closed and the session's resources are released. */
  readonly finished: Promise<void>;
  private readonly limits: IscsiLimits;
  private readonly portal: Portal;
  private readonly modules: IscsiConnectionModules;
  private readonly socket: Socket;
  private readonly logger: pino.Logger;
  private readonly reader: PduReader;
  private readonly negotiator: LoginNegotiator;
  private phase: Phase = 'login';
  private digests: DigestSettings = NO_DIGESTS;
  private statSN = 0;
  private loginCmdSN = 0;
  private busy = false;
  private session: IscsiSession | undefined;
  private fullFeature: FullFeaturePhase | undefined;
  private resolveFinished: () => void = () => undefined;
  private keepAlive: unknown;
  private readonly startedMs: number;
  /** Unparsed input held at most (a whole PDU plus slack), so a flood during login cannot grow memory. */
  private readonly maxBufferedInputBytes: number;
  private lastReceiveMs: number;
  private ping: { targetTransferTag: number; sentMs: number } | undefined;
  private nextPingTag = 0x80000000;
  private readonly sequenceFields = { statSN: 0, expCmdSN: 0, maxCmdSN: 0 };
  /** PDUs framed this turn, written together at the end of it (one socket write in the usual case). */
  private readonly outgoing: OutgoingFrames;
  /** When we ended our side; an initiator that never closes its side is dropped after nopTimeoutMs. */
  private closingSinceMs: number | undefined;

  constructor(options: { connectionId: string; limits: IscsiLimits; portal: Portal }, modules: IscsiConnectionModules) {
    this.connectionId = options.connectionId;
    this.limits = options.limits;
    this.portal = options.portal;
    this.modules = modules;
    this.socket = modules.socket;
    this.logger = modules.logger.child({ connectionId: options.connectionId, remote: modules.socket.remoteAddress });
    this.outgoing = new OutgoingFrames(writableSink(modules.socket), { schedule: (flush) => process.nextTick(flush) });
    const dataBuffers = modules.dataBuffers;
    this.reader = new PduReader({
      maxDataSegmentBytes: Math.max(8192, options.limits.maxRecvDataSegmentLength),
      // Lent for PDUs spanning socket chunks; FullFeaturePhase gives Data-Out data back once copied.
      ...(dataBuffers === undefined ? {} : { allocate: (lengthBytes: number) => dataBuffers.acquire(lengthBytes) }),
    });
    this.negotiator = new LoginNegotiator(
      {
        preferences: {
          maxRecvDataSegmentLength: options.limits.maxRecvDataSegmentLength,
          maxBurstLength: options.limits.maxBurstLength,
          firstBurstLength: options.limits.firstBurstLength,
          maxOutstandingR2T: options.limits.maxOutstandingR2T,
          initialR2T: false,
          immediateData: true,
          allowHeaderDigest: true,
          allowDataDigest: true,
        },
        portalGroupTag: options.portal.portalGroupTag,
        maxTextBytes: options.limits.maxTextBytes,
      },
      {
        volumeExists: (name) => this.volumeExists(name),
        chapSecrets: modules.chapSecrets,
        randomBytes: modules.randomBytes,
      },
    );
    this.finished = new Promise((resolve) => {
      this.resolveFinished = resolve;
    });
    this.maxBufferedInputBytes = 2 * Math.max(8192, options.limits.maxRecvDataSegmentLength) + 1024 * 1024;
    this.startedMs = modules.timers.now();
    this.lastReceiveMs = this.startedMs;
  }

  start(): void {
    this.socket.on('data', (chunk: Buffer) => {
      this.lastReceiveMs = this.modules.timers.now();
      this.reader.push(chunk);
      if (this.reader.bufferedBytes() > this.maxBufferedInputBytes) {
        this.socket.pause(); // bounded input: resumed once pump() has worked it off
      }
      // Replies the device gives at once leave in this callback, together (OutgoingFrames.beginBatch).
      this.outgoing.beginBatch();
      try {
        this.pump();
      } finally {
        this.outgoing.endBatch();
      }
    });
    this.socket.on('error', (error) => this.logger.debug({ err: error }, 'iSCSI socket error'));
    this.socket.on('end', () => {
      this.disconnect('initiator closed the connection', 'debug');
    });
    this.socket.on('close', () => {
      this.cleanUp().catch((error: unknown) => this.logger.error({ err: toError(error) }, 'iSCSI connection clean-up failed'));
    });
    this.socket.on('drain', this.resumeReading);
    const tick = Math.max(10, Math.min(this.limits.nopIntervalMs, this.limits.nopTimeoutMs, this.limits.loginTimeoutMs) / 2);
    this.keepAlive = this.modules.timers.setInterval(() => this.checkAlive(), tick);
  }

  /** The volume this connection's session serves, if it is a normal session. */
  volumeName(): string | undefined {
    return this.session?.identity.volumeName;
  }

  /** Hard drop: the socket goes now; running tasks are not answered. */
  disconnect(reason: string, level: 'info' | 'debug' = 'info'): void {
    if (this.socket.destroyed) return;
    this.logger[level]({ reason }, 'iSCSI connection dropped');
    this.phase = 'closing';
    this.fullFeature?.abortAll();
    this.socket.destroy();
  }

  /** Graceful close: stop reading, let running tasks finish and answer, flush the device, close. */
  async shutdown(): Promise<void> {
    this.phase = 'closing';
    this.socket.pause();
    await this.fullFeature?.drain();
    await this.flushDevice();
    this.outgoing.flush();
    this.socket.end();
    await this.finished;
  }

  private async flushDevice(): Promise<void> {
    const handle = this.session?.handle;
    if (handle === undefined) return;
    try {
      await handle.device.flush();
    } catch (error) {
      this.logger.warn({ err: toError(error) }, 'flush on iSCSI shutdown failed');
    }
  }

  /** Take PDUs again after a pause (the socket drained, or reads ended); some may wait in the reader with no new bytes to wake us. */
  private readonly resumeReading = (): void => {
    this.socket.resume();
    this.pump();
  };

  private pump(): void {
    while (!this.busy && this.phase !== 'closing') {
      if (this.outgoing.hasBacklogOf(this.limits.maxQueuedReplyBytes)) {
        this.socket.pause(); // resumes on 'drain'; the initiator waits for its replies
        return;
      }
      if (this.fullFeature?.hasReadRoom() === false) {
        this.socket.pause(); // resumes when reads end (FullFeaturePhase calls resumeReading)
        return;
      }
      const result = this.reader.next();
      if (result === undefined) {
        if (this.socket.isPaused()) this.socket.resume();
        return;
      }
      if (result.kind === 'fatal') {
        this.logger.info({ err: result.error }, 'unreadable iSCSI stream');
        this.disconnect(result.error.message);
        return;
      }
      if (result.kind === 'data-digest-error') {
        // §7.8: at ErrorRecoveryLevel 0 the PDU is lost; reject it and end the connection.
        this.sendReject(RejectReason.DATA_DIGEST_ERROR, result.bhs);
        this.endAfterFlush();
        return;
      }
      const pdu = decodeInitiatorPdu(result.pdu);
      if (pdu instanceof IscsiProtocolError) {
        this.logger.info({ err: pdu }, 'malformed iSCSI PDU');
        this.sendReject(RejectReason.INVALID_PDU_FIELD, result.pdu.bhs);
        continue;
      }
      if (pdu.kind === 'nop-out' && pdu.initiatorTaskTag === RESERVED_TAG && this.ping?.targetTransferTag === pdu.targetTransferTag) {
        this.ping = undefined;
      }
      if (this.phase === 'login') {
        if (pdu.kind !== 'login') {
          this.logger.info({ kind: pdu.kind }, 'non-login PDU during login');
          this.disconnect('non-login PDU during login');
          return;
        }
        this.busy = true;
        this.onLogin(pdu)
          .catch((error: unknown) => {
            this.logger.warn({ err: toError(error) }, 'login failed in the target');
            this.disconnect('login failed in the target');
          })
          .finally(() => {
            this.busy = false;
            this.pump();
          });
        return;
      }
      this.fullFeature?.handle(pdu, result.pdu.bhs);
    }
  }

  /** The sequence numbers for the PDU being encoded now: one object, refilled per PDU (encoders copy it at once). */
  private sequence(): SequenceFields {
    const window = this.session?.window;
    const fields = this.sequenceFields;
    fields.statSN = this.statSN;
    fields.expCmdSN = window?.expCmdSN() ?? this.loginCmdSN;
    fields.maxCmdSN = window?.maxCmdSN() ?? (this.loginCmdSN + this.limits.commandWindowDepth - 1) >>> 0;
    return fields;
  }

  send(part: ReplyPart): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    const pdu = part.encode(this.sequence());
    if (part.carriesStatus) this.statSN = (this.statSN + 1) >>> 0;
    for (const frame of framePdu(pdu, this.digests)) {
      if (frame.length <= COPIED_FRAME_MAX_BYTES) this.outgoing.copy(frame);
      else this.outgoing.append(frame);
    }
  }

  /** ConnectionPort: `callback` once the frames sent so far are written. */
  afterSent(callback: () => void): void {
    this.outgoing.afterQueued(callback);
  }

  private sendReject(reason: number, rejectedHeader: Buffer): void {
    this.send({ carriesStatus: true, encode: (sequence) => encodeReject({ ...sequence, reason, rejectedHeader }) });
  }

  private endAfterFlush(): void {
    this.outgoing.flush();
    this.phase = 'closing';
    this.closingSinceMs ??= this.modules.timers.now();
    this.socket.end();
  }

  private async onLogin(request: LoginRequestPdu): Promise<void> {
    if (this.negotiator.identity() === undefined) {
      this.statSN = request.expStatSN;
      this.loginCmdSN = request.cmdSN;
      if (request.tsih !== 0) {
        // MaxConnections=1: a connection cannot join an existing session.
        const exists = this.modules.sessions.byTsihValue(request.tsih) !== undefined;
        this.failLogin(request, exists ? LoginStatus.TOO_MANY_CONNECTIONS : LoginStatus.SESSION_DOES_NOT_EXIST, 'no connections can be added to a session');
        return;
      }
    }
    let reply: LoginReply;
    try {
      reply = await this.negotiator.handle(request);
    } catch (error) {
      this.logger.warn({ err: toError(error) }, 'login failed in the target');
      this.failLogin(request, LoginStatus.TARGET_ERROR, 'target error during login');
      return;
    }
    if (reply.status !== 0) {
      this.failLogin(request, reply.status, reply.reason ?? 'login refused');
      return;
    }
    if (!reply.complete) {
      this.sendLoginResponse(request, reply, 0);
      return;
    }
    const status = await this.openSession(request);
    if (status !== LoginStatus.SUCCESS) {
      this.failLogin(request, status, 'the volume could not be opened here');
      return;
    }
    const session = this.session;
    if (session === undefined) return;
    this.sendLoginResponse(request, reply, session.tsih);
    // §13.1: digests apply from the first PDU after the final Login Response.
    this.digests = { header: session.parameters.headerDigest, data: session.parameters.dataDigest };
    this.reader.setDigests(this.digests);
    this.reader.setMaxDataSegmentBytes(session.parameters.targetMaxRecvDataSegmentLength);
    this.phase = 'full-feature';
    this.fullFeature = new FullFeaturePhase(
      { limits: this.limits, portal: this.portal },
      {
        session,
        exports: this.modules.exports,
        logger: this.logger,
        ...(this.modules.dataBuffers === undefined ? {} : { dataBuffers: this.modules.dataBuffers }),
        port: {
          send: (part) => this.send(part),
          reject: (reason, header) => this.sendReject(reason, header),
          disconnect: (why) => this.disconnect(why),
          endAfterFlush: () => this.endAfterFlush(),
          afterSent: (callback) => this.afterSent(callback),
          resumeReading: this.resumeReading,
        },
      },
    );
    this.logger.info(
      {
        tsih: session.tsih,
        initiator: session.identity.initiatorName,
        target: session.identity.targetName ?? 'discovery',
        headerDigest: session.parameters.headerDigest,
        dataDigest: session.parameters.dataDigest,
      },
      'iSCSI session logged in',
    );
  }

  /** Reinstate (§6.3.5), open the export and the logical unit; returns a login status. */
  private async openSession(request: LoginRequestPdu): Promise<number> {
    const identity = this.negotiator.identity();
    if (identity === undefined) return LoginStatus.INITIATOR_ERROR;
    for (const old of this.modules.sessions.reinstatementOf(identity)) {
      old.disconnect('session reinstated by a new login');
      await old.finished;
    }
    let handle: ExportHandle | undefined;
    if (identity.sessionType === 'normal' && identity.volumeName !== undefined) {
      try {
        handle = await this.modules.exports.openExport(identity.volumeName, {
          protocol: 'iscsi',
          connectionId: this.connectionId,
          remoteAddress: this.socket.remoteAddress ?? 'unknown',
        });
      } catch (error) {
        return this.openFailureStatus(error, identity.volumeName);
      }
    }
    if (this.socket.destroyed) {
      handle?.release();
      return LoginStatus.TARGET_ERROR;
    }
    const logicalUnit =
      handle === undefined
        ? undefined
        : this.modules.registry.openLogicalUnit(handle.description, handle.device, {
            initiatorName: identity.initiatorName,
            isid: identity.isid,
            targetPortalGroupTag: this.portal.portalGroupTag,
          });
    const session = new IscsiSession(
      {
        tsih: this.modules.sessions.allocateTsih(),
        identity,
        parameters: this.negotiator.parameters(),
        initialCmdSN: request.cmdSN,
        windowDepth: this.limits.commandWindowDepth,
      },
      { handle, logicalUnit, logger: this.logger },
    );
    this.session = session;
    this.modules.sessions.add(session, this);
    return LoginStatus.SUCCESS;
  }

  private openFailureStatus(error: unknown, volumeName: string): number {
    if (isPlinthError(error, 'VOLUME_NOT_FOUND')) {
      return LoginStatus.NOT_FOUND;
    }
    // Owned elsewhere, busy, shutting down: the initiator may retry later (§11.13.5 0x0301).
    this.logger.info({ err: toError(error), volume: volumeName }, 'iSCSI login refused: volume cannot be opened on this node');
    return isPlinthError(error) && error.code !== 'INTERNAL' && error.code !== 'IO_ERROR'
      ? LoginStatus.SERVICE_UNAVAILABLE
      : LoginStatus.TARGET_ERROR;
  }

  private sendLoginResponse(request: LoginRequestPdu, reply: LoginReply, tsih: number): void {
    this.send({
      carriesStatus: true,
      encode: (sequence) =>
        encodeLoginResponse({
          ...sequence,
          transit: reply.transit,
          continue: reply.continue,
          currentStage: reply.currentStage,
          nextStage: reply.nextStage,
          isid: request.isid,
          tsih,
          initiatorTaskTag: request.initiatorTaskTag,
          status: reply.status,
          data: encodeTextPairs(reply.pairs),
        }),
    });
  }

  /** §6.3: a login failure response ends the connection. */
  private failLogin(request: LoginRequestPdu, status: number, reason: string): void {
    this.logger.info({ status: `0x${status.toString(16).padStart(4, '0')}`, reason }, 'iSCSI login refused');
    this.sendLoginResponse(
      request,
      { transit: false, continue: false, currentStage: request.currentStage, nextStage: 0, status, pairs: [], complete: false },
      0,
    );
    this.endAfterFlush();
  }

  private async volumeExists(name: string): Promise<boolean> {
    try {
      await this.modules.exports.describeExport(name);
      return true;
    } catch (error) {
      if (isPlinthError(error, 'VOLUME_NOT_FOUND')) return false;
      throw error;
    }
  }

  /** NOP-In keep-alive (§11.19) and the login deadline. */
  private checkAlive(): void {
    const now = this.modules.timers.now();
    if (this.closingSinceMs !== undefined && now - this.closingSinceMs >= this.limits.nopTimeoutMs) {
      this.socket.destroy();
      return;
    }
    if (this.phase === 'login') {
      if (now - this.startedMs >= this.limits.loginTimeoutMs) this.disconnect('login did not complete in time');
      return;
    }
    if (this.phase !== 'full-feature') return;
    if (this.ping !== undefined) {
      if (now - this.ping.sentMs >= this.limits.nopTimeoutMs) this.disconnect('initiator did not answer our NOP-In');
      return;
    }
    if (now - this.lastReceiveMs < this.limits.nopIntervalMs) return;
    const targetTransferTag = this.nextPingTag;
    this.nextPingTag = this.nextPingTag >= 0xfffffffe ? 0x80000000 : this.nextPingTag + 1;
    this.ping = { targetTransferTag, sentMs: now };
    // §11.19.2: a target ping carries ITT 0xffffffff and does not advance StatSN.
    this.send({ carriesStatus: false, encode: (sequence) => encodeNopIn({ ...sequence, lun: 0, initiatorTaskTag: RESERVED_TAG, targetTransferTag }) });
  }

  private async cleanUp(): Promise<void> {
    if (this.phase === 'closing' && this.keepAlive === undefined) return;
    this.phase = 'closing';
    if (this.keepAlive !== undefined) {
      this.modules.timers.clearInterval(this.keepAlive);
      this.keepAlive = undefined;
    }
    this.fullFeature?.abortAll();
    try {
      await this.fullFeature?.drain();
    } finally {
      const session = this.session;
      if (session !== undefined) {
        this.modules.sessions.remove(session);
        try {
          session.close();
        } catch (error) {
          this.logger.error({ err: toError(error) }, 'closing the iSCSI session failed');
        }
      }
      this.logger.debug('iSCSI connection closed');
      this.resolveFinished();
    }
  }
}

/** The connection's socket for OutgoingFrames: nothing is written once it is destroyed or ended. */
function writableSink(socket: Socket): FrameSink {
  return {
    write: (chunk, callback) => (socket.destroyed || !socket.writable ? false : socket.write(chunk, callback)),
    cork: () => socket.cork(),
    uncork: () => socket.uncork(),
    get writableLength() {
      return socket.writableLength;
    },
  };
}
