import type { TextPair } from './text-keys.js';

/**
 * Operational parameter negotiation (RFC 7143 §6.2, keys in §13), pure.
 * The initiator offers; we answer every key with the result of the key's
 * function: minimum or maximum for numbers, AND or OR for booleans, the
 * first supported value for lists; declarative keys are recorded and not
 * answered. Out-of-range or malformed values answer `Reject`, unknown keys
 * `NotUnderstood` (§6.2.1), keys that make no sense here `Irrelevant`.
 */

export interface SessionParameters {
  readonly headerDigest: boolean;
  readonly dataDigest: boolean;
  /** The initiator's declared MaxRecvDataSegmentLength: bounds every data segment we send it. */
  readonly initiatorMaxRecvDataSegmentLength: number;
  /** Ours: bounds every data segment it sends us. */
  readonly targetMaxRecvDataSegmentLength: number;
  readonly maxBurstLength: number;
  readonly firstBurstLength: number;
  readonly initialR2T: boolean;
  readonly immediateData: boolean;
  readonly maxOutstandingR2T: number;
  readonly maxConnections: number;
  readonly defaultTime2Wait: number;
  readonly defaultTime2Retain: number;
  readonly errorRecoveryLevel: number;
}

/** What this target is willing to do; the results never exceed these. */
export interface TargetPreferences {
  readonly maxRecvDataSegmentLength: number;
  readonly maxBurstLength: number;
  readonly firstBurstLength: number;
  readonly maxOutstandingR2T: number;
  readonly initialR2T: boolean;
  readonly immediateData: boolean;
  readonly allowHeaderDigest: boolean;
  readonly allowDataDigest: boolean;
}

