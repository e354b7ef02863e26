import { type ChapSecretProvider, ChapAuthenticator } from './chap.js';
import { LoginStage, LoginStatus, volumeNameOf } from './iscsi-constants.js';
import { OperationalNegotiation, type SessionParameters, type TargetPreferences } from './login-negotiation.js';
import type { LoginRequestPdu } from './pdu-decode.js';
import { IscsiProtocolError } from './protocol-error.js';
import { decodeTextPairs, TextAccumulator, type TextPair } from './text-keys.js';

/**
 * The login phase of one connection (RFC 7143 §6.3, §11.12-§11.13): stage
 * transitions, the security stage (AuthMethod, CHAP), operational
 * negotiation, multi-PDU text (C bit). Pure apart from the injected target
 * lookup and random source; the connection frames the replies and, on
 * `complete`, creates the session and assigns the TSIH.
 */

export type SessionType = 'discovery' | 'normal';

export interface LoginIdentity {
  readonly initiatorName: string;
  readonly initiatorAlias: string | undefined;
  readonly sessionType: SessionType;
  /** Normal sessions: the target name as sent and the volume it designates. */
  readonly targetName: string | undefined;
  readonly volumeName: string | undefined;
  readonly isid: string;
  readonly tsih: number;
  readonly cid: number;
}

export interface LoginReply {
  readonly transit: boolean;
  readonly continue: boolean;
  readonly currentStage: number;
  readonly nextStage: number;
  readonly status: number;
  readonly pairs: TextPair[];
  /** Set on the reply that ends login successfully (T=1, NSG=FullFeaturePhase). */
  readonly complete: boolean;
  /** Why a non-zero status was chosen, for the log. */
  readonly reason?: string;
}

export interface LoginNegotiatorOptions {
  readonly preferences: TargetPreferences;
  readonly portalGroupTag: number;
  readonly maxTextBytes: number;
}

export interface LoginNegotiatorModules {
  /** Whether a volume exists (VOLUME_NOT_FOUND → login status 0x0203). */
  readonly volumeExists: (volumeName: string) => Promise<boolean>;
  readonly chapSecrets: ChapSecretProvider;
  readonly randomBytes: (count: number) => Buffer;
}

type AuthState = 'unnegotiated' | 'none' | 'chap' | 'authenticated';

export class LoginNegotiator {
  private readonly options: LoginNegotiatorOptions;
  private readonly modules: LoginNegotiatorModules;
  private readonly negotiation: OperationalNegotiation;
  private readonly text: TextAccumulator;
  private identityValue: LoginIdentity | undefined;
  private stage: number | undefined;
  private auth: AuthState = 'unnegotiated';
  private chap: ChapAuthenticator | undefined;
  private chapRequired = false;

  constructor(options: LoginNegotiatorOptions, modules: LoginNegotiatorModules) {
    this.options = options;
    this.modules = modules;
    this.negotiation = new OperationalNegotiation(options.preferences);
    this.text = new TextAccumulator(options.maxTextBytes);
  }

  identity(): LoginIdentity | undefined {
    return this.identityValue;
  }

  parameters(): SessionParameters {
    return this.negotiation.result();
  }

  async handle(request: LoginRequestPdu): Promise<LoginReply> {
    const stage = this.stage ?? request.currentStage;
    if (request.currentStage !== stage || (stage !== LoginStage.SECURITY && stage !== LoginStage.OPERATIONAL)) {
      return this.fail(stage, LoginStatus.INITIATOR_ERROR, `login stage ${request.currentStage} is not valid here`);
    }
    this.stage = stage;
    if (request.versionMin > 0) {
      return this.fail(stage, LoginStatus.UNSUPPORTED_VERSION, `initiator needs version ${request.versionMin}; we speak 0`);
    }
    const overflow = this.text.append(request.data);
    if (overflow !== undefined) {
      return this.fail(stage, LoginStatus.INITIATOR_ERROR, overflow.message);
    }
    if (request.continue) {
      // §11.12.3: more text follows; answer with an empty response in the same stage.
      return { transit: false, continue: false, currentStage: stage, nextStage: stage, status: 0, pairs: [], complete: false };
    }
    const pairs = decodeTextPairs(this.text.take());
    if (pairs instanceof IscsiProtocolError) {
      return this.fail(stage, LoginStatus.INITIATOR_ERROR, pairs.message);
    }
    const keys = new Map(pairs.map((pair) => [pair.key, pair.value]));
    const answer: TextPair[] = [];
    if (this.identityValue === undefined) {
      const failure = await this.establishIdentity(request, keys, answer);
      if (failure !== undefined) return failure;
    }
    return stage === LoginStage.SECURITY ? this.securityStage(request, pairs, keys, answer) : this.operationalStage(request, pairs, answer);
  }

