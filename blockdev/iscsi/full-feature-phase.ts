import type pino from 'pino';
import { toError } from '../../common/plinth-error.js';
import type { ExportProvider } from '../export-provider.js';
import type { BufferPool } from '../buffer-pool.js';
import { DataOutCollector } from './data-out-collector.js';
import { planScsiReply, planTargetFailure, type ReplyPart } from './data-in-writer.js';
import { answerSendTargets, type Portal } from './discovery.js';
import {
  LogoutReason,
  LogoutResponseCode,
  RejectReason,
  RESERVED_TAG,
  ScsiResponseCode,
} from './iscsi-constants.js';
import type { IscsiSession } from './iscsi-session.js';
import type { IscsiLimits } from './limits.js';
import type {
  DataOutPdu,
  InitiatorPdu,
  LogoutRequestPdu,
  NopOutPdu,
  ScsiCommandPdu,
  TaskManagementPdu,
  TextRequestPdu,
} from './pdu-decode.js';
import {
  encodeLogoutResponse,
  encodeNopIn,
  encodeR2T,
  encodeScsiResponse,
  encodeTaskManagementResponse,
  encodeTextResponse,
} from './pdu-encode.js';
import { dataPhaseErrorSense, directionOf, invalidFieldInCdbSense, type TaskState } from './scsi-task-state.js';
import { type InitiatorPort, type ScsiOutcome, type ScsiResponse, ScsiStatus } from './scsi/scsi-task.js';
import { planTaskManagement, responseForResult } from './task-management.js';
import { TextExchange } from './text-exchange.js';
import type { TextPair } from './text-keys.js';

/**
 * The full feature phase of one connection (RFC 7143 §3.2.4-§3.2.6):
 * SCSI commands through the CmdSN window into ScsiTasks, data-out
 * collection and R2Ts, replies, NOP, task management, text and logout. The
 * connection shell owns the socket; this class only decides what to send.
 */

/** What the phase needs of its connection. */
export interface ConnectionPort {
  /** Frame and send a PDU; `carriesStatus` advances StatSN (§4.2.2.2). */
  send(part: ReplyPart): void;
  reject(reason: number, rejectedHeader: Buffer): void;
  /** Drop the connection (the session ends with it). */
  disconnect(reason: string): void;
  /** Send what is queued, then close (after Logout Response). */
  endAfterFlush(): void;
  /** Run `callback` once the socket has every frame sent so far (at once when all were copied); never if the connection dies. */
  afterSent(callback: () => void): void;
  /** Reads in flight fell under the bound after hasReadRoom() said no: take PDUs again. */
  resumeReading(): void;
}

export class FullFeaturePhase {
  private readonly limits: IscsiLimits;
  private readonly portal: Portal;
  private readonly session: IscsiSession;
  private readonly port: ConnectionPort;
  private readonly exports: ExportProvider;
  private readonly logger: pino.Logger;
  private readonly tasks = new Map<number, TaskState>();
  private readonly text: TextExchange;
  private nextTargetTransferTag = 1;
  private bufferedBytes = 0;
  private readBytesInFlight = 0;
  /** hasReadRoom() said no: the connection waits for reads to end. */
  private waitingForReadRoom = false;
  private loggingOut = false;
  /** The I_T nexus of every task of this session (one object, not one per command). */
  private readonly nexus: InitiatorPort;
  /**
   * Recycled buffers for write data assembled from several PDUs (perf: at
   * 1 MiB writes a fresh buffer per command made GC ~30 % of the loop, as
   * for NBD, buffer-pool.ts). Released in endTask, once the task is over.
   */
  private readonly dataBuffers: BufferPool | undefined;
  /** Large data-in buffers come from the same recycled buffers (released in execute once sent). */
  private readonly dataInAllocator: ((lengthBytes: number) => Buffer) | undefined;

