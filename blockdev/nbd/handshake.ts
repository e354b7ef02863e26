import type pino from 'pino';
import { toError } from '../../common/plinth-error.js';
import type { ExportClient, ExportHandle, ExportProvider } from '../export-provider.js';
import {
  BASE_ALLOCATION_CONTEXT,
  BASE_ALLOCATION_CONTEXT_ID,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_NAME,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_UNSUP,
  optionName,
} from './constants.js';
import { optionErrorForError } from './errno-map.js';
import {
  advertisedBlockSize,
  transmissionFlagsFor,
} from './export-flags.js';
import {
  type BlockSizeInfo,
  type ClientFlags,
  decodeExportNameData,
  decodeInfoRequestData,
  decodeMetaContextData,
  encodeExportNameReply,
  encodeInfoBlockSize,
  encodeInfoDescription,
  encodeInfoExport,
  encodeInfoName,
  encodeMetaContextReply,
  encodeOptionError,
  encodeOptionReply,
  encodeServerReply,
  type InfoRequest,
} from './handshake-codec.js';
import type { NbdLimits } from './limits.js';
import { listMetaContexts, selectMetaContexts } from './meta-context.js';
import { ProtocolError } from './protocol-error.js';
import { type NbdTlsMode, tlsGate } from './tls-policy.js';

/**
 * Per-connection option negotiation (proto.md "Fixed newstyle negotiation"
 * and "Option types"). It turns one option into the replies to send and what
 * happens next; the connection shell does the I/O. Opening the export (which
 * attaches the volume) happens only at NBD_OPT_GO / NBD_OPT_EXPORT_NAME.
 */

/** Everything the transmission phase needs, fixed at the moment the handshake ends. */
export interface NegotiatedExport {
  readonly exportName: string;
  /** Owned by the connection from here on: released exactly once when it ends. */
  readonly handle: ExportHandle;
  readonly sizeBytes: number;
  readonly transmissionFlags: number;
  readonly blockSize: BlockSizeInfo;
  readonly structuredReplies: boolean;
  /** Set when base:allocation was selected for this export: BLOCK_STATUS is allowed. */
  readonly blockStatusContextId: number | undefined;
}

export type HandshakeOutcome =
  | { readonly kind: 'continue'; readonly replies: Buffer[] }
  | { readonly kind: 'close'; readonly replies: Buffer[]; readonly reason: string }
  /** Send the replies (the ACK), then upgrade the socket to TLS and go on negotiating over it. */
  | { readonly kind: 'starttls'; readonly replies: Buffer[] }
  | { readonly kind: 'transmission'; readonly replies: Buffer[]; readonly negotiated: NegotiatedExport };

export interface HandshakeOptions {
  readonly limits: NbdLimits;
  readonly client: ExportClient;
  /** TLS rules for this connection (tls-policy.ts); default 'none' (NOTLS). */
  readonly tlsMode?: NbdTlsMode;
}

export interface HandshakeModules {
  readonly exports: ExportProvider;
  readonly logger: pino.Logger;
}

interface MetaContextSelection {
  readonly exportName: string;
  readonly contexts: readonly string[];
}

export class Handshake {
  private readonly options: HandshakeOptions;
  private readonly modules: HandshakeModules;
  private noZeroes = false;
  /** Until client flags arrive, assume fixed newstyle: every real client sets it. */
  private fixedNewstyle = true;
  private tlsActive = false;
  private structuredReplies = false;
  private metaContexts: MetaContextSelection | undefined;
  private optionCount = 0;

  constructor(options: HandshakeOptions, modules: HandshakeModules) {
    this.options = options;
    this.modules = modules;
  }

  onClientFlags(flags: ClientFlags): void {
    this.noZeroes = flags.noZeroes;
    this.fixedNewstyle = flags.fixedNewstyle;
  }

  /** True once STARTTLS was acknowledged: the rest of the connection runs over TLS. */
  get isTlsActive(): boolean {
    return this.tlsActive;
  }

  async onOption(option: number, data: Buffer): Promise<HandshakeOutcome> {
    this.optionCount += 1;
    if (this.optionCount > this.options.limits.maxOptionsPerHandshake) {
      // proto.md: a server MAY hard-disconnect a client it deems a denial of service.
      const reason = `more than ${this.options.limits.maxOptionsPerHandshake} options in one handshake`;
      return { kind: 'close', replies: [encodeOptionError(option, NBD_REP_ERR_POLICY, reason)], reason };
    }
    const gate = tlsGate(
      { mode: this.options.tlsMode ?? 'none', tlsActive: this.tlsActive, fixedNewstyle: this.fixedNewstyle },
      option,
      data.length,
    );
    switch (gate.kind) {
      case 'refuse':
        return continueWith(encodeOptionError(option, gate.errorType, gate.message));
      case 'close':
        return { kind: 'close', replies: [], reason: gate.reason };
      case 'starttls':
        return this.onStartTls();
      case 'proceed':
        break;
    }
    switch (option) {
      case NBD_OPT_EXPORT_NAME:
        return this.onExportName(data);
      case NBD_OPT_ABORT:
        // proto.md: the server MUST reply with NBD_REP_ACK and SHOULD ignore any data.
        return { kind: 'close', replies: [encodeOptionReply(option, NBD_REP_ACK)], reason: 'client sent NBD_OPT_ABORT' };
      case NBD_OPT_LIST:
        return this.onList(data);
      case NBD_OPT_INFO:
      case NBD_OPT_GO:
        return this.onInfoOrGo(option, data);
      case NBD_OPT_STRUCTURED_REPLY:
        return this.onStructuredReply(data);
      case NBD_OPT_LIST_META_CONTEXT:
      case NBD_OPT_SET_META_CONTEXT:
        return this.onMetaContext(option, data);
      default:
        // EXTENDED_HEADERS, PEEK_EXPORT and unknown options (STARTTLS never gets here: tls-policy.ts).
        return continueWith(encodeOptionError(option, NBD_REP_ERR_UNSUP, `option ${optionName(option)} is not supported`));
    }
  }