  /** The first Login Request names the initiator, session type and target (§6.3.1). */
  private async establishIdentity(request: LoginRequestPdu, keys: Map<string, string>, answer: TextPair[]): Promise<LoginReply | undefined> {
    const stage = request.currentStage;
    const initiatorName = keys.get('InitiatorName');
    if (initiatorName === undefined || initiatorName.length === 0) {
      return this.fail(stage, LoginStatus.MISSING_PARAMETER, 'the first Login Request must carry InitiatorName');
    }
    const sessionTypeText = keys.get('SessionType') ?? 'Normal';
    if (sessionTypeText !== 'Normal' && sessionTypeText !== 'Discovery') {
      return this.fail(stage, LoginStatus.SESSION_TYPE_NOT_SUPPORTED, `SessionType ${sessionTypeText} is not supported`);
    }
    const sessionType: SessionType = sessionTypeText === 'Discovery' ? 'discovery' : 'normal';
    const targetName = keys.get('TargetName');
    let volumeName: string | undefined;
    if (sessionType === 'normal') {
      if (targetName === undefined) {
        return this.fail(stage, LoginStatus.MISSING_PARAMETER, 'a normal session must name its TargetName');
      }
      volumeName = volumeNameOf(targetName);
      if (volumeName === undefined || !(await this.modules.volumeExists(volumeName))) {
        return this.fail(stage, LoginStatus.NOT_FOUND, `no target named ${targetName}`);
      }
      // §13.9: the first Login Response of a normal session declares the portal group tag.
      answer.push({ key: 'TargetPortalGroupTag', value: String(this.options.portalGroupTag) });
    }
    this.identityValue = {
      initiatorName,
      initiatorAlias: keys.get('InitiatorAlias'),
      sessionType,
      targetName: sessionType === 'normal' ? targetName : undefined,
      volumeName,
      isid: request.isid,
      tsih: request.tsih,
      cid: request.cid,
    };
    this.chapRequired = this.modules.chapSecrets.initiatorCredentials(this.identityValue.targetName) !== undefined;
    if (stage === LoginStage.OPERATIONAL && this.chapRequired) {
      return this.fail(stage, LoginStatus.AUTHENTICATION_FAILURE, 'this target requires CHAP; the security stage was skipped');
    }
    return undefined;
  }