  constructor(
    options: { limits: IscsiLimits; portal: Portal },
    modules: { session: IscsiSession; port: ConnectionPort; exports: ExportProvider; logger: pino.Logger; dataBuffers?: BufferPool },
  ) {
    this.limits = options.limits;
    this.portal = options.portal;
    this.session = modules.session;
    this.port = modules.port;
    this.exports = modules.exports;
    this.logger = modules.logger;
    this.dataBuffers = modules.dataBuffers;
    const dataBuffers = modules.dataBuffers;
    this.dataInAllocator = dataBuffers === undefined ? undefined : (lengthBytes) => dataBuffers.acquire(lengthBytes);
    this.text = new TextExchange({ maxTextBytes: options.limits.maxTextBytes });
    this.nexus = {
      initiatorName: modules.session.identity.initiatorName,
      isid: modules.session.identity.isid,
      targetPortalGroupTag: options.portal.portalGroupTag,
    };
  }

  taskCount(): number {
    return this.tasks.size;
  }

  /**
   * False while the reads of released commands reach the bound: the
   * connection stops taking PDUs, and port.resumeReading() says when to go
   * on. They end without the initiator's help (no Data-Out), so this
   * pause cannot wait on itself.
   */
  hasReadRoom(): boolean {
    if (this.readBytesInFlight < this.limits.maxReadBytesInFlight) return true;
    this.waitingForReadRoom = true;
    return false;
  }

  /** Settles once every task that started executing has ended. */
  async drain(): Promise<void> {
    await Promise.all([...this.tasks.values()].map((task) => task.finished));
  }

  /** Connection gone: no task is answered any more. */
  abortAll(): void {
    for (const task of this.tasks.values()) task.aborted = true;
  }

  newTargetTransferTag(): number {
    const tag = this.nextTargetTransferTag;
    this.nextTargetTransferTag = this.nextTargetTransferTag >= 0x7fffffff ? 1 : this.nextTargetTransferTag + 1;
    return tag;
  }

  handle(pdu: InitiatorPdu, bhs: Buffer): void {
    if (this.loggingOut && pdu.kind !== 'nop-out') {
      this.port.reject(RejectReason.WAITING_FOR_LOGOUT, bhs);
      return;
    }
    switch (pdu.kind) {
      case 'scsi-command':
        return this.onCommand(pdu, bhs);
      case 'data-out':
        return this.onDataOut(pdu, bhs);
      case 'nop-out':
        return this.onNopOut(pdu);
      case 'task-management':
        return this.sequenced(pdu.immediate, pdu.cmdSN, () => this.guard('task management', this.onTaskManagement(pdu)));
      case 'text':
        return this.sequenced(pdu.immediate, pdu.cmdSN, () => this.guard('text request', this.onText(pdu, bhs)));
      case 'logout':
        return this.sequenced(pdu.immediate, pdu.cmdSN, () => this.guard('logout', this.onLogout(pdu)));
      case 'login':
        // §6.3: a Login Request in the full feature phase is a protocol error.
        this.port.reject(RejectReason.PROTOCOL_ERROR, bhs);
        return this.port.endAfterFlush();
      case 'snack':
        // §11.16: SNACK needs ErrorRecoveryLevel > 0; we negotiated 0.
        return this.port.reject(RejectReason.PROTOCOL_ERROR, bhs);
      case 'unknown':
        return this.port.reject(RejectReason.COMMAND_NOT_SUPPORTED, bhs);
    }
  }

  /** An asynchronous handler's failure ends this connection, never the process (invariant 7). */
  private guard(what: string, work: Promise<void>): void {
    work.catch((error: unknown) => {
      this.logger.warn({ err: toError(error) }, `${what} failed; dropping the connection`);
      this.port.disconnect(`${what} failed`);
    });
  }

  /**
   * Run a CmdSN-carrying request that is not a task once the window lets
   * it through; immediate ones run at once (§3.2.2.1).
   */
  private sequenced(immediate: boolean, cmdSN: number, action: () => void): void {
    if (immediate) {
      action();
      return;
    }
    const { window } = this.session;
    const admission = window.admit(cmdSN, () => {
      window.complete();
      action();
    });
    if (admission.kind === 'ignored') {
      this.logger.debug({ cmdSN, expCmdSN: window.expCmdSN(), why: admission.reason }, 'request outside the CmdSN window ignored');
      return;
    }
    if (admission.kind === 'run') for (const run of admission.ready) run();
  }