/** §13 defaults: what holds for every key nobody negotiated. */
export function defaultSessionParameters(targetMaxRecvDataSegmentLength: number): SessionParameters {
  return {
    headerDigest: false,
    dataDigest: false,
    initiatorMaxRecvDataSegmentLength: 8192,
    targetMaxRecvDataSegmentLength,
    maxBurstLength: 262144,
    firstBurstLength: 65536,
    initialR2T: true,
    immediateData: true,
    maxOutstandingR2T: 1,
    maxConnections: 1,
    defaultTime2Wait: 2,
    defaultTime2Retain: 20,
    errorRecoveryLevel: 0,
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Keys answered elsewhere (login security, session type): not operational. */
const LOGIN_KEYS = new Set(['InitiatorName', 'InitiatorAlias', 'TargetName', 'SessionType', 'AuthMethod']);
/** Keys only a target sends: an initiator offering them gets Irrelevant. */
const TARGET_ONLY_KEYS = new Set(['TargetAlias', 'TargetAddress', 'TargetPortalGroupTag']);

const NUMERIC_MIN_KEYS: Record<string, { min: number; max: number; field: 'maxBurstLength' | 'firstBurstLength' | 'maxOutstandingR2T' | 'maxConnections' | 'defaultTime2Retain' | 'errorRecoveryLevel' }> = {
  MaxBurstLength: { min: 512, max: 0xffffff, field: 'maxBurstLength' },
  FirstBurstLength: { min: 512, max: 0xffffff, field: 'firstBurstLength' },
  MaxOutstandingR2T: { min: 1, max: 65535, field: 'maxOutstandingR2T' },
  MaxConnections: { min: 1, max: 65535, field: 'maxConnections' },
  DefaultTime2Retain: { min: 0, max: 3600, field: 'defaultTime2Retain' },
  ErrorRecoveryLevel: { min: 0, max: 2, field: 'errorRecoveryLevel' },
};

/** §6.1 numerical values: decimal, or hex with 0x. */
export function parseNumber(value: string): number | undefined {
  if (/^[0-9]{1,10}$/.test(value)) return Number.parseInt(value, 10);
  if (/^0[xX][0-9a-fA-F]{1,8}$/.test(value)) return Number.parseInt(value.slice(2), 16);
  return undefined;
}

function parseBoolean(value: string): boolean | undefined {
  if (value === 'Yes') return true;
  if (value === 'No') return false;
  return undefined;
}

function yesNo(value: boolean): string {
  return value ? 'Yes' : 'No';
}

export class OperationalNegotiation {
  private readonly preferences: TargetPreferences;
  private readonly parameters: Mutable<SessionParameters>;
  private declaredOurs = false;

  constructor(preferences: TargetPreferences) {
    this.preferences = preferences;
    this.parameters = defaultSessionParameters(preferences.maxRecvDataSegmentLength);
  }

  /** The negotiated values, FirstBurstLength clamped to MaxBurstLength (§13.14). */
  result(): SessionParameters {
    return { ...this.parameters, firstBurstLength: Math.min(this.parameters.firstBurstLength, this.parameters.maxBurstLength) };
  }

  isLoginKey(key: string): boolean {
    return LOGIN_KEYS.has(key) || key.startsWith('CHAP_');
  }

  /**
   * Our declarations that must reach the initiator once: MaxRecvDataSegmentLength
   * (§13.12, declarative) so it knows how large its Data-Out may be.
   */
  declarations(): TextPair[] {
    if (this.declaredOurs) return [];
    this.declaredOurs = true;
    return [{ key: 'MaxRecvDataSegmentLength', value: String(this.preferences.maxRecvDataSegmentLength) }];
  }

  /** The answer to one offered key, or undefined for declarations that need none. */
  answer(pair: TextPair): TextPair | undefined {
    const { key, value } = pair;
    if (value === 'NotUnderstood' || value === 'Irrelevant' || value === 'Reject') {
      return undefined; // an answer to something we offered: nothing to say back
    }
    if (TARGET_ONLY_KEYS.has(key)) return { key, value: 'Irrelevant' };
    const reply = (text: string): TextPair => ({ key, value: text });
    switch (key) {
      case 'HeaderDigest':
      case 'DataDigest':
        return reply(this.answerDigest(key, value));
      case 'MaxRecvDataSegmentLength': {
        const length = parseNumber(value);
        if (length === undefined || length < 512 || length > 0xffffff) return reply('Reject');
        this.parameters.initiatorMaxRecvDataSegmentLength = length;
        return undefined;
      }
      case 'InitialR2T':
        return reply(this.answerBoolean(value, 'or', this.preferences.initialR2T, (result) => (this.parameters.initialR2T = result)));
      case 'ImmediateData':
        return reply(this.answerBoolean(value, 'and', this.preferences.immediateData, (result) => (this.parameters.immediateData = result)));
      case 'DataPDUInOrder':
      case 'DataSequenceInOrder':
        // OR with our Yes: we only do in-order data (§13.18, §13.19).
        return reply(this.answerBoolean(value, 'or', true, () => undefined));
      case 'IFMarker':
      case 'OFMarker':
        // RFC 3720 markers, removed by RFC 7143 (§13.25): AND with our No.
        return reply(this.answerBoolean(value, 'and', false, () => undefined));
      case 'OFMarkInt':
      case 'IFMarkInt':
        return reply('Irrelevant');
      case 'DefaultTime2Wait': {
        const seconds = parseNumber(value);
        if (seconds === undefined || seconds > 3600) return reply('Reject');
        this.parameters.defaultTime2Wait = seconds; // max() with our 0
        return reply(String(seconds));
      }
      case 'iSCSIProtocolLevel': {
        // RFC 7144 §2.1: numerical, minimum; we implement RFC 7143 (level 1).
        const level = parseNumber(value);
        return reply(level === undefined ? 'Reject' : String(Math.min(level, 1)));
      }
      case 'TaskReporting':
        // §13.23: a list; we report the RFC 3720 way.
        return reply(value.split(',').includes('RFC3720') ? 'RFC3720' : 'Reject');
      case 'SendTargets':
        return reply('Irrelevant');
      default:
        return this.answerMinimum(key, value) ?? reply('NotUnderstood');
    }
  }

  private answerMinimum(key: string, value: string): TextPair | undefined {
    const rule = NUMERIC_MIN_KEYS[key];
    if (rule === undefined) return undefined;
    const offered = parseNumber(value);
    if (offered === undefined || offered < rule.min || offered > rule.max) return { key, value: 'Reject' };
    const ours = this.ourMaximum(rule.field);
    const result = Math.min(offered, ours);
    this.parameters[rule.field] = result;
    return { key, value: String(result) };
  }

  private ourMaximum(field: (typeof NUMERIC_MIN_KEYS)[string]['field']): number {
    switch (field) {
      case 'maxBurstLength':
        return this.preferences.maxBurstLength;
      case 'firstBurstLength':
        return this.preferences.firstBurstLength;
      case 'maxOutstandingR2T':
        return this.preferences.maxOutstandingR2T;
      case 'maxConnections':
        return 1; // one connection per session (§13.2 allows any minimum)
      case 'defaultTime2Retain':
        return 0; // ErrorRecoveryLevel 0: nothing is retained after a connection drops
      case 'errorRecoveryLevel':
        return 0;
    }
  }

  private answerBoolean(value: string, fn: 'and' | 'or', ours: boolean, store: (result: boolean) => void): string {
    const offered = parseBoolean(value);
    if (offered === undefined) return 'Reject';
    const result = fn === 'and' ? offered && ours : offered || ours;
    store(result);
    return yesNo(result);
  }

  /** §13.1: a list in the initiator's order of preference; pick the first we support. */
  private answerDigest(key: 'HeaderDigest' | 'DataDigest', value: string): string {
    const allowed = key === 'HeaderDigest' ? this.preferences.allowHeaderDigest : this.preferences.allowDataDigest;
    for (const option of value.split(',')) {
      if (option === 'None') {
        this.setDigest(key, false);
        return 'None';
      }
      if (option === 'CRC32C' && allowed) {
        this.setDigest(key, true);
        return 'CRC32C';
      }
    }
    return 'Reject';
  }

  private setDigest(key: 'HeaderDigest' | 'DataDigest', on: boolean): void {
    if (key === 'HeaderDigest') this.parameters.headerDigest = on;
    else this.parameters.dataDigest = on;
  }
}
