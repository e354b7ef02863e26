import type pino from 'pino';
import type { ExportHandle } from '../export-provider.js';
import { CommandWindow } from './command-window.js';
import type { LoginIdentity } from './login-negotiator.js';
import type { SessionParameters } from './login-negotiation.js';
import type { ScsiLogicalUnitSession } from './scsi/scsi-task.js';

/**
 * One iSCSI session (RFC 7143 §4.4): its identity (InitiatorName, ISID,
 * TSIH), negotiated parameters, CmdSN window and, for a normal session, the
 * export handle and the logical unit view. One connection per session
 * (MaxConnections=1). Its resources are released exactly once.
 */

export class IscsiSession {
  readonly tsih: number;
  readonly identity: LoginIdentity;
  readonly parameters: SessionParameters;
  readonly window: CommandWindow<() => void>;
  readonly handle: ExportHandle | undefined;
  readonly logicalUnit: ScsiLogicalUnitSession | undefined;
  private readonly logger: pino.Logger;
  private closed = false;

  constructor(
    options: { tsih: number; identity: LoginIdentity; parameters: SessionParameters; initialCmdSN: number; windowDepth: number },
    modules: { handle: ExportHandle | undefined; logicalUnit: ScsiLogicalUnitSession | undefined; logger: pino.Logger },
  ) {
    this.tsih = options.tsih;
    this.identity = options.identity;
    this.parameters = options.parameters;
    this.window = new CommandWindow({ depth: options.windowDepth, initialCmdSN: options.initialCmdSN });
    this.handle = modules.handle;
    this.logicalUnit = modules.logicalUnit;
    this.logger = modules.logger;
  }

  /** I_T nexus loss (SAM-5 §6.3.4): tell the device server, then release the volume. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.logicalUnit?.close();
    } finally {
      this.handle?.release();
    }
    this.logger.debug({ tsih: this.tsih }, 'iSCSI session closed');
  }
}

/** Sessions of the whole target node, for TSIH allocation and reinstatement (§6.3.5). */
export class SessionTable<Owner> {
  private readonly byTsih = new Map<number, { session: IscsiSession; owner: Owner }>();
  private nextTsih = 1;

  /** A TSIH no live session uses (§11.12.5: never 0). */
  allocateTsih(): number {
    for (let attempt = 0; attempt < 0x10000; attempt += 1) {
      const candidate = this.nextTsih;
      this.nextTsih = this.nextTsih >= 0xffff ? 1 : this.nextTsih + 1;
      if (!this.byTsih.has(candidate)) return candidate;
    }
    throw new Error('no free TSIH: 65535 sessions are open');
  }

  add(session: IscsiSession, owner: Owner): void {
    this.byTsih.set(session.tsih, { session, owner });
  }

  remove(session: IscsiSession): void {
    const entry = this.byTsih.get(session.tsih);
    if (entry?.session === session) this.byTsih.delete(session.tsih);
  }

  byTsihValue(tsih: number): Owner | undefined {
    return this.byTsih.get(tsih)?.owner;
  }

  /** §6.3.5: same InitiatorName, ISID and target (or both discovery) is the same session. */
  reinstatementOf(identity: LoginIdentity): Owner[] {
    const owners: Owner[] = [];
    for (const { session, owner } of this.byTsih.values()) {
      const other = session.identity;
      if (
        other.initiatorName === identity.initiatorName &&
        other.isid === identity.isid &&
        other.sessionType === identity.sessionType &&
        other.targetName === identity.targetName
      ) {
        owners.push(owner);
      }
    }
    return owners;
  }

  size(): number {
    return this.byTsih.size;
  }
}