  private onCommand(command: ScsiCommandPdu, bhs: Buffer): void {
    if (this.tasks.has(command.initiatorTaskTag)) {
      this.port.reject(RejectReason.TASK_IN_PROGRESS, bhs);
      return;
    }
    const task = this.newTask(command, bhs);
    if (task === undefined) return;
    const { window } = this.session;
    if (command.immediate) {
      if (!window.startImmediate()) {
        this.port.reject(RejectReason.IMMEDIATE_COMMAND_REJECT, bhs);
        return;
      }
    } else if (!window.admitNext(command.cmdSN)) {
      this.admitOutOfOrder(task);
      return;
    }
    // Immediate, or next in CmdSN order with nothing queued (the usual case): run it now. A task the
    // device answers at once has ended before it would be filed; only one still running is filed.
    this.bufferedBytes += task.bufferedBytes;
    this.release(task);
    this.maybeStart(task);
    if (!task.ended) this.tasks.set(command.initiatorTaskTag, task);
    this.sendR2Ts(task);
  }

  /** A command ahead of a gap (or outside the window): filed now, run once the window releases it. */
  private admitOutOfOrder(task: TaskState): void {
    const { command } = task;
    const { window } = this.session;
    const admission = window.admit(command.cmdSN, () => {
      this.release(task);
      this.maybeStart(task);
    });
    if (admission.kind === 'ignored') {
      this.logger.debug({ cmdSN: command.cmdSN, expCmdSN: window.expCmdSN(), why: admission.reason }, 'command outside the CmdSN window ignored');
      return;
    }
    this.tasks.set(command.initiatorTaskTag, task);
    this.bufferedBytes += task.bufferedBytes;
    if (admission.kind === 'run') for (const run of admission.ready) run();
    this.sendR2Ts(task);
  }

  /**
   * Its turn in CmdSN order came: it may run, and its reads count from now.
   * Not before: a command held behind a gap waits for the initiator, and
   * the read bound must not stop us reading the command that fills it.
   */
  private release(task: TaskState): void {
    task.released = true;
    this.readBytesInFlight += task.readBytes;
  }

  /** Validate the command's transfer fields and set up data-out collection; undefined after a Reject. */
  private newTask(command: ScsiCommandPdu, bhs: Buffer): TaskState | undefined {
    const direction = directionOf(command);
    const params = this.session.parameters;
    const writeLength = direction === 'write' || direction === 'bidirectional' ? command.expectedDataTransferLength : 0;
    if (command.data.length > 0 && (writeLength === 0 || !params.immediateData)) {
      this.port.reject(RejectReason.PROTOCOL_ERROR, bhs);
      return undefined;
    }
    const immediateError = DataOutCollector.validateImmediate(command.data.length, writeLength, params.firstBurstLength);
    if (immediateError !== undefined) {
      this.logger.info({ err: immediateError }, 'SCSI Command rejected');
      this.port.reject(RejectReason.PROTOCOL_ERROR, bhs);
      return undefined;
    }
    const oversized = writeLength > this.limits.maxTaskDataBytes;
    const overBudget = !oversized && this.bufferedBytes + writeLength > this.limits.maxConnectionDataBytes;
    const collector =
      writeLength === 0 || oversized || overBudget
        ? undefined
        : new DataOutCollector(
            {
              expectedDataTransferLength: writeLength,
              immediateData: command.data,
              // §11.3.1: F=0 announces unsolicited Data-Out; only legal with InitialR2T=No.
              unsolicitedFollows: !command.final && !params.initialR2T,
              limits: params,
            },
            this.collectorModules,
          );
    const refused = oversized || overBudget;
    const task: TaskState = {
      command,
      direction,
      collector,
      bufferedBytes: collector === undefined ? 0 : writeLength,
      // Pure reads only: a bidirectional command waits for Data-Out, which a paused socket would not bring.
      readBytes: !refused && direction === 'read' ? command.expectedDataTransferLength : 0,
      released: false,
      started: false,
      ended: false,
      aborted: false,
      r2tCount: 0,
      finished: undefined,
      refusal: undefined,
    };
    if (refused) {
      // Answered in CmdSN order without reading the data; data-out for it is dropped as unknown.
      task.refusal = oversized
        ? { status: ScsiStatus.CHECK_CONDITION, sense: invalidFieldInCdbSense() }
        : { status: ScsiStatus.TASK_SET_FULL, sense: undefined };
    }
    return task;
  }

