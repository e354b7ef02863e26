/**
 * The replicated key-value state machine of the simulated workload.
 * Commands: put(key, value) and cas(key, expected, value); reads go through
 * ReadIndex and read the local map.
 */
import { PlinthError } from '../../common/plinth-error.js';

export type KvCommand =
  | { readonly op: 'put'; readonly opId: string; readonly key: string; readonly value: string }
  | { readonly op: 'cas'; readonly opId: string; readonly key: string; readonly expected: string | null; readonly value: string };

export type KvResult = { readonly ok: boolean };

export function encodeKvCommand(command: KvCommand): Buffer {
  return Buffer.from(JSON.stringify(command), 'utf8');
}

export function decodeKvCommand(data: Buffer): KvCommand {
  const parsed = JSON.parse(data.toString('utf8')) as KvCommand;
  if (parsed.op !== 'put' && parsed.op !== 'cas') throw new PlinthError('INVALID_ARGUMENT', 'bad kv command');
  return parsed;
}

export class KvStateMachine {
  private readonly values = new Map<string, string>();
  appliedIndex = 0;

  apply(index: number, command: KvCommand): KvResult {
    if (index !== this.appliedIndex + 1) {
      throw new PlinthError('INTERNAL', 'kv: apply out of order', { index, appliedIndex: this.appliedIndex });
    }
    this.appliedIndex = index;
    if (command.op === 'put') {
      this.values.set(command.key, command.value);
      return { ok: true };
    }
    const current = this.values.get(command.key) ?? null;
    if (current !== command.expected) return { ok: false };
    this.values.set(command.key, command.value);
    return { ok: true };
  }

  /** Advances the applied index past an entry that carries no command (no-op, conf change). */
  skip(index: number): void {
    if (index !== this.appliedIndex + 1) {
      throw new PlinthError('INTERNAL', 'kv: skip out of order', { index, appliedIndex: this.appliedIndex });
    }
    this.appliedIndex = index;
  }

  get(key: string): string | null {
    return this.values.get(key) ?? null;
  }

  serialize(): Buffer {
    return Buffer.from(JSON.stringify({ appliedIndex: this.appliedIndex, values: [...this.values] }), 'utf8');
  }

  static restore(data: Buffer): KvStateMachine {
    const parsed = JSON.parse(data.toString('utf8')) as { appliedIndex: number; values: Array<[string, string]> };
    const kv = new KvStateMachine();
    kv.appliedIndex = parsed.appliedIndex;
    for (const [k, v] of parsed.values) kv.values.set(k, v);
    return kv;
  }

  fingerprint(): string {
    return JSON.stringify([...this.values].sort());
  }
}