  /**
   * STARTTLS acknowledged: forget what was negotiated in clear, since a
   * man in the middle could have injected it (the lesson of nbdkit's
   * CVE-2021-3716); the client renegotiates over TLS.
   */
  private onStartTls(): HandshakeOutcome {
    this.tlsActive = true;
    this.structuredReplies = false;
    this.metaContexts = undefined;
    return { kind: 'starttls', replies: [encodeOptionReply(NBD_OPT_STARTTLS, NBD_REP_ACK)] };
  }

  /** proto.md: NBD_OPT_EXPORT_NAME cannot fail with a reply, so any failure closes the session. */
  private async onExportName(data: Buffer): Promise<HandshakeOutcome> {
    const name = decodeExportNameData(data);
    if (name instanceof ProtocolError) {
      return { kind: 'close', replies: [], reason: name.message };
    }
    const opened = await this.openExport(name);
    if (!(opened instanceof Opened)) {
      return { kind: 'close', replies: [], reason: `NBD_OPT_EXPORT_NAME "${name}": ${opened.message}` };
    }
    const { negotiated } = opened;
    const reply = encodeExportNameReply(negotiated.sizeBytes, negotiated.transmissionFlags, this.noZeroes);
    return { kind: 'transmission', replies: [reply], negotiated };
  }

  private async onList(data: Buffer): Promise<HandshakeOutcome> {
    if (data.length !== 0) {
      return continueWith(encodeOptionError(NBD_OPT_LIST, NBD_REP_ERR_INVALID, 'NBD_OPT_LIST carries no data'));
    }
    try {
      const exports = await this.modules.exports.listExports();
      const replies = exports
        .slice(0, this.options.limits.maxListedExports)
        .map((description) => encodeServerReply(NBD_OPT_LIST, description.name, description.description));
      replies.push(encodeOptionReply(NBD_OPT_LIST, NBD_REP_ACK));
      return { kind: 'continue', replies };
    } catch (error) {
      return continueWith(this.providerErrorReply(NBD_OPT_LIST, 'listing exports', error));
    }
  }

  private async onInfoOrGo(option: number, data: Buffer): Promise<HandshakeOutcome> {
    const request = decodeInfoRequestData(data);
    if (request instanceof ProtocolError) {
      return continueWith(encodeOptionError(option, NBD_REP_ERR_INVALID, request.message));
    }
    if (option === NBD_OPT_INFO) {
      return this.onInfo(request);
    }
    const opened = await this.openExport(request.name);
    if (!(opened instanceof Opened)) {
      return continueWith(opened.reply(option));
    }
    const { negotiated } = opened;
    const description = negotiated.handle.description.description;
    const replies = this.infoReplies(option, request, negotiated, description);
    replies.push(encodeOptionReply(option, NBD_REP_ACK));
    return { kind: 'transmission', replies, negotiated };
  }

  /** NBD_OPT_INFO describes without opening: opening would attach the volume here. */
  private async onInfo(request: InfoRequest): Promise<HandshakeOutcome> {
    try {
      const description = await this.modules.exports.describeExport(request.name);
      const capabilities = description.capabilities;
      const blockSize = advertisedBlockSize(description.blockSize, this.options.limits.maxPayloadBytes);
      const view: ExportView = {
        exportName: request.name,
        sizeBytes: description.sizeBytes,
        transmissionFlags: transmissionFlagsFor({
          capabilities,
          readOnly: description.readOnly,
          structuredReplies: this.structuredReplies,
        }),
        blockSize,
      };
      const replies = this.infoReplies(NBD_OPT_INFO, request, view, description.description);
      replies.push(encodeOptionReply(NBD_OPT_INFO, NBD_REP_ACK));
      return { kind: 'continue', replies };
    } catch (error) {
      return continueWith(this.providerErrorReply(NBD_OPT_INFO, `describing "${request.name}"`, error));
    }
  }

