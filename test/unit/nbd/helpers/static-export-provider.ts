import { PlinthError } from '../../../../common/plinth-error.js';
import type { BlockDevice } from '../../../../blockdev/block-device.js';
import type {
  ExportClient,
  ExportDescription,
  ExportHandle,
  ExportProvider,
} from '../../../../blockdev/export-provider.js';

/**
 * An ExportProvider over a fixed set of devices, for NBD tests. It records
 * every open and release so tests can check that each handle is released
 * exactly once, and can hold an open (to test clients leaving mid-open) or
 * make it fail.
 */

export interface StaticExport {
  readonly name: string;
  readonly device: BlockDevice;
  readonly description?: string;
  readonly readOnly?: boolean;
}

export class StaticExportProvider implements ExportProvider {
  opened = 0;
  released = 0;
  /** Releases of a handle that was already released: must stay 0. */
  doubleReleases = 0;
  readonly clients: ExportClient[] = [];
  private readonly exports = new Map<string, StaticExport>();
  private readonly openFailures = new Map<string, Error>();
  private openGate: Promise<void> | undefined;

  constructor(exports: readonly StaticExport[]) {
    for (const entry of exports) {
      this.exports.set(entry.name, entry);
    }
  }

  /** Opens wait for `gate` before they complete. */
  holdOpens(gate: Promise<void>): void {
    this.openGate = gate;
  }

  failOpen(name: string, error: Error): void {
    this.openFailures.set(name, error);
  }

  outstandingHandles(): number {
    return this.opened - this.released;
  }

  async listExports(): Promise<ExportDescription[]> {
    return [...this.exports.values()].map((entry) => this.describe(entry));
  }

  async describeExport(name: string): Promise<ExportDescription> {
    return this.describe(this.lookup(name));
  }

  async openExport(name: string, client: ExportClient): Promise<ExportHandle> {
    const entry = this.lookup(name);
    if (this.openGate !== undefined) {
      await this.openGate;
    }
    const failure = this.openFailures.get(name);
    if (failure !== undefined) {
      throw failure;
    }
    this.opened += 1;
    this.clients.push(client);
    let released = false;
    return {
      description: this.describe(entry),
      device: entry.device,
      release: () => {
        if (released) {
          this.doubleReleases += 1;
          return;
        }
        released = true;
        this.released += 1;
      },
    };
  }

  private lookup(name: string): StaticExport {
    const entry = this.exports.get(name);
    if (entry === undefined) {
      throw new PlinthError('VOLUME_NOT_FOUND', `no volume named "${name}"`, { name });
    }
    return entry;
  }

  private describe(entry: StaticExport): ExportDescription {
    return {
      id: `static-${entry.name}`,
      name: entry.name,
      description: entry.description ?? '',
      sizeBytes: entry.device.sizeBytes,
      readOnly: entry.readOnly ?? entry.device.capabilities.readOnly,
      capabilities: entry.device.capabilities,
      blockSize: entry.device.blockSize,
    };
  }
}