  private securityStage(request: LoginRequestPdu, pairs: TextPair[], keys: Map<string, string>, answer: TextPair[]): LoginReply {
    const stage = LoginStage.SECURITY;
    const authMethod = keys.get('AuthMethod');
    if (authMethod !== undefined && this.auth === 'unnegotiated') {
      const offered = authMethod.split(',');
      if (this.chapRequired && offered.includes('CHAP')) {
        this.auth = 'chap';
        answer.push({ key: 'AuthMethod', value: 'CHAP' });
      } else if (!this.chapRequired && offered.includes('None')) {
        this.auth = 'none';
        answer.push({ key: 'AuthMethod', value: 'None' });
      } else {
        return this.fail(stage, LoginStatus.AUTHENTICATION_FAILURE, `AuthMethod ${authMethod} is not acceptable`);
      }
    }
    if (this.auth === 'chap') {
      const step = this.chapStep(keys);
      answer.push(...step.answer);
      if (step.kind === 'failed') {
        return this.fail(stage, LoginStatus.AUTHENTICATION_FAILURE, step.reason);
      }
      if (step.kind === 'authenticated') this.auth = 'authenticated';
    }
    this.answerOperational(pairs, answer);
    if (!request.transit) {
      return this.reply(stage, false, request.nextStage, answer);
    }
    if (this.auth === 'unnegotiated' && !this.chapRequired) {
      this.auth = 'none'; // §6.3.1: AuthMethod defaults to None when the initiator never offers it
    }
    if (this.auth === 'unnegotiated') {
      return this.fail(stage, LoginStatus.AUTHENTICATION_FAILURE, 'this target requires CHAP');
    }
    if (this.auth === 'chap') {
      if (keys.has('CHAP_R')) {
        return this.fail(stage, LoginStatus.AUTHENTICATION_FAILURE, 'CHAP did not complete');
      }
      return this.reply(stage, false, request.nextStage, answer); // not yet: keep exchanging
    }
    return this.transit(request.nextStage, answer);
  }

  private chapStep(keys: Map<string, string>): ReturnType<ChapAuthenticator['step']> {
    if (this.chap === undefined) {
      const targetName = this.identityValue?.targetName;
      const initiator = this.modules.chapSecrets.initiatorCredentials(targetName);
      if (initiator === undefined) {
        return { kind: 'failed', reason: 'CHAP selected without initiator credentials', answer: [] };
      }
      const target = this.modules.chapSecrets.targetCredentials(targetName);
      this.chap = new ChapAuthenticator({ initiator, target }, { randomBytes: this.modules.randomBytes });
    }
    return this.chap.step(keys);
  }

  private operationalStage(request: LoginRequestPdu, pairs: TextPair[], answer: TextPair[]): LoginReply {
    this.answerOperational(pairs, answer);
    answer.push(...this.negotiation.declarations());
    if (!request.transit) {
      return this.reply(LoginStage.OPERATIONAL, false, request.nextStage, answer);
    }
    if (request.nextStage !== LoginStage.FULL_FEATURE) {
      return this.fail(LoginStage.OPERATIONAL, LoginStatus.INITIATOR_ERROR, `cannot go from the operational stage to stage ${request.nextStage}`);
    }
    return this.transit(LoginStage.FULL_FEATURE, answer);
  }

  private answerOperational(pairs: TextPair[], answer: TextPair[]): void {
    for (const pair of pairs) {
      if (this.negotiation.isLoginKey(pair.key)) {
        if (this.stage === LoginStage.OPERATIONAL && (pair.key === 'AuthMethod' || pair.key.startsWith('CHAP_'))) {
          answer.push({ key: pair.key, value: 'Irrelevant' });
        }
        continue;
      }
      const reply = this.negotiation.answer(pair);
      if (reply !== undefined) answer.push(reply);
    }
  }

  private transit(nextStage: number, answer: TextPair[]): LoginReply {
    const currentStage = this.stage ?? LoginStage.SECURITY;
    if (nextStage !== LoginStage.OPERATIONAL && nextStage !== LoginStage.FULL_FEATURE) {
      return this.fail(currentStage, LoginStatus.INITIATOR_ERROR, `next stage ${nextStage} is reserved`);
    }
    const complete = nextStage === LoginStage.FULL_FEATURE;
    if (complete) {
      answer.push(...this.negotiation.declarations());
    }
    this.stage = nextStage;
    return { transit: true, continue: false, currentStage, nextStage, status: 0, pairs: answer, complete };
  }

  private reply(stage: number, transit: boolean, nextStage: number, pairs: TextPair[]): LoginReply {
    return { transit, continue: false, currentStage: stage, nextStage: transit ? nextStage : stage, status: 0, pairs, complete: false };
  }

  private fail(stage: number, status: number, reason: string): LoginReply {
    return { transit: false, continue: false, currentStage: stage & 3, nextStage: 0, status, pairs: [], complete: false, reason };
  }
}
