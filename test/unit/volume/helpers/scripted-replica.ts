import { PlinthError } from '../../../../common/plinth-error.js';
import type {
  BlockCapabilities,
  BlockDevice,
  BlockSizeHints,
  ExtentStatus,
  TrimOptions,
  WriteOptions,
  ZeroOptions,
} from '../../../../blockdev/block-device.js';
import { MemoryBlockDevice, type MemoryBlockDeviceOptions } from '../../../helpers/memory-block-device.js';

/**
 * A replica double with a script: fail the Nth mutation, fail everything
 * from some point on (a node that went away), answer FENCED (a newer owner
 * exists), or hold requests until the test releases them (a slow replica,
 * driven by the test instead of a timer). Data lives in a MemoryBlockDevice
 * that tests can read directly to check what reached this replica.
 */

export type ScriptedOperation = 'read' | 'write' | 'flush' | 'trim' | 'writeZeroes' | 'blockStatus';

export class ScriptedReplica implements BlockDevice {
  readonly store: MemoryBlockDevice;
  /** Mutations applied to the store, in order: "write@offset+len". */
  readonly applied: string[] = [];
  readonly calls: Record<ScriptedOperation, number> = {
    read: 0,
    write: 0,
    flush: 0,
    trim: 0,
    writeZeroes: 0,
    blockStatus: 0,
  };
  private mutationCount = 0;
  private failOnMutation = new Map<number, Error>();
  private failingFrom: { operations: ReadonlySet<ScriptedOperation>; error: Error } | undefined;
  private held: (() => void)[] = [];
  private holding = false;

  constructor(options: MemoryBlockDeviceOptions) {
    this.store = new MemoryBlockDevice(options);
  }

  get sizeBytes(): number {
    return this.store.sizeBytes;
  }

  get capabilities(): BlockCapabilities {
    return this.store.capabilities;
  }

  get blockSize(): BlockSizeHints {
    return this.store.blockSize;
  }

  /** The Nth mutation from now (1 = next) throws `error` without touching data. */
  failNthMutation(n: number, error: Error = ioError()): void {
    this.failOnMutation.set(this.mutationCount + n, error);
  }

  /** From now on, the listed operations (default: all) throw `error`. */
  failFromNow(error: Error = ioError(), operations: readonly ScriptedOperation[] = allOperations()): void {
    this.failingFrom = { operations: new Set(operations), error };
  }

  /** Every operation answers FENCED from now on: the replica saw a newer generation. */
  fence(): void {
    this.failFromNow(new PlinthError('FENCED', 'replica saw a newer generation', { generation: 9 }));
  }

  heal(): void {
    this.failingFrom = undefined;
    this.failOnMutation.clear();
  }

  /** Requests from now on wait until release(). */
  hold(): void {
    this.holding = true;
  }

  /** Let held requests go and stop holding new ones. */
  release(): void {
    this.holding = false;
    const waiting = this.held;
    this.held = [];
    for (const go of waiting) go();
  }

  heldCount(): number {
    return this.held.length;
  }

  async read(offset: number, target: Buffer): Promise<void> {
    await this.enter('read', false);
    await this.store.read(offset, target);
  }

  async write(offset: number, data: Buffer, options: WriteOptions = {}): Promise<void> {
    await this.enter('write', true);
    await this.store.write(offset, data, options);
    this.applied.push(`write@${offset}+${data.length}:${data[0] ?? 0}`);
  }

  async flush(): Promise<void> {
    await this.enter('flush', false);
    await this.store.flush();
  }

  async trim(offset: number, lengthBytes: number, options: TrimOptions = {}): Promise<void> {
    await this.enter('trim', true);
    await this.store.trim(offset, lengthBytes, options);
    this.applied.push(`trim@${offset}+${lengthBytes}`);
  }

  async writeZeroes(offset: number, lengthBytes: number, options: ZeroOptions = {}): Promise<void> {
    await this.enter('writeZeroes', true);
    await this.store.writeZeroes(offset, lengthBytes, options);
    this.applied.push(`zero@${offset}+${lengthBytes}`);
  }

  async blockStatus(offset: number, lengthBytes: number): Promise<ExtentStatus[]> {
    await this.enter('blockStatus', false);
    return this.store.blockStatus(offset, lengthBytes);
  }

  private async enter(operation: ScriptedOperation, mutation: boolean): Promise<void> {
    this.calls[operation] += 1;
    if (this.holding) {
      await new Promise<void>((resolve) => this.held.push(resolve));
    }
    if (this.failingFrom?.operations.has(operation) === true) throw this.failingFrom.error;
    if (mutation) {
      this.mutationCount += 1;
      const scripted = this.failOnMutation.get(this.mutationCount);
      if (scripted !== undefined) {
        this.failOnMutation.delete(this.mutationCount);
        throw scripted;
      }
    }
  }
}

export function ioError(message = 'replica unreachable'): PlinthError {
  return new PlinthError('IO_ERROR', message);
}

function allOperations(): ScriptedOperation[] {
  return ['read', 'write', 'flush', 'trim', 'writeZeroes', 'blockStatus'];
}
