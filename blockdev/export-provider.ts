import type { BlockCapabilities, BlockDevice, BlockSizeHints } from './block-device.js';

/**
 * What the protocol servers (NBD, iSCSI) see of the control plane: the
 * volumes they may serve. Opening an export attaches the volume to this
 * node; releasing the handle ends that connection's use of it.
 */
export interface ExportDescription {
  /** Stable identity (the volume's UUID): SCSI device identifiers derive from it, not from the name. */
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  /**
   * What the device will offer once opened, so a protocol can describe an
   * export without attaching it (NBD_OPT_INFO must answer what NBD_OPT_GO
   * will, proto.md "NBD_OPT_INFO").
   */
  readonly capabilities: BlockCapabilities;
  readonly blockSize: BlockSizeHints;
}

export interface ExportClient {
  readonly protocol: 'nbd' | 'iscsi';
  readonly connectionId: string;
  readonly remoteAddress: string;
}

export interface ExportHandle {
  readonly description: ExportDescription;
  readonly device: BlockDevice;
  /** Called exactly once, when the connection using the export is gone. */
  release(): void;
}

export interface ExportProvider {
  listExports(): Promise<ExportDescription[]>;
  /** Throws PlinthError VOLUME_NOT_FOUND for an unknown name. */
  describeExport(name: string): Promise<ExportDescription>;
  /** Throws PlinthError VOLUME_NOT_FOUND, VOLUME_ATTACHED (owned elsewhere), ... */
  openExport(name: string, client: ExportClient): Promise<ExportHandle>;
}
