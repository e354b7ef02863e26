import type { ChapCredentials } from '../../blockdev/iscsi/chap.js';
import type { DiskSpec } from '../../blockdev/pool/pool-types.js';
import type { TlsSettings } from '../tls/tls-mode.js';

/**
 * The daemon's resolved configuration. Every setting comes from one of four
 * layers — flags > env > config file > defaults (ARCHITECTURE "daemon" row) —
 * and `sources` remembers which, so later checks (node identity, --join) can
 * name the setting the way the operator wrote it.
 */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Settings keys, spelled like the flags and the YAML keys. */
export const SETTING_KEYS = [
  'data-dir',
  'node-id',
  'api',
  'peer',
  'nbd',
  'iscsi',
  'disk',
  'join',
  'log-level',
  'extent-size',
  'label',
  'iscsi-chap-user',
  'iscsi-chap-secret-file',
  'iscsi-chap-secret',
  'iscsi-chap-target-user',
  'iscsi-chap-target-secret-file',
  'iscsi-chap-target-secret',
  'tls',
  'tls-cert-file',
  'tls-key-file',
  'tls-ca-file',
  'nbd-tls',
  'nbd-tls-client-certs',
  'join-token',
] as const;
export type SettingKey = (typeof SETTING_KEYS)[number];

/**
 * Keys that are never flags: a secret on the command line leaks into `ps`
 * and shell history. They are settable in the YAML file and as PLINTH_*
 * env only; the command line takes the `…-secret-file` flags instead.
 */
export const SECRET_SETTING_KEYS = ['iscsi-chap-secret', 'iscsi-chap-target-secret'] as const satisfies readonly SettingKey[];

/**
 * Cluster-wide iSCSI CHAP (docs/iscsi.md "CHAP"): required of every
 * initiator on every target without per-volume secrets and on discovery
 * sessions. `target` makes it mutual: what this node answers with.
 */
export interface IscsiChapConfig {
  readonly initiator: ChapCredentials;
  readonly target: ChapCredentials | null;
}

export interface Config {
  /** The config file that was read, or null when none was given. */
  readonly configFile: string | null;
  readonly dataDir: string;
  /** Explicitly configured node id; null means "the persisted one, else the hostname". */
  readonly nodeId: string | null;
  readonly api: HostPort;
  readonly peer: HostPort;
  readonly nbd: HostPort;
  readonly iscsi: HostPort;
  /** Never empty: without --disk, one sparse file disk under the data dir. */
  readonly disks: readonly DiskSpec[];
  readonly join: HostPort | null;
  readonly logLevel: LogLevel;
  /** null lets the pool pick its default extent size. */
  readonly extentSizeBytes: number | null;
  /** Failure-domain labels (`--label zone=z1 --label rack=r4`) for replica placement. */
  readonly labels: { readonly zone?: string; readonly rack?: string };
  /** Cluster-wide iSCSI CHAP; null: no CHAP unless a volume sets its own. Holds secrets: never log it (the logger redacts it). */
  readonly iscsiChap: IscsiChapConfig | null;
  /** TLS mode and operator certificates (docs/security.md). */
  readonly tls: TlsSettings;
  /** The cluster's join token, needed with --join to join a TLS cluster. A secret: never log it. */
  readonly joinToken: string | null;
  /** Where each explicitly set key came from, e.g. `--nbd`, `PLINTH_NBD`, `plinth.yaml: nbd`. */
  readonly sources: Readonly<Partial<Record<SettingKey, string>>>;
}

/** Size of the default sparse file disk: takes no space until written. */
export const DEFAULT_DISK_SIZE_BYTES = 64 * 1024 ** 3;
export const DEFAULT_DISK_FILE = 'disks/disk0.img';

export const DEFAULTS = {
  dataDir: './data',
  api: { host: '127.0.0.1', port: 9700 },
  peer: { host: '127.0.0.1', port: 9701 },
  nbd: { host: '127.0.0.1', port: 10809 },
  iscsi: { host: '127.0.0.1', port: 3260 },
  logLevel: 'info',
} as const satisfies Partial<Record<keyof Config, unknown>>;

export function formatHostPort(address: HostPort): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