  /** One object for every DataOutCollector of the connection (not two closures per write). */
  private readonly collectorModules = {
    newTargetTransferTag: (): number => this.newTargetTransferTag(),
    allocate: (lengthBytes: number): Buffer =>
      this.dataBuffers === undefined ? Buffer.allocUnsafe(lengthBytes) : this.dataBuffers.acquire(lengthBytes),
  };

  private finishRefused(task: TaskState, status: number, sense: Buffer | undefined): void {
    this.endTask(task);
    if (task.aborted) return;
    this.port.send({
      carriesStatus: true,
      encode: (sequence) =>
        encodeScsiResponse({
          ...sequence,
          residual: 'none',
          residualCount: 0,
          initiatorTaskTag: task.command.initiatorTaskTag,
          response: ScsiResponseCode.COMMAND_COMPLETED,
          status,
          expDataSN: 0,
          ...(sense === undefined ? {} : { sense }),
        }),
    });
  }

  private sendR2Ts(task: TaskState): void {
    if (task.collector === undefined || task.aborted) return;
    for (const request of task.collector.nextR2Ts()) {
      task.r2tCount += 1;
      this.port.send({
        carriesStatus: false,
        encode: (sequence) =>
          // Field by field: a spread with extra properties is V8's slow path (scsi-cdb.ts decodeReadWrite).
          encodeR2T({
            statSN: sequence.statSN,
            expCmdSN: sequence.expCmdSN,
            maxCmdSN: sequence.maxCmdSN,
            lun: task.command.lun,
            initiatorTaskTag: task.command.initiatorTaskTag,
            targetTransferTag: request.targetTransferTag,
            r2tSN: request.r2tSN,
            bufferOffset: request.bufferOffset,
            desiredDataTransferLength: request.desiredDataTransferLength,
          }),
      });
    }
  }

  private onDataOut(pdu: DataOutPdu, bhs: Buffer): void {
    this.fileDataOut(pdu, bhs);
    // Copied into its task's buffer or dropped: the reader may have lent this data (release ignores views of socket chunks).
    this.dataBuffers?.release(pdu.data);
  }

  private fileDataOut(pdu: DataOutPdu, bhs: Buffer): void {
    const task = this.tasks.get(pdu.initiatorTaskTag);
    if (task === undefined || task.collector === undefined) {
      // A task we refused, aborted or never accepted (outside the window): its data has nowhere to go.
      this.logger.debug({ itt: pdu.initiatorTaskTag }, 'Data-Out for no open task dropped');
      return;
    }
    if (task.refusal !== undefined) {
      return; // already failed; the rest of its data is dropped
    }
    const error = task.collector.accept(pdu);
    if (error !== undefined) {
      // ErrorRecoveryLevel 0 cannot recover a broken data sequence (§7.1.4.1): the command fails
      // with CHECK CONDITION and the connection carries on, so one bad PDU costs only its task.
      this.logger.info({ err: error, itt: pdu.initiatorTaskTag }, 'Data-Out out of sequence: command fails');
      task.refusal = { status: ScsiStatus.CHECK_CONDITION, sense: dataPhaseErrorSense(error.details['field']) };
      this.maybeStart(task);
      return;
    }
    if (task.collector.isComplete()) {
      this.maybeStart(task);
    } else {
      this.sendR2Ts(task);
    }
  }

  private maybeStart(task: TaskState): void {
    if (task.refusal !== undefined) {
      if (task.released && !task.started) {
        task.started = true;
        this.finishRefused(task, task.refusal.status, task.refusal.sense);
      }
      return;
    }
    if (task.started || !task.released || task.aborted) return;
    if (task.collector !== undefined && !task.collector.isComplete()) return;
    task.started = true;
    this.execute(task);
  }