  /**
   * NBD_INFO_EXPORT always (MUST before ACK); NAME and DESCRIPTION when asked;
   * BLOCK_SIZE always, since we enforce the device's alignment either way.
   */
  private infoReplies(option: number, request: InfoRequest, view: ExportView, description: string): Buffer[] {
    const replies = [encodeInfoExport(option, view.sizeBytes, view.transmissionFlags)];
    if (request.infoTypes.includes(NBD_INFO_NAME)) {
      replies.push(encodeInfoName(option, view.exportName));
    }
    if (request.infoTypes.includes(NBD_INFO_DESCRIPTION) && description !== '') {
      replies.push(encodeInfoDescription(option, description));
    }
    replies.push(encodeInfoBlockSize(option, view.blockSize));
    return replies;
  }

  private onStructuredReply(data: Buffer): HandshakeOutcome {
    if (data.length !== 0) {
      const message = 'NBD_OPT_STRUCTURED_REPLY carries no data';
      return continueWith(encodeOptionError(NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_INVALID, message));
    }
    this.structuredReplies = true;
    return continueWith(encodeOptionReply(NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK));
  }

  private onMetaContext(option: number, data: Buffer): HandshakeOutcome {
    const setting = option === NBD_OPT_SET_META_CONTEXT;
    if (setting) {
      // proto.md: SET replaces the previous selection, also when it fails.
      this.metaContexts = undefined;
    }
    if (!this.structuredReplies) {
      const message = `${optionName(option)} needs NBD_OPT_STRUCTURED_REPLY first`;
      return continueWith(encodeOptionError(option, NBD_REP_ERR_INVALID, message));
    }
    const request = decodeMetaContextData(data);
    if (request instanceof ProtocolError) {
      return continueWith(encodeOptionError(option, NBD_REP_ERR_INVALID, request.message));
    }
    const contexts = setting ? selectMetaContexts(request.queries) : listMetaContexts(request.queries);
    if (contexts instanceof ProtocolError) {
      return continueWith(encodeOptionError(option, NBD_REP_ERR_INVALID, contexts.message));
    }
    if (setting) {
      this.metaContexts = { exportName: request.exportName, contexts };
    }
    // proto.md: ids in LIST replies are reserved and SHOULD be zero.
    const replies = contexts.map((name) =>
      encodeMetaContextReply(option, setting ? BASE_ALLOCATION_CONTEXT_ID : 0, name),
    );
    replies.push(encodeOptionReply(option, NBD_REP_ACK));
    return { kind: 'continue', replies };
  }

  private async openExport(name: string): Promise<Opened | OpenFailure> {
    let handle: ExportHandle;
    try {
      handle = await this.modules.exports.openExport(name, this.options.client);
    } catch (error) {
      return new OpenFailure(name, this.options.client, error, this.modules.logger);
    }
    const { device, description } = handle;
    if (!Number.isSafeInteger(device.sizeBytes) || device.sizeBytes < 0) {
      handle.release();
      const error = new Error(`device of export "${name}" reports an invalid size ${device.sizeBytes}`);
      return new OpenFailure(name, this.options.client, error, this.modules.logger);
    }
    const selection = this.metaContexts;
    const blockStatusSelected =
      selection !== undefined && selection.exportName === name && selection.contexts.includes(BASE_ALLOCATION_CONTEXT);
    return new Opened({
      exportName: name,
      handle,
      sizeBytes: device.sizeBytes,
      transmissionFlags: transmissionFlagsFor({
        capabilities: device.capabilities,
        readOnly: description.readOnly,
        structuredReplies: this.structuredReplies,
      }),
      blockSize: advertisedBlockSize(device.blockSize, this.options.limits.maxPayloadBytes),
      structuredReplies: this.structuredReplies,
      blockStatusContextId: blockStatusSelected ? BASE_ALLOCATION_CONTEXT_ID : undefined,
    });
  }

  private providerErrorReply(option: number, what: string, error: unknown): Buffer {
    const { replyType, expected } = optionErrorForError(error);
    const message = toError(error).message;
    const log = { option: optionName(option), client: this.options.client.remoteAddress, err: toError(error) };
    if (expected) {
      this.modules.logger.info(log, `NBD ${what} refused: ${message}`);
    } else {
      this.modules.logger.warn(log, `NBD ${what} failed unexpectedly`);
    }
    return encodeOptionError(option, replyType, message);
  }
}

type ExportView = Pick<NegotiatedExport, 'exportName' | 'sizeBytes' | 'transmissionFlags' | 'blockSize'>;

class Opened {
  constructor(readonly negotiated: NegotiatedExport) {}
}

/** A failed openExport: logged once, turned into an option error reply on demand. */
class OpenFailure {
  readonly message: string;
  private readonly error: unknown;

  constructor(name: string, client: ExportClient, error: unknown, logger: pino.Logger) {
    this.error = error;
    this.message = toError(error).message;
    const { expected } = optionErrorForError(error);
    const log = { exportName: name, client: client.remoteAddress, err: toError(error) };
    if (expected) {
      logger.info(log, `NBD export "${name}" not opened: ${this.message}`);
    } else {
      logger.warn(log, `NBD export "${name}" failed to open`);
    }
  }

  reply(option: number): Buffer {
    return encodeOptionError(option, optionErrorForError(this.error).replyType, this.message);
  }
}

function continueWith(reply: Buffer): HandshakeOutcome {
  return { kind: 'continue', replies: [reply] };
}