  /**
   * Run the task on the logical unit. A command the device answers at once
   * is answered now, in the socket callback that brought it (ScsiOutcome
   * says why); one that waits is answered when its promise settles.
   */
  private execute(task: TaskState): void {
    const { command } = task;
    const logicalUnit = this.session.logicalUnit;
    let outcome: ScsiOutcome;
    try {
      if (logicalUnit === undefined) throw new Error('SCSI command on a session without a logical unit');
      outcome = logicalUnit.execute({
        cdb: command.cdb,
        lun: command.lun,
        nexus: this.nexus,
        attribute: command.attribute,
        direction: task.direction,
        expectedDataTransferLength: command.expectedDataTransferLength,
        dataOut: task.collector?.buffer,
        allocateDataIn: this.dataInAllocator,
      });
    } catch (error) {
      this.answerDeviceFailure(task, error);
      return;
    }
    if (outcome instanceof Promise) {
      task.finished = outcome.then(
        (response) => this.answer(task, response),
        (error: unknown) => this.answerDeviceFailure(task, error),
      );
    } else {
      this.answer(task, outcome);
    }
  }

  private answer(task: TaskState, response: ScsiResponse): void {
    const params = this.session.parameters;
    let parts: ReplyPart[];
    try {
      parts = planScsiReply(task, response, {
        maxSegmentBytes: params.initiatorMaxRecvDataSegmentLength,
        maxBurstLength: params.maxBurstLength,
      });
    } catch (error) {
      this.answerDeviceFailure(task, error);
      return;
    }
    const lentDataIn = response.dataIn !== undefined && this.dataBuffers?.isLent(response.dataIn) === true ? response.dataIn : undefined;
    this.endTask(task);
    if (task.aborted) {
      if (lentDataIn !== undefined) this.dataBuffers?.release(lentDataIn); // nothing of it was sent
      return;
    }
    for (const part of parts) this.port.send(part);
    // Views of a lent data-in buffer may wait in the socket's queue: it goes back only once they are written.
    if (lentDataIn !== undefined) {
      const buffer = lentDataIn;
      this.port.afterSent(() => this.dataBuffers?.release(buffer));
    }
  }

  /** ScsiLogicalUnitSession.execute fails only when the device is gone: answer, then drop. */
  private answerDeviceFailure(task: TaskState, error: unknown): void {
    this.logger.warn({ err: toError(error), itt: task.command.initiatorTaskTag }, 'SCSI command failed in the device; dropping the connection');
    this.endTask(task);
    if (task.aborted) return;
    for (const part of planTargetFailure(task)) this.port.send(part);
    queueMicrotask(() => this.port.disconnect('device failed'));
  }

  private endTask(task: TaskState): void {
    if (task.ended) return;
    task.ended = true;
    this.tasks.delete(task.command.initiatorTaskTag);
    this.bufferedBytes -= task.bufferedBytes;
    if (task.released) {
      this.session.window.complete();
      this.readBytesInFlight -= task.readBytes;
      if (this.waitingForReadRoom && this.readBytesInFlight < this.limits.maxReadBytesInFlight) {
        this.waitingForReadRoom = false;
        queueMicrotask(this.port.resumeReading); // after this task's answer went out
      }
    }
    // Nothing uses the data any more: the device call settled or never started (release ignores unpooled buffers).
    if (task.collector !== undefined) this.dataBuffers?.release(task.collector.buffer);
  }

  private onNopOut(pdu: NopOutPdu): void {
    if (pdu.initiatorTaskTag === RESERVED_TAG) {
      return; // an answer to our ping (the connection tracks it) or a one-way keep-alive: no reply (§11.18)
    }
    const reply = (): void => {
      const data = pdu.data.subarray(0, this.session.parameters.initiatorMaxRecvDataSegmentLength);
      this.port.send({
        carriesStatus: true,
        encode: (sequence) =>
          encodeNopIn({ ...sequence, lun: pdu.lun, initiatorTaskTag: pdu.initiatorTaskTag, targetTransferTag: RESERVED_TAG, data: Buffer.from(data) }),
      });
    };
    this.sequenced(pdu.immediate, pdu.cmdSN, reply);
  }

  private async onTaskManagement(pdu: TaskManagementPdu): Promise<void> {
    const { window } = this.session;
    const openTasks = [...this.tasks.values()].map((task) => ({
      initiatorTaskTag: task.command.initiatorTaskTag,
      cmdSN: task.command.cmdSN,
      lun: task.command.lun,
    }));
    const plan = planTaskManagement(pdu, {
      tasks: openTasks,
      expCmdSN: window.expCmdSN(),
      maxCmdSN: window.maxCmdSN(),
      lunExists: (lun) => lun === 0,
    });
    const waits: Promise<void>[] = [];
    for (const itt of plan.affectedTaskTags) {
      const task = this.tasks.get(itt);
      if (task === undefined) continue;
      task.aborted = true;
      if (task.finished !== undefined && task.started) {
        waits.push(task.finished); // §4.2.3.3: answer the TMF only after the task really ended
      } else {
        this.endTask(task);
      }
    }
    await Promise.all(waits);
    let response = plan.response;
    if (plan.forward !== undefined && this.session.logicalUnit !== undefined) {
      try {
        response = responseForResult(await this.session.logicalUnit.taskManagement(plan.forward));
      } catch (error) {
        this.logger.warn({ err: toError(error), fn: plan.forward }, 'task management failed in the device server');
        response = responseForResult('rejected');
      }
    }
    this.port.send({
      carriesStatus: true,
      encode: (sequence) => encodeTaskManagementResponse({ ...sequence, initiatorTaskTag: pdu.initiatorTaskTag, response }),
    });
    if (plan.dropConnection) this.port.endAfterFlush();
  }

  private async onText(pdu: TextRequestPdu, bhs: Buffer): Promise<void> {
    const segment = this.session.parameters.initiatorMaxRecvDataSegmentLength;
    const step = await this.text.step(pdu, segment, (pairs) => this.answerText(pairs));
    if (step.kind === 'error') {
      this.logger.info({ err: step.error }, 'Text Request rejected');
      this.port.reject(RejectReason.PROTOCOL_ERROR, bhs);
      return;
    }
    this.port.send({
      carriesStatus: true,
      encode: (sequence) =>
        encodeTextResponse({
          ...sequence,
          final: step.final,
          continue: step.continue,
          lun: 0,
          initiatorTaskTag: pdu.initiatorTaskTag,
          targetTransferTag: step.targetTransferTag,
          data: step.data,
        }),
    });
  }

  private async answerText(pairs: TextPair[]): Promise<TextPair[]> {
    const answer: TextPair[] = [];
    for (const pair of pairs) {
      if (pair.key === 'SendTargets') {
        const volumes = await this.exports.listExports();
        answer.push(
          ...answerSendTargets({
            value: pair.value,
            volumeNames: volumes.map((volume) => volume.name),
            sessionTarget: this.session.identity.targetName,
            portal: this.portal,
          }),
        );
      } else if (pair.value !== 'NotUnderstood' && pair.value !== 'Irrelevant' && pair.value !== 'Reject') {
        // §6.2: renegotiation in the full feature phase is not offered; say so per key.
        answer.push({ key: pair.key, value: pair.key.startsWith('X-') ? 'NotUnderstood' : 'Irrelevant' });
      }
    }
    return answer;
  }

  private async onLogout(pdu: LogoutRequestPdu): Promise<void> {
    this.loggingOut = true;
    if (pdu.reasonCode === LogoutReason.REMOVE_FOR_RECOVERY) {
      // §11.15.1: connection recovery needs ErrorRecoveryLevel 2.
      this.loggingOut = false;
      this.sendLogoutResponse(pdu, LogoutResponseCode.RECOVERY_NOT_SUPPORTED);
      return;
    }
    if (pdu.reasonCode === LogoutReason.CLOSE_CONNECTION && pdu.cid !== this.session.identity.cid) {
      this.loggingOut = false;
      this.sendLogoutResponse(pdu, LogoutResponseCode.CID_NOT_FOUND);
      return;
    }
    // Close session or this connection (the same with one connection): let running tasks finish and answer them first.
    await this.drain();
    this.sendLogoutResponse(pdu, LogoutResponseCode.SUCCESS);
    this.port.endAfterFlush();
  }

  private sendLogoutResponse(pdu: LogoutRequestPdu, response: number): void {
    this.port.send({
      carriesStatus: true,
      encode: (sequence) => encodeLogoutResponse({ ...sequence, initiatorTaskTag: pdu.initiatorTaskTag, response }),
    });
  }
}
